//! What the command's test targets share: running `tcpclient` as a process and collecting
//! what a user sees of it.
// Each test target uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The longest any one run of the command may take.
pub const LIMIT: Duration = Duration::from_secs(30);

pub struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit status, and that standard error says `text`.
    pub fn assert_says(&self, status: i32, text: &str) {
        assert_eq!(self.status, status, "{}", self.stderr);
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }
}

pub fn tcpclient(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tcpclient"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs with `input` on stdin (closed after it), within the time limit.
pub fn run(args: &[&str], input: &[u8]) -> Run {
    let mut spawned = Spawned::new(tcpclient(args));
    let mut stdin = spawned.child.stdin.take().expect("stdin");
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    spawned.finish()
}

/// A running tcpclient whose output is collected as it comes.
pub struct Spawned {
    pub child: Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::sync::mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Spawned {
    pub fn new(mut command: Command) -> Self {
        let mut child = command.spawn().expect("spawn tcpclient");
        let mut stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let stdout = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stdout.read_to_end(&mut all);
            all
        });
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            stdout,
            stderr: lines,
            stderr_seen: Vec::new(),
        }
    }

    /// Waits until standard error has a line containing `needle`.
    pub fn wait_for_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + LIMIT;
        while !self.stderr_seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => panic!("no `{needle}` on stderr: {:?}", self.stderr_seen),
            }
        }
    }

    /// Sends SIGINT with the `kill` command, as a terminal's Ctrl-C would.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process within the limit (killing it past that) and collects its output.
    pub fn finish(self) -> Run {
        self.finish_measuring().0
    }

    /// Like [`Self::finish`], and also returns the process's peak resident memory in KiB
    /// (`VmHWM`, read until it exits).
    pub fn finish_measuring(mut self) -> (Run, u64) {
        let deadline = Instant::now() + LIMIT;
        let mut peak = 0;
        let status = loop {
            peak = peak.max(peak_memory_kib(self.child.id()));
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tcpclient still running after {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = self.stdout.join().expect("stdout reader");
        self.stderr_seen.extend(self.stderr.iter());
        let stderr = self.stderr_seen.iter().map(|l| format!("{l}\n")).collect();
        let run = Run {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        };
        (run, peak)
    }
}

/// The peak resident memory of process `pid` so far, in KiB (0 once it is gone).
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
