//! Shrinking a user's failing run: its fault plan and its workload, cut down while it still
//! fails the same way.

use std::fmt;

use crate::faults::Schedule;
use crate::harness::{Harness, Verdict};
use crate::shrink::shape;

/// A workload of the user's client (how many requests, which ones, how big), which shrinking
/// can make smaller.
pub trait Workload: Clone + fmt::Debug {
    /// Smaller versions of this workload, the biggest cut first; none when it is as small as
    /// it gets. Each must be strictly smaller, so that shrinking ends.
    fn smaller(&self) -> Vec<Self>;
}

/// What shrinking a failing run found: the smallest plan and workload that still fail the
/// same way, and that run's verdict.
#[derive(Debug)]
pub struct ShrunkPlan<W> {
    /// The faults left.
    pub faults: Schedule,
    /// The workload left.
    pub workload: W,
    /// The run of what is left.
    pub verdict: Verdict,
    /// How many candidates were run.
    pub runs: usize,
}

/// Shrinks a failing run of the user's. `harness(faults, workload)` builds the run, with the
/// seed it failed with and `.faults(faults)`; `faults` is the plan it failed with (a drawn
/// one is the verdict's [`faults`](Verdict::faults)). Faults are dropped, all at once and
/// then one by one, and the workload made smaller, while a violation of the shape of the
/// first one (the same words, whatever the numbers) remains. `None` if the run does not
/// fail.
pub fn shrink_plan<W: Workload>(
    faults: Schedule,
    workload: W,
    harness: impl Fn(Schedule, W) -> Harness,
) -> Option<ShrunkPlan<W>> {
    let verdict = harness(faults.clone(), workload.clone()).run();
    let wanted = shape(verdict.violations.first()?);
    let mut best = ShrunkPlan {
        faults,
        workload,
        verdict,
        runs: 0,
    };
    // Bounded: every accepted candidate is strictly smaller, and a pass is finite.
    'passes: for _ in 0..1000 {
        for (faults, workload) in candidates(&best.faults, &best.workload) {
            let verdict = harness(faults.clone(), workload.clone()).run();
            best.runs += 1;
            if verdict.violations.iter().any(|v| shape(v) == wanted) {
                best = ShrunkPlan {
                    faults,
                    workload,
                    verdict,
                    runs: best.runs,
                };
                continue 'passes;
            }
        }
        break;
    }
    Some(best)
}

/// Smaller plans and workloads, the biggest cut first: no fault at all, one fault fewer,
/// then a smaller workload.
fn candidates<W: Workload>(faults: &Schedule, workload: &W) -> Vec<(Schedule, W)> {
    let mut out = Vec::new();
    if faults.faults.len() > 1 {
        out.push((Schedule::none(), workload.clone()));
    }
    for at in 0..faults.faults.len() {
        let mut fewer = faults.faults.clone();
        fewer.remove(at);
        out.push((Schedule::new(fewer), workload.clone()));
    }
    for smaller in workload.smaller() {
        out.push((faults.clone(), smaller));
    }
    out
}
