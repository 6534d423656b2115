//! Replays the committed fuzz corpus and every fuzz regression on stable, on every
//! `cargo test`: the fuzz targets' checks, without nightly or libFuzzer.

use std::path::{Path, PathBuf};

use tcpclient_testkit::{Outcome, Scenario, Violation, lifecycle, run, server_bytes};

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

/// Regressions are named `<target>-<what went wrong>`.
#[test]
fn every_fuzz_regression_stays_fixed() {
    for file in files(&fuzz_dir().join("regressions")) {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let target = TARGETS
            .iter()
            .find(|(prefix, _)| name.starts_with(&format!("{prefix}-")))
            .map(|(_, t)| *t)
            .unwrap_or_else(|| panic!("{name}: regressions are named <target>-<description>"));
        replay(target, &file);
    }
}
