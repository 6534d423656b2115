//! `tcpclient-sim`: seed sweeps and trace replays of the core inside turmoil.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tcpclient_sim::{Coverage, Outcome, Scenario, Seeds, parse_seeds, run, timed, to_rust};

/// Deterministic network fault testing of tcpclient-core inside turmoil.
#[derive(Debug, Parser)]
#[command(name = "tcpclient-sim", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a random scenario (server, client script, faults) for every seed in a range and
    /// check every invariant; exits 1 if any is broken.
    Sweep {
        /// Seeds to run, as START..END (END excluded).
        #[arg(long, value_parser = parse_seeds)]
        seeds: Range<u64>,
        /// Threads to run seeds on.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Fail unless every coverage cell was reached at least once.
        #[arg(long)]
        require_coverage: bool,
        /// Run every seed twice and fail unless both traces are the same.
        #[arg(long)]
        check_determinism: bool,
        /// Stop at the first violation, and say how many seeds it took to find it.
        #[arg(long)]
        fail_fast: bool,
    },
    /// Run one seed and print its trace (JSON lines), or write it to a file.
    Replay {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Write the trace here instead of to standard output.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
    /// Cut a failing seed's scenario down while it fails the same way, and print it as a
    /// Rust test.
    Shrink {
        /// The failing seed.
        #[arg(long)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    match Args::parse().command {
        Command::Sweep {
            seeds,
            jobs,
            require_coverage,
            check_determinism,
            fail_fast,
        } => sweep(
            seeds,
            jobs.max(1),
            Checks {
                require_coverage,
                check_determinism,
                fail_fast,
            },
        ),
        Command::Replay { seed, trace } => replay(seed, trace),
        Command::Shrink { seed } => shrink(seed),
    }
}

/// What a sweep keeps of each run.
struct Seen {
    seed: u64,
    kind: String,
    server: String,
    network: String,
    violations: Vec<String>,
    simulated: Duration,
    coverage: Coverage,
}

/// What a sweep checks beyond the invariants.
struct Checks {
    require_coverage: bool,
    check_determinism: bool,
    fail_fast: bool,
}

fn sweep(seeds: Range<u64>, jobs: usize, checks: Checks) -> ExitCode {
    let Checks {
        require_coverage,
        check_determinism,
        fail_fast,
    } = checks;
    let seen = Mutex::new(Vec::new());
    let ((), wall) = timed(|| {
        Seeds::range(seeds.clone()).jobs(jobs).for_each(|seed| {
            let scenario = Scenario::from_seed(seed);
            let outcome = run(&scenario);
            let mut entry = summarize(&scenario, &outcome);
            if check_determinism {
                let again = run(&scenario).trace.hash();
                if again != outcome.trace.hash() {
                    entry.violations.push(format!(
                        "two runs of the seed gave different traces ({:016x}, {again:016x})",
                        outcome.trace.hash()
                    ));
                }
            }
            let go_on = !fail_fast || entry.violations.is_empty();
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            go_on
        });
    });
    let mut seen = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    seen.sort_by_key(|s| s.seed);

    let simulated: Duration = seen.iter().map(|s| s.simulated).sum();
    let failed: Vec<&Seen> = seen.iter().filter(|s| !s.violations.is_empty()).collect();

    println!(
        "seeds           {}..{} ({} runs, {jobs} jobs)",
        seeds.start,
        seeds.end,
        seen.len()
    );
    println!("wall time       {:.2} s", wall.as_secs_f64());
    // With the determinism check every seed is a lifecycle run twice.
    let lifecycles = seen.len() * if check_determinism { 2 } else { 1 };
    println!(
        "lifecycles/s    {:.0}",
        lifecycles as f64 / wall.as_secs_f64()
    );
    println!(
        "simulated time  {:.0} s ({:.0}x real time)",
        simulated.as_secs_f64(),
        simulated.as_secs_f64() / wall.as_secs_f64()
    );
    print_counts("outcome", seen.iter().map(|s| s.kind.as_str()));
    print_counts("server", seen.iter().map(|s| s.server.as_str()));
    print_counts("network", seen.iter().map(|s| s.network.as_str()));
    let mut coverage = Coverage::default();
    for s in &seen {
        coverage.merge(&s.coverage);
    }
    println!("\n{:<44} runs", "coverage");
    for (cell, n) in coverage.table() {
        let mark = if n == 0 { "  <- never reached" } else { "" };
        println!("  {cell:<42} {n:>5}{mark}");
    }
    let missing = coverage.missing();
    if check_determinism {
        println!("\ndeterminism     every seed run twice, traces compared");
    }
    println!("\nviolations      {}", failed.len());
    if let Some(first) = failed.first() {
        println!(
            "first found     seed {} ({} seeds run to find it)",
            first.seed,
            first.seed - seeds.start + 1
        );
    }
    for s in &failed {
        println!("  seed {}: {}", s.seed, s.violations.join("; "));
        println!(
            "    replay: cargo run --release -p tcpclient-sim --features cli -- replay --seed {}",
            s.seed
        );
    }
    if require_coverage && !missing.is_empty() {
        println!(
            "coverage: {} cells never reached: {missing:?}",
            missing.len()
        );
        return ExitCode::FAILURE;
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A table of how many runs had each value.
fn print_counts<'a>(title: &str, values: impl Iterator<Item = &'a str>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    println!("\n{title:<32} runs");
    for (value, n) in &counts {
        println!("  {value:<30} {n:>5}");
    }
}

fn summarize(scenario: &Scenario, outcome: &Outcome) -> Seen {
    Seen {
        seed: scenario.seed,
        kind: outcome.kind(),
        server: scenario.server.name().to_string(),
        network: scenario.network.family_label(),
        violations: outcome.violations.clone(),
        simulated: outcome.simulated,
        coverage: outcome.coverage.clone(),
    }
}

fn replay(seed: u64, path: Option<PathBuf>) -> ExitCode {
    let scenario = Scenario::from_seed(seed);
    let outcome = run(&scenario);
    let trace = outcome.trace.to_jsonl();
    match path {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, &trace) {
                eprintln!("tcpclient-sim: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        None => print!("{trace}"),
    }
    eprintln!("{}", scenario.describe());
    eprintln!(
        "outcome: {}; trace hash {:016x}; {} lines",
        outcome.kind(),
        outcome.trace.hash(),
        outcome.trace.lines().len()
    );
    for violation in &outcome.violations {
        eprintln!("violation: {violation}");
    }
    if outcome.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn shrink(seed: u64) -> ExitCode {
    let scenario = Scenario::from_seed(seed);
    let Some(shrunk) = tcpclient_sim::shrink(&scenario) else {
        eprintln!("tcpclient-sim: seed {seed} keeps every invariant: nothing to shrink");
        return ExitCode::FAILURE;
    };
    println!("before: {}", scenario.describe());
    println!("after:  {}", shrunk.scenario.describe());
    println!("violation: {}", shrunk.outcome.violations.join("; "));
    println!("({} candidate runs)\n", shrunk.runs);
    print!(
        "{}",
        to_rust(&shrunk.scenario, &format!("seed_{seed}_shrunk"))
    );
    ExitCode::SUCCESS
}
