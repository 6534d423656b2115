//! The harness for a user's own protocol: a small request/response protocol (a number per
//! line, answered with the next one), its server and client written as a user would, run
//! under every scheduled fault family, with an invariant of its own.

use std::time::Duration;

use tcpclient_core::Config;
use tcpclient_sim::{FaultFamily, Harness, History, Listener, PORT, Seeds, Swarm, Task, Verdict};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Requests the client makes.
const REQUESTS: u64 = 10;

/// Answers each line `n` with `n + 1`; `wrong_from` plants a bug: from that number on,
/// `n + 2`.
async fn server(task: Task, wrong_from: Option<u64>) -> tcpclient_sim::turmoil::Result {
    let listener = Listener::bind(("0.0.0.0", PORT), task.wire()).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::task::spawn_local(async move {
            let (read, mut write) = tokio::io::split(stream);
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(n) = line.trim().parse::<u64>() else {
                    return;
                };
                let answer = match wrong_from {
                    Some(from) if n >= from => n + 2,
                    _ => n + 1,
                };
                if write
                    .write_all(format!("{answer}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// Sends the requests one at a time, recording each answer as `n -> m`; gives up on the
/// first failure (the faults may end the connection).
async fn client(task: Task) -> tcpclient_sim::turmoil::Result {
    let config = Config::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_stall_timeout(Some(Duration::from_secs(3)))
        .with_idle_timeout(Some(Duration::from_secs(10)));
    let (conn, driver) = task.connect(("server", PORT), config);
    let app = async {
        let (read, mut write) = tokio::io::split(conn);
        let mut lines = BufReader::new(read).lines();
        for n in 0..REQUESTS {
            write.write_all(format!("{n}\n").as_bytes()).await?;
            let Some(line) = lines.next_line().await? else {
                break;
            };
            task.record(format!("{n} -> {line}"));
        }
        write.shutdown().await?;
        while lines.next_line().await?.is_some() {}
        Ok::<(), std::io::Error>(())
    };
    let (_, end) = tokio::join!(app, driver);
    task.record(format!("closed: {}", end.report.outcome()));
    Ok(())
}

/// Every answer is its request plus one.
fn answers_are_the_next_number(history: &History) -> Result<(), String> {
    for record in &history.records {
        let Some((n, m)) = record.what.split_once(" -> ") else {
            continue;
        };
        let (n, m): (u64, u64) = match (n.parse(), m.parse()) {
            (Ok(n), Ok(m)) => (n, m),
            _ => return Err(format!("an answer that is no number: {}", record.what)),
        };
        if m != n + 1 {
            return Err(format!("{n} was answered {m}"));
        }
    }
    Ok(())
}

fn run(seed: u64, swarm: Swarm, wrong_from: Option<u64>) -> Verdict {
    Harness::new(seed)
        .host("server", move |task| server(task, wrong_from))
        .client("client", client)
        .swarm(swarm)
        .invariant("answers are the next number", answers_are_the_next_number)
        .run()
}

fn every_scheduled_family() -> Swarm {
    FaultFamily::SCHEDULED
        .into_iter()
        .fold(Swarm::none(), Swarm::with)
}

#[test]
fn without_faults_every_request_is_answered() {
    let verdict = run(1, Swarm::none(), None);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    let answers = verdict
        .history
        .records
        .iter()
        .filter(|r| r.what.contains(" -> "))
        .count();
    assert_eq!(answers, REQUESTS as usize, "{:?}", verdict.history.records);
    assert_eq!(
        verdict.history.reports.len(),
        1,
        "one connection, one report"
    );
    assert!(verdict.history.reports[0].1.is_clean());
}

#[test]
fn under_every_fault_family_the_protocol_and_the_monitor_hold() {
    let swarm = every_scheduled_family();
    let seeds = Seeds::from_env_or(0..200).check_determinism();
    seeds.run(
        "under_every_fault_family_the_protocol_and_the_monitor_hold",
        |seed| run(seed, swarm, None),
    );
    let faulted = (0..60)
        .filter(|&seed| !run(seed, swarm, None).faults.faults.is_empty())
        .count();
    assert!(faulted > 40, "faults drawn in only {faulted} of 60 runs");
}

#[test]
fn a_failing_seed_says_how_to_replay_it_and_what_it_drew() {
    let failed = std::panic::catch_unwind(|| {
        Seeds::range(0..20)
            .jobs(2)
            .run("the_test", |seed| run(seed, Swarm::none(), Some(5)))
    });
    let message = match failed {
        Ok(_) => panic!("every seed passed"),
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        message.starts_with("seed 0 broke an invariant:"),
        "{message}"
    );
    assert!(
        message.contains("answers are the next number: 5 was answered 7"),
        "{message}"
    );
    assert!(message.contains("drawn: seed 0: faults none;"), "{message}");
    assert!(
        message.contains("replay: TCPCLIENT_SIM_SEED=0 cargo test")
            && message.ends_with(" the_test -- --exact"),
        "{message}"
    );
}

#[test]
fn a_server_that_answers_wrong_is_caught_by_the_users_invariant() {
    let verdict = run(1, Swarm::none(), Some(5));
    assert_eq!(
        verdict.violations,
        ["answers are the next number: 5 was answered 7"]
    );
}

#[test]
fn a_seed_replays_its_run() {
    let swarm = every_scheduled_family();
    for seed in [3, 11, 42] {
        let (first, again) = (run(seed, swarm, None), run(seed, swarm, None));
        assert_eq!(first.trace.hash(), again.trace.hash(), "seed {seed}");
        assert_eq!(first.history.records, again.history.records);
        assert_eq!(first.drawn(), again.drawn());
    }
}

#[test]
fn a_client_that_never_ends_is_a_liveness_violation() {
    let verdict = Harness::new(1)
        .client("client", |_| async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .limit(Duration::from_secs(5))
        .run();
    assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    assert!(
        verdict.violations[0].starts_with("liveness: the run did not finish with no fault"),
        "{:?}",
        verdict.violations
    );
}

#[test]
fn a_longer_tick_hands_messages_over_at_its_boundaries() {
    let answered_at = |harness: Harness| -> Vec<Duration> {
        let verdict = harness
            .host("server", |task| server(task, None))
            .client("client", client)
            .run();
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        let at: Vec<Duration> = verdict
            .history
            .records
            .iter()
            .filter(|r| r.what.contains(" -> "))
            .map(|r| r.at)
            .collect();
        assert_eq!(at.len(), REQUESTS as usize);
        at
    };
    let off_five = |at: &[Duration]| at.iter().filter(|t| t.as_millis() % 5 != 0).count();

    let fine = answered_at(Harness::new(3));
    let coarse = answered_at(Harness::new(3).tick(Duration::from_millis(5)));

    assert!(off_five(&fine) > 0, "1 ms steps: {fine:?}");
    assert_eq!(off_five(&coarse), 0, "5 ms steps: {coarse:?}");
}
