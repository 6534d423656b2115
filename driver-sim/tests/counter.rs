//! A worked example of testing your own protocol under faults: an increment service that
//! must apply each increment exactly once, however often the client retries it.
//!
//! - **The protocol.** The client sends `INC <id>`; the server applies the increment and
//!   answers `OK <id> <total>`. The client retries an unanswered increment, with the same
//!   id, on a new connection. The server remembers every id it applied, in a store that
//!   survives a crash (an `Rc` the host captured, as a disk), and answers a retry without
//!   applying it again.
//! - **The invariant.** The hosts record what they did: the server `applied <id>`, the client
//!   `done <id>` once answered. No id is applied twice, and every id the client took as done
//!   was applied.
//! - **Two planted bugs** show that the sweep finds such mistakes, though neither shows
//!   without faults: a server that remembers ids per connection only, and a client that
//!   takes an increment as done once it is written.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use tcpclient_core::Config;
use tcpclient_sim::{
    FaultFamily, Harness, History, Listener, PORT, Schedule, Seeds, Swarm, Task, Verdict, Workload,
    shrink_plan,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Increments the client makes.
const INCREMENTS: Increments = Increments(8);
/// Connections the client makes at most, before it gives up.
const CONNECTIONS: u32 = 6;

/// The client's workload: how many increments it makes. Shrinking makes it smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Increments(u64);

impl Workload for Increments {
    fn smaller(&self) -> Vec<Self> {
        let Increments(n) = *self;
        let mut smaller = Vec::new();
        if n > 1 {
            smaller.push(Increments(n / 2));
        }
        if n > 0 && n - 1 != n / 2 {
            smaller.push(Increments(n - 1));
        }
        smaller
    }
}

/// A bug planted on purpose, to see the sweep find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planted {
    /// None: the protocol as designed.
    None,
    /// The server remembers the ids it applied per connection only: a retry on a new
    /// connection is applied again.
    ServerForgetsRetries,
    /// The client takes an increment as done once it is written, not once it is answered.
    ClientTrustsTheWrite,
}

/// The server's durable store: every id applied, and the total.
#[derive(Debug, Default)]
struct Store {
    applied: BTreeSet<u64>,
    total: u64,
}

async fn server(
    task: Task,
    store: Rc<RefCell<Store>>,
    planted: Planted,
) -> tcpclient_sim::turmoil::Result {
    let listener = Listener::bind(("0.0.0.0", PORT), task.wire()).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let (task, store) = (task.clone(), store.clone());
        tokio::task::spawn_local(async move {
            let (read, mut write) = tokio::io::split(stream);
            let mut lines = BufReader::new(read).lines();
            // The planted bug's memory: this connection's ids alone.
            let mut this_connection = BTreeSet::new();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some(id) = line.strip_prefix("INC ").and_then(|id| id.parse().ok()) else {
                    return;
                };
                let seen = match planted {
                    Planted::ServerForgetsRetries => !this_connection.insert(id),
                    _ => store.borrow().applied.contains(&id),
                };
                if !seen {
                    let mut store = store.borrow_mut();
                    store.applied.insert(id);
                    store.total += 1;
                    task.record(format!("applied {id}"));
                }
                let total = store.borrow().total;
                if write
                    .write_all(format!("OK {id} {total}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn client(
    task: Task,
    increments: Increments,
    planted: Planted,
) -> tcpclient_sim::turmoil::Result {
    let Increments(increments) = increments;
    let config = Config::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_stall_timeout(Some(Duration::from_secs(2)))
        .with_idle_timeout(Some(Duration::from_secs(2)));
    let mut next = 0;
    for _ in 0..CONNECTIONS {
        if next == increments {
            break;
        }
        let (conn, driver) = task.connect(("server", PORT), config.clone());
        let app = async {
            let (read, mut write) = tokio::io::split(conn);
            let mut lines = BufReader::new(read).lines();
            while next < increments {
                write.write_all(format!("INC {next}\n").as_bytes()).await?;
                if planted == Planted::ClientTrustsTheWrite {
                    task.record(format!("done {next}"));
                }
                let Some(answer) = lines.next_line().await? else {
                    break;
                };
                if answer.starts_with(&format!("OK {next} ")) {
                    if planted != Planted::ClientTrustsTheWrite {
                        task.record(format!("done {next}"));
                    }
                    next += 1;
                }
            }
            write.shutdown().await?;
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::join!(app, driver);
        if planted == Planted::ClientTrustsTheWrite {
            // It wrote `next` and took it as done: it moves on.
            next = (next + 1).min(increments);
        }
    }
    Ok(())
}

/// No id applied twice; every id taken as done applied.
fn exactly_once(history: &History) -> Result<(), String> {
    let mut applied: BTreeMap<u64, u32> = BTreeMap::new();
    let mut done = BTreeSet::new();
    for record in &history.records {
        if let Some(id) = record
            .what
            .strip_prefix("applied ")
            .and_then(|id| id.parse().ok())
        {
            *applied.entry(id).or_default() += 1;
        }
        if let Some(id) = record
            .what
            .strip_prefix("done ")
            .and_then(|id| id.parse::<u64>().ok())
        {
            done.insert(id);
        }
    }
    if let Some((id, times)) = applied.iter().find(|(_, times)| **times > 1) {
        return Err(format!("increment {id} applied {times} times"));
    }
    if let Some(id) = done.iter().find(|id| !applied.contains_key(id)) {
        return Err(format!("increment {id} taken as done, never applied"));
    }
    Ok(())
}

/// The run of `seed`, its faults still to be given (drawn or explicit).
fn harness(seed: u64, increments: Increments, planted: Planted) -> Harness {
    let store = Rc::new(RefCell::new(Store::default()));
    Harness::new(seed)
        .host("server", move |task| server(task, store.clone(), planted))
        .client("client", move |task| client(task, increments, planted))
        .horizon(Duration::from_secs(1))
        .invariant("exactly once", exactly_once)
}

fn run(seed: u64, planted: Planted) -> Verdict {
    let swarm = FaultFamily::SCHEDULED
        .into_iter()
        .fold(Swarm::none(), Swarm::with);
    harness(seed, INCREMENTS, planted).swarm(swarm).run()
}

/// The first seed of `seeds` whose run breaks an invariant, with its violations.
fn first_failure(seeds: std::ops::Range<u64>, planted: Planted) -> Option<(u64, Vec<String>)> {
    seeds
        .map(|seed| (seed, run(seed, planted).violations))
        .find(|(_, violations)| !violations.is_empty())
}

#[test]
fn the_protocol_holds_under_every_fault_family() {
    Seeds::from_env_or(0..1000)
        .check_determinism()
        .run("the_protocol_holds_under_every_fault_family", |seed| {
            run(seed, Planted::None)
        });
}

#[test]
fn without_faults_every_increment_is_done_once() {
    let verdict = harness(0, INCREMENTS, Planted::None).run();
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    let done = verdict
        .history
        .records
        .iter()
        .filter(|r| r.what.starts_with("done "))
        .count();
    assert_eq!(done, INCREMENTS.0 as usize, "{:?}", verdict.history.records);
}

#[test]
fn the_sweep_finds_a_server_that_forgets_retries() {
    let found = first_failure(0..1000, Planted::ServerForgetsRetries);
    let Some((seed, violations)) = found else {
        panic!("not found in 1,000 seeds");
    };
    assert!(
        violations
            .iter()
            .any(|v| v.contains(" applied ") && v.ends_with(" times")),
        "seed {seed}: {violations:?}"
    );
    println!("a server that forgets retries: found at seed {seed}: {violations:?}");
}

#[test]
fn the_sweep_finds_a_client_that_trusts_the_write() {
    let found = first_failure(0..1000, Planted::ClientTrustsTheWrite);
    let Some((seed, violations)) = found else {
        panic!("not found in 1,000 seeds");
    };
    assert!(
        violations
            .iter()
            .any(|v| v.contains("taken as done, never applied")),
        "seed {seed}: {violations:?}"
    );
    println!("a client that trusts the write: found at seed {seed}: {violations:?}");
}

#[test]
fn a_found_bug_shrinks_to_a_smaller_plan_and_workload() {
    let Some((seed, _)) = first_failure(0..1000, Planted::ServerForgetsRetries) else {
        panic!("not found in 1,000 seeds");
    };
    let drawn = run(seed, Planted::ServerForgetsRetries).faults;
    let shrunk = shrink_plan(drawn.clone(), INCREMENTS, |faults: Schedule, increments| {
        harness(seed, increments, Planted::ServerForgetsRetries).faults(faults)
    });
    let Some(shrunk) = shrunk else {
        panic!("seed {seed} does not fail with its own plan given explicitly");
    };

    assert!(shrunk.faults.faults.len() <= drawn.faults.len());
    assert!(shrunk.workload.0 <= INCREMENTS.0);
    assert!(
        shrunk
            .verdict
            .violations
            .iter()
            .any(|v| v.ends_with(" times")),
        "{:?}",
        shrunk.verdict.violations
    );
    println!(
        "seed {seed}: {} faults and {:?} shrunk in {} runs to {:?} and {:?}: {:?}",
        drawn.faults.len(),
        INCREMENTS,
        shrunk.runs,
        shrunk.faults.faults,
        shrunk.workload,
        shrunk.verdict.violations
    );
}
