//! Running a harness over many seeds from a `#[test]`: which seeds (from the environment,
//! as madsim takes them), on how many threads, each twice if asked; and, for a failing
//! seed, the one command that replays it and what it drew.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::harness::Verdict;

/// The environment variable that picks one seed: `TCPCLIENT_SIM_SEED=17`.
pub const SEED_VAR: &str = "TCPCLIENT_SIM_SEED";
/// The environment variable that picks a range of seeds: `TCPCLIENT_SIM_SEEDS=0..10000`.
pub const SEEDS_VAR: &str = "TCPCLIENT_SIM_SEEDS";

/// Which seeds a test runs, and how.
///
/// ```
/// use tcpclient_sim::{Harness, Seeds};
///
/// // Seeds 0..50, unless TCPCLIENT_SIM_SEED or TCPCLIENT_SIM_SEEDS says otherwise.
/// Seeds::from_env_or(0..50).check_determinism().run("my_test", |seed| {
///     Harness::new(seed)
///         .client("client", |task| async move {
///             task.record("hello");
///             Ok(())
///         })
///         .run()
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds {
    range: Range<u64>,
    jobs: usize,
    twice: bool,
}

impl Seeds {
    /// `default`, unless the environment picks one seed ([`SEED_VAR`]) or a range
    /// ([`SEEDS_VAR`], `start..end`). Runs on as many threads as the machine has cores.
    ///
    /// # Panics
    ///
    /// If a variable is set to something that is no seed or range: a test run with a typo
    /// should not pass quietly on the default seeds.
    pub fn from_env_or(default: Range<u64>) -> Self {
        let range = match (std::env::var(SEED_VAR), std::env::var(SEEDS_VAR)) {
            (Ok(seed), _) => match seed.trim().parse::<u64>() {
                Ok(seed) => seed..seed.saturating_add(1),
                Err(_) => panic!("{SEED_VAR}={seed} is no seed (a number)"),
            },
            (_, Ok(range)) => match parse_seeds(&range) {
                Ok(range) => range,
                Err(why) => panic!("{SEEDS_VAR}={range}: {why}"),
            },
            _ => default,
        };
        let jobs = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            range,
            jobs,
            twice: false,
        }
    }

    /// Exactly `range`, whatever the environment says.
    pub fn range(range: Range<u64>) -> Self {
        Self {
            range,
            jobs: 1,
            twice: false,
        }
    }

    /// Runs on `jobs` threads (at least one).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Runs every seed twice and fails a seed whose two runs differ (in the trace, or in
    /// what the clients recorded): something in the run does not come from the seed.
    pub fn check_determinism(mut self) -> Self {
        self.twice = true;
        self
    }

    /// Runs `run` for every seed. Returns the number of seeds run.
    ///
    /// # Panics
    ///
    /// On the first failing seed found (the lowest of those tried), with its violations, the
    /// command that replays it (`test` is the test's name), and what the seed drew. This is
    /// how a `#[test]` fails.
    pub fn run(self, test: &str, run: impl Fn(u64) -> Verdict + Sync) -> u64 {
        let failures: Mutex<Vec<(u64, String)>> = Mutex::default();
        self.for_each(|seed| {
            let Some(failure) = check(seed, self.twice, &run) else {
                return true;
            };
            let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.push((seed, failure));
            false
        });
        let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
        failures.sort_by_key(|(seed, _)| *seed);
        if let Some((seed, failure)) = failures.into_iter().next() {
            panic!("{failure}\n    replay: {}", replay(seed, test));
        }
        self.range.end.saturating_sub(self.range.start)
    }
}

impl Seeds {
    /// Calls `visit` for every seed on the jobs' threads, each taking the next seed in
    /// order, until one returns `false`. Then no new seed is taken; every seed below the one
    /// that stopped has been or is being visited, so the lowest failing seed is found.
    pub fn for_each(&self, visit: impl Fn(u64) -> bool + Sync) {
        let next = AtomicU64::new(self.range.start);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= self.range.end {
                            return;
                        }
                        if !visit(seed) {
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
    }
}

/// A range of seeds, `START..END` (`END` excluded, not empty), as the environment and the
/// `tcpclient-sim` command take it.
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let (start, end) = text.split_once("..").ok_or("expected START..END")?;
    let (start, end) = (start.trim(), end.trim());
    let start: u64 = start.parse().map_err(|_| format!("bad start `{start}`"))?;
    let end: u64 = end.parse().map_err(|_| format!("bad end `{end}`"))?;
    if start >= end {
        return Err("the range is empty".into());
    }
    Ok(start..end)
}

/// Runs `seed` (twice, if `twice`); says what is wrong, if anything.
fn check(seed: u64, twice: bool, run: &impl Fn(u64) -> Verdict) -> Option<String> {
    let verdict = run(seed);
    if !verdict.violations.is_empty() {
        let violations = verdict.violations.join("\n      ");
        return Some(format!(
            "seed {seed} broke an invariant:\n      {violations}\n    drawn: {}",
            verdict.drawn()
        ));
    }
    if twice {
        let again = run(seed);
        let same = again.trace.hash() == verdict.trace.hash()
            && again.history.records == verdict.history.records;
        if !same {
            return Some(format!(
                "seed {seed} ran differently the second time: something in the run does not \
                 come from the seed (a real clock, a thread, a HashMap's order, ...)\n    \
                 drawn: {}",
                verdict.drawn()
            ));
        }
    }
    None
}

/// The command that runs `test` with `seed` alone.
fn replay(seed: u64, test: &str) -> String {
    let package = std::env::var("CARGO_PKG_NAME")
        .map(|name| format!(" -p {name}"))
        .unwrap_or_default();
    format!("{SEED_VAR}={seed} cargo test{package} {test} -- --exact")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_start_dot_dot_end() {
        assert_eq!(parse_seeds("0..10000"), Ok(0..10000));
        assert_eq!(parse_seeds(" 5 .. 9 "), Ok(5..9));
        assert_eq!(parse_seeds("5-9"), Err("expected START..END".into()));
        assert_eq!(parse_seeds("a..9"), Err("bad start `a`".into()));
        assert_eq!(parse_seeds("9..9"), Err("the range is empty".into()));
    }

    #[test]
    fn the_replay_line_names_the_seed_and_the_test() {
        let line = replay(17, "my_test");
        assert!(
            line.starts_with("TCPCLIENT_SIM_SEED=17 cargo test"),
            "{line}"
        );
        assert!(line.ends_with(" my_test -- --exact"), "{line}");
    }
}
