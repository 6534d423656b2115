//! Replays the committed fuzz corpus and every fuzz regression on stable, on every
//! `cargo test`: the fuzz targets' checks (the invariant monitor and the world around it,
//! ARCHITECTURE.md section 4), without nightly or libFuzzer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tcpclient_core::{CloseReport, Phase};
use tcpclient_testkit::{
    Ending, Outcome, Scenario, Violation, lifecycle, reconnect, run, server_bytes, tls_records,
};

type Target = fn(&[u8]) -> Result<Outcome, Violation>;

fn shutdown(data: &[u8]) -> Result<Outcome, Violation> {
    run(&Scenario::decode(data))
}

const TARGETS: [(&str, Target); 3] = [
    ("shutdown", shutdown),
    ("server_bytes", server_bytes),
    ("lifecycle", lifecycle),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn replay(target: Target, file: &Path) {
    let data = std::fs::read(file).expect("read corpus file");
    if let Err(violation) = target(&data) {
        panic!("{}: {violation}", file.display());
    }
}

fn replay_corpus(target: &str, run: Target) -> Vec<Outcome> {
    let files = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !files.is_empty(),
        "the committed corpus of {target} is missing"
    );
    files
        .iter()
        .map(|file| {
            let data = std::fs::read(file).expect("read corpus file");
            run(&data).unwrap_or_else(|violation| panic!("{}: {violation}", file.display()))
        })
        .collect()
}

/// Every file of every target's committed corpus keeps every invariant; and the corpus is a
/// regression suite only if it goes everywhere: every phase, and every way a connection ends.
#[test]
fn the_committed_corpus_keeps_every_invariant_and_reaches_every_phase_and_ending() {
    let mut phases = BTreeSet::new();
    let mut endings = BTreeSet::new();
    for (target, run) in TARGETS {
        for outcome in replay_corpus(target, run) {
            phases.extend(outcome.phases.iter().map(|p| p.name()));
            endings.insert(outcome.report.outcome());
        }
    }
    let all_phases = Phase::ALL.map(|p| p.name());
    let missing = never_reached(&all_phases, &phases);
    assert!(missing.is_empty(), "phases never reached: {missing:?}");
    // Every way a connection ends but the one a fuzz run cannot reach (a driver thread
    // that dies).
    let all_endings: Vec<&str> = CloseReport::OUTCOMES
        .into_iter()
        .filter(|o| *o != "DriverStopped")
        .collect();
    let missing = never_reached(&all_endings, &endings);
    assert!(
        missing.is_empty(),
        "endings never reached: {missing:?} (reached {endings:?})"
    );
}

/// The `reconnect` target's corpus keeps every session invariant, and goes where sessions
/// go: several reconnects, replayed bytes, a policy's limit, the application's end.
#[test]
fn the_committed_reconnect_corpus_keeps_every_session_invariant_and_goes_the_distance() {
    let files = files(&fuzz_dir().join("corpus").join("reconnect"));
    assert!(
        !files.is_empty(),
        "the committed corpus of reconnect is missing"
    );
    let mut endings = BTreeSet::new();
    let mut most_generations = 0;
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let outcome =
            reconnect(&data).unwrap_or_else(|violation| panic!("{}: {violation}", file.display()));
        endings.insert(outcome.report.outcome());
        most_generations = most_generations.max(outcome.generations);
    }
    assert!(
        most_generations >= 5,
        "no run reconnected more than {most_generations} times"
    );
    let wanted = ["Finished", "Aborted", "PeerClosed", "Connect", "Socket"];
    let missing = never_reached(&wanted, &endings);
    assert!(
        missing.is_empty(),
        "session endings never reached: {missing:?}"
    );
}

/// The `tls_records` corpus: the core and rustls's own client, holding the same keys, agree
/// on every file (or differ only as `ALLOWED` says), and the corpus goes everywhere: a
/// session left open, one the server closed, failures with each alert the RFC names for a
/// record error, and failures that call for none (the server's own alert, a flood).
#[test]
fn the_committed_tls_records_corpus_agrees_with_rustls_and_reaches_every_ending() {
    let files = files(&fuzz_dir().join("corpus").join("tls_records"));
    assert!(
        !files.is_empty(),
        "the committed corpus of tls_records is missing"
    );
    let mut endings = BTreeSet::new();
    let mut names = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let comparison = tls_records(&data)
            .unwrap_or_else(|difference| panic!("{}: {difference}", file.display()));
        names.push(match comparison.ending {
            Ending::Open => "open".to_string(),
            Ending::PeerClosed => "closed by the server".to_string(),
            Ending::Failed(None) => "failed without an alert".to_string(),
            Ending::Failed(Some(alert)) => format!("{alert:?}"),
        });
    }
    endings.extend(names.iter().map(String::as_str));
    let wanted = [
        "open",
        "closed by the server",
        "failed without an alert",
        "BadRecordMac",
        "DecodeError",
        "UnexpectedMessage",
        "RecordOverflow",
        "IllegalParameter",
    ];
    let missing = never_reached(&wanted, &endings);
    assert!(
        missing.is_empty(),
        "endings never reached: {missing:?} (reached {endings:?})"
    );
}

fn never_reached<'a>(all: &[&'a str], reached: &BTreeSet<&str>) -> Vec<&'a str> {
    all.iter()
        .copied()
        .filter(|name| !reached.contains(*name))
        .collect()
}

/// Regressions are named `<target>-<what went wrong>`.
#[test]
fn every_fuzz_regression_stays_fixed() {
    let regressions = files(&fuzz_dir().join("regressions"));
    assert!(
        !regressions.is_empty(),
        "fuzz/regressions is missing or empty: nothing would be replayed"
    );
    for file in regressions {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("tls_records-") {
            let data = std::fs::read(&file).expect("read regression");
            if let Err(difference) = tls_records(&data) {
                panic!("{name}: {difference}");
            }
            continue;
        }
        let target = TARGETS
            .iter()
            .find(|(prefix, _)| name.starts_with(&format!("{prefix}-")))
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("{name}: regressions are named <target>-<description>"));
        replay(target, &file);
    }
}

/// The first crash the fuzzer found: the model missed the Connect the client asks for as
/// soon as it is created (a harness bug, but it would have hidden real ones).
#[test]
fn regression_shutdown_first_connect_unseen_by_model() {
    replay(
        shutdown,
        &fuzz_dir().join("regressions/shutdown-first-connect-unseen-by-model"),
    );
}

/// The in-memory server dropped what rustls would not buffer, so the application "received
/// bytes the server did not send" (a harness bug: its TLS writes had a buffer limit).
#[test]
fn regression_shutdown_received_bytes_mismatch() {
    replay(
        shutdown,
        &fuzz_dir().join("regressions/shutdown-received-bytes-mismatch"),
    );
}
