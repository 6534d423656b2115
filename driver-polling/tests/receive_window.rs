//! A gigabyte from the server to an application that does not consume: the connection stops
//! reading at its receive window, the process's peak resident memory stays within the window
//! and a small constant (the kernel's socket buffers hold the rest, outside the process), and
//! once the application consumes, every byte arrives in order.
//!
//! Peak memory is the process's own accounting (`VmHWM` in `/proc/self/status`, reset through
//! `/proc/self/clear_refs` before each test), so the tests of this file run one at a time.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tcpclient_core::{Config, Ending, Event};
use tcpclient_polling::{EventLoop, Runtime};

/// What the server sends: 65,536 blocks of 16 KiB.
const BLOCK: usize = 16 * 1024;
const BLOCKS: u64 = 65_536;
const TOTAL: u64 = BLOCK as u64 * BLOCKS;

/// The receive window under test: the core's default.
const WINDOW: u64 = 1024 * 1024;
/// One read of the polling driver, the most the read that crosses the window adds.
const ONE_READ: u64 = 64 * 1024;
/// Allocator and bookkeeping slack: a fraction of what one more window's worth would need.
const SLACK: u64 = 512 * 1024;

/// Overall limit for one test.
const LIMIT: Duration = Duration::from_secs(120);

/// One test at a time: peak memory is per process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Block `index`: its number, then its number modulo 251 in every other byte, so a block out
/// of place or a byte lost shows.
fn fill_block(index: u64, block: &mut [u8]) {
    block.fill((index % 251) as u8);
    block[..8].copy_from_slice(&index.to_le_bytes());
}

/// Checks received bytes against the stream, chunk by chunk (memcmp, fast in debug builds).
struct InOrder {
    offset: u64,
    expected: Vec<u8>,
}

impl InOrder {
    fn new() -> Self {
        let mut expected = vec![0; BLOCK];
        fill_block(0, &mut expected);
        Self {
            offset: 0,
            expected,
        }
    }

    fn check(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let at = (self.offset % BLOCK as u64) as usize;
            let n = data.len().min(BLOCK - at);
            assert!(
                data[..n] == self.expected[at..at + n],
                "bytes out of order at offset {}",
                self.offset
            );
            self.offset += n as u64;
            data = &data[n..];
            if self.offset.is_multiple_of(BLOCK as u64) {
                fill_block(self.offset / BLOCK as u64, &mut self.expected);
            }
        }
    }
}

/// A server that sends [`TOTAL`] bytes, counting what the kernel took, then closes.
fn gigabyte_server() -> (SocketAddr, Arc<AtomicU64>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut block = vec![0; BLOCK];
        for index in 0..BLOCKS {
            fill_block(index, &mut block);
            stream
                .write_all(&block)
                .expect("the client reads everything");
            counter.fetch_add(BLOCK as u64, Ordering::Relaxed);
        }
    });
    (addr, sent, server)
}

/// Resets the process's peak resident memory to what it holds now; returns that.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (Linux >= 4.0)");
    status_kib("VmRSS") * 1024
}

fn peak() -> u64 {
    status_kib("VmHWM") * 1024
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Waits until the server has been blocked for a while: the client stopped reading and the
/// kernel's buffers are full. Returns what the server got out.
fn until_server_blocked(sent: &AtomicU64, mut turn: impl FnMut()) -> u64 {
    let deadline = Instant::now() + LIMIT;
    let mut last = (sent.load(Ordering::Relaxed), Instant::now());
    loop {
        assert!(Instant::now() < deadline, "the server never blocked");
        turn();
        let now = sent.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(300) {
            assert!(
                now < TOTAL,
                "the whole stream went out: nothing held it back"
            );
            return now;
        }
    }
}

fn assert_peak_within_window(baseline: u64, server_sent: u64) {
    let grew = peak().saturating_sub(baseline);
    let bound = WINDOW + ONE_READ + SLACK;
    eprintln!(
        "the server got {server_sent} B out before it blocked; peak RSS grew {grew} B (bound {bound} B)"
    );
    assert!(
        grew <= bound,
        "peak resident memory grew {grew} bytes, more than the window allows ({bound})"
    );
}

#[test]
fn event_loop_a_gigabyte_to_an_application_that_does_not_consume_stays_within_the_window() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (addr, sent, server) = gigabyte_server();
    let mut event_loop = EventLoop::new().expect("event loop");
    let mut received = 0u64;
    let mut held = Vec::new();
    let baseline = reset_peak();

    let id = event_loop.connect(("127.0.0.1", addr.port()), Config::new());
    let server_sent = until_server_blocked(&sent, || {
        event_loop
            .turn(Some(Duration::from_millis(20)))
            .expect("turn");
        while let Some((_, event)) = event_loop.poll_event() {
            if let Event::Data(data) = event {
                received += data.len() as u64;
                held.push(data);
            }
        }
    });
    assert!(event_loop.client(id).expect("open").receive_window_full());
    assert!(
        received <= WINDOW + ONE_READ,
        "{received} bytes delivered unconsumed"
    );
    assert_peak_within_window(baseline, server_sent);

    // The application catches up: what it held, then everything else as it comes.
    let mut in_order = InOrder::new();
    for data in held.drain(..) {
        in_order.check(&data);
        event_loop.consumed(id, data.len()).expect("consumed");
    }
    let deadline = Instant::now() + LIMIT;
    let report = 'run: loop {
        assert!(Instant::now() < deadline, "the stream did not finish");
        event_loop
            .turn(Some(Duration::from_millis(100)))
            .expect("turn");
        while let Some((_, event)) = event_loop.poll_event() {
            match event {
                Event::Data(data) => {
                    in_order.check(&data);
                    event_loop.consumed(id, data.len()).expect("consumed");
                }
                Event::Closed(report) => break 'run report,
                _ => {}
            }
        }
    };
    server.join().expect("server");
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(report.bytes_received, TOTAL);
    assert_eq!(in_order.offset, TOTAL);
}

#[test]
fn runtime_a_gigabyte_to_an_application_that_does_not_consume_stays_within_the_window() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (addr, sent, server) = gigabyte_server();
    let runtime = Runtime::spawn().expect("runtime");
    let baseline = reset_peak();

    let conn = runtime
        .connect(("127.0.0.1", addr.port()), Config::new())
        .expect("connect");
    let server_sent = until_server_blocked(&sent, || std::thread::sleep(Duration::from_millis(20)));
    // Measured before anything is taken: taking is consuming, and reading would resume.
    assert_peak_within_window(baseline, server_sent);

    let mut in_order = InOrder::new();
    let deadline = Instant::now() + LIMIT;
    let report = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the stream did not finish");
        match conn.recv_timeout(left) {
            Ok(Some(Event::Data(data))) => in_order.check(&data),
            Ok(Some(Event::Closed(report))) => break report,
            Ok(_) => {}
            Err(_) => panic!("the connection ended without its close report"),
        }
    };
    server.join().expect("server");
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(report.bytes_received, TOTAL);
    assert_eq!(in_order.offset, TOTAL);
}
