//! The `tcpclient` program run as a process against loopback servers: stdout, stderr and the
//! exit status, as a user sees them.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tcpclient_testkit::Pki;
use tcpclient_testkit::loopback::*;
use tcpclient_testkit::process::{ScriptServer, free_port};

mod support;
use support::{LIMIT, Run, Spawned, run, tcpclient};

fn host_port(addr: SocketAddr) -> [String; 2] {
    [addr.ip().to_string(), addr.port().to_string()]
}

/// A file in the temp directory, removed when the test lets go of it (a run of the suite
/// left 20 MB behind each time before).
struct TempFile(PathBuf);

impl std::ops::Deref for TempFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl AsRef<std::path::Path> for TempFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes `text` to a fresh file in the temp directory.
fn temp_file(name: &str, text: &[u8]) -> TempFile {
    let path = std::env::temp_dir().join(format!("tcpclient-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    TempFile(path)
}

#[test]
fn echo_like_nc() {
    let [host, port] = host_port(echo_server());

    let run = run(&[&host, &port], b"hello\nworld\n");

    assert_eq!(run.stdout, b"hello\nworld\n");
    assert_eq!(run.stderr, "");
    assert_eq!(run.status, 0);
}

#[test]
fn a_refused_port_fails_with_a_one_line_reason() {
    let port = unused_port();

    let run = run(&["127.0.0.1", &port.to_string()], b"");

    assert_eq!(run.status, 1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("tcpclient: failed: connecting to 127.0.0.1:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
}

#[test]
fn when_the_server_closes_first_the_output_is_written_without_waiting_for_stdin() {
    let [host, port] = host_port(closing_server(b"goodbye\n"));
    // stdin stays open: the program must not wait for it.
    let run = Spawned::new(tcpclient(&[&host, &port])).finish();

    assert_eq!(run.stdout, b"goodbye\n");
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn tls_from_the_start_with_a_ca_file() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config()));
    let ca = temp_file("ca.pem", pki.ca_pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"over tls\n",
    );

    assert_eq!(run.stdout, b"over tls\n");
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
}

#[test]
fn an_untrusted_certificate_fails() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config()));
    let other_ca = temp_file("other-ca.pem", Pki::new().ca_pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--cafile",
            other_ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"x",
    );

    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("certificate is not trusted"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn insecure_warns_and_connects_anyway() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config()));

    let run = run(&["--tls", "--insecure", &host, &port], b"unverified\n");

    assert_eq!(run.stdout, b"unverified\n");
    assert!(run.stderr.contains("warning: --insecure"), "{}", run.stderr);
    assert_eq!(run.status, 0);
}

#[test]
fn starttls_smtp_imap_pop3_ftp_lmtp_nntp_sieve_and_xmpp() {
    let pki = Pki::new();
    let ca = temp_file("starttls-ca.pem", pki.ca_pem().as_bytes());
    for protocol in [
        "smtp", "imap", "pop3", "ftp", "lmtp", "nntp", "sieve", "xmpp",
    ] {
        let [host, port] = host_port(starttls_server(protocol, pki.server_config(), false));
        let args = [
            "--starttls",
            protocol,
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            "-v",
        ];

        let run = run(&[&args[..], &[&host, &port]].concat(), b"NOOP\r\n");

        assert_eq!(run.stdout, b"250 NOOP\r\n", "{protocol}: {}", run.stderr);
        assert!(
            run.stderr.contains("TLS established: TLSv1_3"),
            "{protocol}: {}",
            run.stderr
        );
        assert_eq!(run.status, 0, "{protocol}: {}", run.stderr);
    }
}

#[test]
fn starttls_refuses_a_server_that_says_no() {
    let pki = Pki::new();
    // An FTP greeting, but we ask for POP3's STLS: the server answers 500.
    let [host, port] = host_port(starttls_server("ftp", pki.server_config(), false));

    let run = run(&["--starttls", "pop3", "--insecure", &host, &port], b"");

    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains("STARTTLS: expected `+OK`, the server said `220-welcome`"),
        "{}",
        run.stderr
    );
}

#[test]
fn starttls_injection_is_refused() {
    let pki = Pki::new();
    let [host, port] = host_port(starttls_server("smtp", pki.server_config(), true));
    let ca = temp_file("inject-ca.pem", pki.ca_pem().as_bytes());

    let run = run(
        &[
            "--starttls",
            "smtp",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("STARTTLS injection"), "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "the injected bytes must not be shown as session data"
    );
}

#[test]
fn trace_writes_one_json_line_per_event_in_the_cores_vocabulary() {
    let [host, port] = host_port(echo_server());

    let run = run(&["--trace", &host, &port], b"traced\n");

    assert_eq!(run.status, 0);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let outputs: Vec<&str> = lines.iter().filter_map(|e| e["output"].as_str()).collect();
    let inputs: Vec<&str> = lines.iter().filter_map(|e| e["input"].as_str()).collect();
    assert_eq!(outputs.first(), Some(&"Connected"), "{outputs:?}");
    assert_eq!(outputs.last(), Some(&"Closed"), "{outputs:?}");
    assert!(
        outputs.contains(&"Data") && outputs.contains(&"PeerClosed"),
        "{outputs:?}"
    );
    assert_eq!(inputs, ["Send", "Finish"]);
    let closed = &lines.last().unwrap()["details"];
    assert_eq!(closed["outcome"], "Finished");
    assert_eq!(closed["bytes_written"], 7);
    assert_eq!(closed["clean"], true);
}

#[test]
fn send_file_at_a_rate() {
    let [host, port] = host_port(echo_server());
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let file = temp_file("send.bin", &content);

    let run = run(
        &[
            "--send-file",
            file.to_str().unwrap(),
            "--rate",
            "500000",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.stdout, content);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
}

/// Standard output that nobody reads, from a server that never stops: the program's memory
/// stays bounded, because it stops reading the socket while its window of unread data is full.
#[test]
fn a_stalled_stdout_keeps_memory_bounded() {
    let [host, port] = host_port(firehose());
    // Nobody reads the program's standard output: the pipe fills, then its writes block.
    let mut child = tcpclient(&[&host, &port]).spawn().unwrap();
    let pid = child.id();
    let resident = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let mut peak = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(resident());
    }
    let _ = child.kill();
    let _ = child.wait();

    assert!(peak > 0, "could not read the process's memory");
    assert!(peak < 40 * 1024, "resident memory reached {peak} KiB");
}

/// Input the program read but could not send (the server closed first) is not a clean end.
/// The server stops reading until the program is certainly holding input it cannot send
/// yet (its send queue full), then half-closes and reads the rest.
#[test]
fn input_left_unsent_when_the_server_closes_first_is_an_error() {
    let [host, port] = host_port(serve(|mut stream| {
        let mut first = vec![0u8; 64 * 1024];
        if stream.read_exact(&mut first).is_ok() {
            std::thread::sleep(Duration::from_millis(500));
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    }));

    let run = run(&[&host, &port], &vec![9u8; 20_000_000]);

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("bytes read from the input could not be sent"),
        "{}",
        run.stderr
    );
}

/// More than the send limit at full rate: the producer must be woken as the queue drains,
/// even when every write completes at once.
#[test]
fn send_file_larger_than_the_send_limit_at_full_rate() {
    // A server that only reads: nothing comes back to wake the client's loop.
    let (addr, read) = slow_reader(Duration::ZERO);
    let [host, port] = host_port(addr);
    let file = temp_file("big.bin", &vec![5u8; 20_000_000]);

    let run = run(&["--send-file", file.to_str().unwrap(), &host, &port], b"");

    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 20_000_000);
}

#[test]
fn ctrl_c_finishes_gracefully_and_reports() {
    let [host, port] = host_port(echo_server());
    let mut spawned = Spawned::new(tcpclient(&["-v", &host, &port]));
    let mut stdin = spawned.child.stdin.take().unwrap();
    stdin.write_all(b"before the interrupt\n").unwrap();
    spawned.wait_for_stderr("connected to");

    spawned.interrupt();
    let run = spawned.finish();
    drop(stdin);

    assert_eq!(run.stdout, b"before the interrupt\n");
    assert!(
        run.stderr.contains("interrupted: finishing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("finished gracefully; sent 21 of 21 bytes (21 confirmed, 0 undelivered)"),
        "{}",
        run.stderr
    );
    assert_eq!(run.status, 0);
}

#[test]
fn a_second_ctrl_c_aborts_and_accounts_for_every_byte() {
    let (addr, _read) = slow_reader(Duration::from_secs(1));
    let [host, port] = host_port(addr);
    let mut spawned = Spawned::new(tcpclient(&["-v", &host, &port]));
    let mut stdin = spawned.child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let block = vec![0u8; 64 * 1024];
        for _ in 0..200 {
            if stdin.write_all(&block).is_err() {
                break;
            }
        }
    });
    spawned.wait_for_stderr("connected to");
    std::thread::sleep(Duration::from_millis(200));

    spawned.interrupt();
    spawned.wait_for_stderr("interrupted: finishing");
    spawned.interrupt();
    let run = spawned.finish();
    let _ = writer.join();

    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("interrupted again: aborting"),
        "{}",
        run.stderr
    );
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("tcpclient: aborted; sent "), "{last}");
    // "sent W of A bytes (C confirmed, U unconfirmed, L lost, N undelivered)", the counts
    // that are zero left out but the last: every accepted byte is accounted for.
    let count = |what: &str| -> u64 {
        let Some(end) = last.find(&format!(" {what}")) else {
            return 0;
        };
        let digits = last[..end]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default();
        digits.parse().unwrap()
    };
    let sent = last.split("sent ").nth(1).unwrap_or_default();
    let numbers: Vec<u64> = sent
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .take(2)
        .collect();
    let [written, accepted] = numbers[..] else {
        panic!("{last}");
    };
    let (unconfirmed, lost) = (count("unconfirmed"), count("lost"));
    assert!(accepted > 0, "{last}");
    assert_eq!(count("confirmed"), 0, "an abort confirms nothing: {last}");
    assert_eq!(written, unconfirmed + lost, "{last}");
    assert_eq!(unconfirmed + count("undelivered"), accepted, "{last}");
}

#[test]
fn demo_runs_the_whole_lifecycle() {
    let run = run(&["demo"], b"");

    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status, 0, "{stdout}{}", run.stderr);
    for step in [
        "1. connect",
        "2. plaintext exchange",
        "3. STARTTLS",
        "4. encrypted exchange",
        "5. graceful shutdown",
    ] {
        assert!(stdout.contains(step), "{stdout}");
    }
    assert!(stdout.contains("server: 250 hello over TLS"), "{stdout}");
    assert!(
        stdout.contains("close report: finished gracefully"),
        "{stdout}"
    );
}

#[test]
fn help_and_usage_errors_follow_the_conventions() {
    let help = run(&["--help"], b"");
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status, 0);
    assert!(
        text.contains("Usage: tcpclient [OPTIONS] <HOST> <PORT>"),
        "{text}"
    );
    assert!(text.contains("--starttls <PROTOCOL>"), "{text}");

    let missing_port = run(&["localhost"], b"");
    assert_eq!(missing_port.status, 2);
    assert!(
        missing_port.stderr.contains("<PORT>"),
        "{}",
        missing_port.stderr
    );
}

/// Answers the greeting slot by streaming `unit` for ever (until the client goes away).
fn streaming_server(unit: &'static [u8]) -> SocketAddr {
    serve(move |mut stream| {
        let block = unit.repeat((16 * 1024 / unit.len()).max(1));
        while stream.write_all(&block).is_ok() {}
    })
}

/// A server that streams `220-x` continuation lines for ever never lets the dialogue end:
/// the program gives up at its connect timeout, not later.
#[test]
fn a_starttls_reply_that_never_ends_stops_at_the_connect_timeout() {
    let [host, port] = host_port(streaming_server(b"220-x\r\n"));
    let started = Instant::now();

    let run = run(
        &[
            "--starttls",
            "smtp",
            "--insecure",
            "--connect-timeout",
            "2",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("STARTTLS"), "{}", run.stderr);
}

/// A reply line with no end: refused once it passes 8 KiB, with the memory it took small.
#[test]
fn a_starttls_reply_line_without_an_end_is_refused_in_bounded_memory() {
    let [host, port] = host_port(streaming_server(b"x"));
    let spawned = Spawned::new(tcpclient(&[
        "--starttls",
        "smtp",
        "--insecure",
        "--connect-timeout",
        "20",
        &host,
        &port,
    ]));

    let (run, peak_kib) = spawned.finish_measuring();

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("longer than 8192 bytes"),
        "{}",
        run.stderr
    );
    assert!(
        peak_kib > 0 && peak_kib < 30 * 1024,
        "peak resident memory {peak_kib} KiB"
    );
}

/// A reply of too many lines, sent at once: refused at once, long before the timeout.
#[test]
fn a_starttls_reply_of_too_many_lines_is_refused() {
    let [host, port] = host_port(serve(|mut stream| {
        let _ = stream.write_all(&b"220-more\r\n".repeat(5000));
        std::thread::sleep(PATIENCE);
    }));
    let started = Instant::now();

    let run = run(
        &[
            "--starttls",
            "smtp",
            "--insecure",
            "--connect-timeout",
            "20",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(run.stderr.contains("lines"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// `--connect-timeout` bounds the whole establishment, TLS handshake included, as curl's
/// does: a server that accepts and never speaks TLS cannot hold the program longer.
#[test]
fn the_connect_timeout_bounds_the_tls_handshake() {
    let [host, port] = host_port(serve(|_stream| std::thread::sleep(PATIENCE)));
    let started = Instant::now();

    let run = run(
        &[
            "--tls",
            "--insecure",
            "--connect-timeout",
            "1",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("--connect-timeout"), "{}", run.stderr);
}

/// A paced file that the server cuts short after 3 bytes: the exit status counts every byte
/// of the file, whatever the input thread was doing when the connection closed.
#[test]
fn a_paced_send_file_cut_short_by_the_server_is_an_error() {
    let [host, port] = host_port(serve(|mut stream| {
        let mut first = [0u8; 3];
        let _ = std::io::Read::read_exact(&mut stream, &mut first);
    }));
    let file = temp_file("paced.bin", &vec![1u8; 100_000]);

    let run = run(
        &[
            "--send-file",
            file.to_str().unwrap(),
            "--rate",
            "2",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("of 100000 bytes of --send-file"),
        "{}",
        run.stderr
    );
}

/// An empty ALPN name (`h2,`) is a usage error, not a panic inside rustls.
#[test]
fn an_empty_alpn_name_is_a_usage_error() {
    let [host, port] = host_port(echo_server());

    let run = run(&["--tls", "--insecure", "--alpn", "h2,", &host, &port], b"");

    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("ALPN"), "{}", run.stderr);
}

/// Standard error closed before the program writes to it: no panic, and the exit status
/// still tells how the session ended.
#[test]
fn a_closed_standard_error_does_not_change_the_exit_status() {
    let [host, port] = host_port(echo_server());
    let clean = {
        let mut command = tcpclient(&["-v", &host, &port]);
        command.stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        drop(child.stderr.take()); // the reading end is gone: writes fail with EPIPE
        drop(child.stdin.take());
        child.wait().expect("wait")
    };
    let failed = {
        let port = unused_port().to_string();
        let mut command = tcpclient(&["127.0.0.1", &port]);
        let mut child = command.spawn().expect("spawn");
        drop(child.stderr.take());
        drop(child.stdin.take());
        child.wait().expect("wait")
    };

    assert_eq!(clean.code(), Some(0));
    assert_eq!(failed.code(), Some(1));
}

/// `--tls [::1]`: the brackets belong to the address, not to the name checked against the
/// certificate, which holds the IP address ::1.
#[test]
fn tls_to_a_bracketed_ipv6_literal_verifies_its_ip_address() {
    let pki = Pki::new();
    let addr = tcpclient_testkit::loopback::tls_echo_server_on("[::1]:0", pki.server_config());
    let ca = temp_file("ipv6-ca.pem", pki.ca_pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "[::1]",
            &addr.port().to_string(),
        ],
        b"over ipv6\n",
    );

    assert_eq!(run.stdout, b"over ipv6\n", "{}", run.stderr);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
}

/// A self-signed server certificate made the usual way (CA:TRUE), given as `--cafile`:
/// trusted, as `openssl s_client -CAfile` trusts it.
#[test]
fn a_self_signed_certificate_given_as_cafile_is_trusted() {
    let cert = tcpclient_testkit::SelfSigned::new(&["localhost"]);
    let [host, port] = host_port(tls_echo_server(cert.server_config()));
    let ca = temp_file("self-signed.pem", cert.pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"pinned\n",
    );

    assert_eq!(run.stdout, b"pinned\n", "{}", run.stderr);
    assert_eq!((run.status, run.stderr.as_str()), (0, ""));
}

/// A CA certificate used as a server certificate, not itself in `--cafile`: refused, with
/// the flag that fixes it named.
#[test]
fn a_ca_certificate_as_server_certificate_names_the_fix() {
    let pki = Pki::with_ca_leaf(tcpclient_testkit::Leaf::Good);
    let [host, port] = host_port(tls_echo_server(pki.server_config()));
    let ca = temp_file("issuer-only.pem", pki.ca_pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"x",
    );

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("--cafile"), "{}", run.stderr);
}

/// `-s` binds the local address (any of 127/8 is loopback on Linux), and `-v` shows each
/// connect attempt and how it ended.
#[test]
fn source_address_and_verbose_attempts() {
    let (peer_tx, peer) = std::sync::mpsc::channel();
    let addr = serve(move |mut stream| {
        let _ = peer_tx.send(stream.peer_addr().map(|a| a.ip()));
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let _ = stream.write_all(&all);
    });
    let [host, port] = host_port(addr);

    let run = run(&["-v", "-s", "127.0.0.2", &host, &port], b"from .2\n");

    assert_eq!(run.stdout, b"from .2\n");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        peer.recv_timeout(LIMIT).unwrap().unwrap().to_string(),
        "127.0.0.2"
    );
    assert!(run.stderr.contains("attempt started"), "{}", run.stderr);
    assert!(run.stderr.contains("outcome=connected"), "{}", run.stderr);
}

/// `-6` with an IPv4 address: no usable address, said plainly.
#[test]
fn ipv6_only_with_an_ipv4_address_has_no_usable_address() {
    let [host, port] = host_port(echo_server());

    let run = run(&["-6", &host, &port], b"");

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("no usable address"), "{}", run.stderr);
}

/// A server *process*: python3 appending what each connection sends to `path`, one
/// connection after another, closing each at the client's EOF. Prints `ready` once
/// listening. With a `login`, each connection must begin with it: the server appends `+`
/// to `path.marks` for one that does (and keeps the rest), `!` for one that does not
/// (and drops it).
struct SinkProcess(ScriptServer);

impl SinkProcess {
    const SCRIPT: &'static str = r#"
path, login = sys.argv[2], sys.argv[3].encode()
while True:
    c, _ = s.accept()
    first = b""
    while len(first) < len(login):
        d = c.recv(len(login) - len(first))
        if not d:
            break
        first += d
    if login:
        with open(path + ".marks", "ab") as m:
            m.write(b"+" if first == login else b"!")
        if first != login:
            c.close()
            continue
    with open(path, "ab") as f:
        while True:
            d = c.recv(65536)
            if not d:
                break
            f.write(d)
            f.flush()
    c.close()
"#;

    fn start(port: u16, path: &std::path::Path) -> Self {
        Self::requiring(port, path, "")
    }

    fn requiring(port: u16, path: &std::path::Path, login: &str) -> Self {
        let args: [&std::ffi::OsStr; 2] = [path.as_ref(), login.as_ref()];
        Self(ScriptServer::python(port, Self::SCRIPT, args))
    }

    fn kill(self) {
        self.0.kill();
    }
}

fn file_len(path: &std::path::Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize)
}

#[test]
fn reconnect_delivers_all_of_standard_input_across_a_server_restart() {
    let port = free_port();
    let received = temp_file("reconnect-received.bin", b"");
    let server = SinkProcess::start(port, &received);
    let mut spawned = Spawned::new(tcpclient(&[
        "--reconnect",
        "-v",
        "127.0.0.1",
        &port.to_string(),
    ]));
    let mut stdin = spawned.child.stdin.take().expect("stdin");
    let first: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();

    stdin.write_all(&first).expect("write stdin");
    let deadline = Instant::now() + LIMIT;
    while file_len(&received) < first.len() {
        assert!(Instant::now() < deadline, "the first part never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    spawned.wait_for_stderr("reconnecting in");
    // Sent while the server is down: it goes out on the next connection.
    stdin.write_all(&second).expect("write stdin");
    std::thread::sleep(Duration::from_millis(300));
    let _server = SinkProcess::start(port, &received);
    spawned.wait_for_stderr("reconnected to");
    drop(stdin);
    let run = spawned.finish();

    assert_eq!(run.status, 0, "{}", run.stderr);
    let all = std::fs::read(&received).expect("received");
    assert_eq!(all.len(), first.len() + second.len(), "{}", run.stderr);
    assert!(all == [first, second].concat(), "every byte, in order");
    assert!(run.stderr.contains("connection 1 lost"), "{}", run.stderr);
}

#[test]
fn a_preamble_goes_first_on_every_connection_across_server_restarts() {
    let port = free_port();
    let received = temp_file("preamble-received.bin", b"");
    // The server writes its marks beside what it received; removed with it.
    let marks = TempFile(received.with_extension("bin.marks"));
    let _ = std::fs::remove_file(&marks);
    let login = "AUTH secret\r\n";
    let preamble = temp_file("preamble.txt", login.as_bytes());
    let mut server = SinkProcess::requiring(port, &received, login);
    let mut spawned = Spawned::new(tcpclient(&[
        "--reconnect",
        "--preamble",
        preamble.to_str().expect("a UTF-8 path"),
        "-v",
        "127.0.0.1",
        &port.to_string(),
    ]));
    let mut stdin = spawned.child.stdin.take().expect("stdin");
    let mut sent = Vec::new();

    // Three connections: the server is killed twice, with input sent while it is down.
    for part in 0..3u32 {
        let data: Vec<u8> = (0..20_000u32).map(|i| ((i + part) % 251) as u8).collect();
        stdin.write_all(&data).expect("write stdin");
        sent.extend_from_slice(&data);
        if part == 2 {
            break;
        }
        let deadline = Instant::now() + LIMIT;
        while file_len(&received) < sent.len() {
            assert!(Instant::now() < deadline, "part {part} never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }
        server.kill();
        spawned.wait_for_stderr("reconnecting in");
        server = SinkProcess::requiring(port, &received, login);
    }
    drop(stdin);
    let run = spawned.finish();
    drop(server);

    assert_eq!(run.status, 0, "{}", run.stderr);
    let all = std::fs::read(&received).expect("received");
    assert!(
        all == sent,
        "every input byte once, in order, after the logins"
    );
    let marks_written = std::fs::read(&marks).expect("marks");
    assert_eq!(
        marks_written, b"+++",
        "each connection began with the login"
    );
}

#[test]
fn a_preamble_that_cannot_be_read_is_a_setup_error() {
    let run = run(
        &[
            "--reconnect",
            "--preamble",
            "/nonexistent/login",
            "127.0.0.1",
            "9",
        ],
        b"",
    );

    assert_eq!(
        run.status, 1,
        "as for an unreadable --cafile: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("cannot read --preamble /nonexistent/login"),
        "{}",
        run.stderr
    );
}

#[test]
fn reconnect_cannot_redo_a_starttls_dialogue() {
    let run = run(
        &["--reconnect", "--starttls", "smtp", "127.0.0.1", "25"],
        b"",
    );

    assert_eq!(run.status, 2, "a usage error: {}", run.stderr);
    assert!(run.stderr.contains("--starttls"), "{}", run.stderr);
}

// ---- nc habits: -z, -w, -q, -N ----

/// `-z` against a port that answers: exit 0 without reading standard input (left open),
/// and with `-v` the nc-style line.
#[test]
fn zero_io_says_an_open_port_answers() {
    let [host, port] = host_port(echo_server());

    let run = Spawned::new(tcpclient(&["-z", "-v", &host, &port])).finish();

    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains(&format!(
            "Connection to {host} ({host}) {port} port succeeded"
        )),
        "{}",
        run.stderr
    );
}

/// `-z` against a closed port: exit 1, and the reason.
#[test]
fn zero_io_says_a_closed_port_does_not() {
    let port = unused_port().to_string();

    let run = Spawned::new(tcpclient(&["-z", "127.0.0.1", &port])).finish();

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
}

/// `-z --tls` checks the handshake too: a certificate the client does not trust fails it.
#[test]
fn zero_io_with_tls_checks_the_handshake() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config()));
    let ca = temp_file("z-ca.pem", pki.ca_pem().as_bytes());
    let other = temp_file("z-other-ca.pem", Pki::new().ca_pem().as_bytes());

    let trusted = Spawned::new(tcpclient(&[
        "-z",
        "--tls",
        "--cafile",
        ca.to_str().unwrap(),
        "--servername",
        "localhost",
        &host,
        &port,
    ]))
    .finish();
    let untrusted = Spawned::new(tcpclient(&[
        "-z",
        "--tls",
        "--cafile",
        other.to_str().unwrap(),
        "--servername",
        "localhost",
        &host,
        &port,
    ]))
    .finish();

    assert_eq!(trusted.status, 0, "{}", trusted.stderr);
    assert_eq!(untrusted.status, 1);
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
}

/// `-w SECS` (nc's): a connection where nothing happens for that long is closed, with the
/// reason.
#[test]
fn wait_closes_an_idle_connection() {
    let addr = serve(|stream| {
        // Holds the connection open, silent, until the client goes.
        let mut buf = [0u8; 16];
        let _ = std::io::Read::read(&mut &stream, &mut buf);
    });
    let [host, port] = host_port(addr);
    let started = Instant::now();

    let run = Spawned::new(tcpclient(&["-w", "1", &host, &port])).finish();

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("idle"), "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// A server that reads everything and never closes.
fn never_closing_server() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = serve(move |mut stream| {
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let _ = tx.send(all);
        std::thread::sleep(Duration::from_secs(60));
    });
    (addr, rx)
}

/// Without -q, a server that takes every byte and never closes its side has confirmed
/// nothing: its TCP acknowledged the bytes, its application may never have read them.
#[test]
fn a_server_that_never_closes_is_not_a_clean_end() {
    let (addr, received) = never_closing_server();
    let [host, port] = host_port(addr);

    let run = run(&["--drain-timeout", "1s", &host, &port], b"all of it\n");

    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "tcpclient: failed: the peer did not close its side of the connection before the drain \
         deadline; sent 10 of 10 bytes (10 unconfirmed, 0 undelivered), received 0 bytes; \
         10 bytes sent are unconfirmed: the server never closed its side"
    );
    assert_eq!(received.recv_timeout(LIMIT).unwrap(), b"all of it\n");
}

/// `-q SECS` (nc's): after the end of the input, wait that long for the server, then quit
/// (not the default 10 s); the server's TCP acknowledged every byte and our end, so the
/// exit status is 0.
#[test]
fn quit_after_stops_waiting_for_a_server_that_never_closes() {
    let (addr, received) = never_closing_server();
    let [host, port] = host_port(addr);
    let started = Instant::now();

    let quit = run(&["-q", "1", &host, &port], b"all of it\n");

    assert_eq!((quit.status, quit.stderr.as_str()), (0, ""));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(received.recv_timeout(LIMIT).unwrap(), b"all of it\n");
}

/// `-N` (nc's shut down at end of input) is what the command always does: accepted.
#[test]
fn the_nc_half_close_flag_is_accepted() {
    let [host, port] = host_port(echo_server());

    let run = run(&["-N", &host, &port], b"half-closed\n");

    assert_eq!(run.stdout, b"half-closed\n");
    assert_eq!(run.status, 0, "{}", run.stderr);
}

// ---- completions and the manual page ----

#[test]
fn completions_and_the_manual_page_come_from_the_flags() {
    let bash = run(&["completions", "bash"], b"");
    let zsh = run(&["completions", "zsh"], b"");
    let man = run(&["man"], b"");

    assert_eq!(bash.status, 0, "{}", bash.stderr);
    let bash = String::from_utf8_lossy(&bash.stdout);
    assert!(
        bash.contains("_tcpclient") && bash.contains("--starttls") && bash.contains("--keylogfile")
    );
    assert!(String::from_utf8_lossy(&zsh.stdout).contains("#compdef tcpclient"));
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH tcpclient"), "{man}");
    assert!(man.contains("\\-\\-cert") && man.contains("\\-z"), "{man}");
}

// ---- mutual TLS and key logging ----

/// A server that requires a client certificate: with --cert and --key it is a session, the
/// echo comes back; without them the server refuses, and the reason names the flags.
#[test]
fn mutual_tls_is_accepted_with_the_client_certificate_and_refused_without() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config_requiring_client_cert()));
    let ca = temp_file("mtls-ca.pem", pki.ca_pem().as_bytes());
    let cert = temp_file("mtls-cert.pem", pki.client_cert_pem().as_bytes());
    let key = temp_file("mtls-key.pem", pki.client_key_pem().as_bytes());
    let tls = [
        "--tls",
        "--cafile",
        ca.to_str().unwrap(),
        "--servername",
        "localhost",
    ];

    let with = run(
        &[
            &tls[..],
            &[
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                &host,
                &port,
            ],
        ]
        .concat(),
        b"who am I\n",
    );
    let without = run(&[&tls[..], &[&host, &port]].concat(), b"who am I\n");

    assert_eq!((with.status, with.stderr.as_str()), (0, ""));
    assert_eq!(with.stdout, b"who am I\n");
    assert_eq!(without.status, 1);
    assert!(without.stdout.is_empty());
    assert!(without.stderr.contains("--cert"), "{}", without.stderr);
}

/// A key that is not the certificate's: refused before connecting, naming both flags.
#[test]
fn a_client_key_that_does_not_match_the_certificate_is_refused() {
    let (pki, other) = (Pki::new(), Pki::new());
    let cert = temp_file("mismatch-cert.pem", pki.client_cert_pem().as_bytes());
    let key = temp_file("mismatch-key.pem", other.client_key_pem().as_bytes());
    let port = unused_port().to_string();

    let run = run(
        &[
            "--tls",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "127.0.0.1",
            &port,
        ],
        b"",
    );

    assert_eq!(run.status, 1);
    assert!(
        run.stderr.contains("--key") && run.stderr.contains("--cert"),
        "{}",
        run.stderr
    );
}

/// Collects what a rustls server logs of its secrets.
#[derive(Debug, Default)]
struct Collected(std::sync::Mutex<Vec<String>>);

impl rustls::KeyLog for Collected {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        self.0
            .lock()
            .unwrap()
            .push(format!("{label} {} {}", hex(client_random), hex(secret)));
    }
}

/// `--keylogfile`: the file holds the session's secrets in the NSS format, exactly the
/// lines the server logged of the same session (labels, client random and secrets), which
/// is what Wireshark needs to decrypt a capture of it.
#[test]
fn the_key_log_holds_the_secrets_the_server_logged_for_the_same_session() {
    let pki = Pki::new();
    let server_log = std::sync::Arc::new(Collected::default());
    let mut server = (*pki.server_config()).clone();
    server.key_log = server_log.clone();
    let [host, port] = host_port(tls_echo_server(std::sync::Arc::new(server)));
    let ca = temp_file("keylog-ca.pem", pki.ca_pem().as_bytes());
    let log = temp_file("keys.log", b"");

    let run = run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            "--keylogfile",
            log.to_str().unwrap(),
            &host,
            &port,
        ],
        b"secret\n",
    );

    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut ours: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut theirs = server_log.0.lock().unwrap().clone();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let labels: Vec<&str> = ours.iter().filter_map(|l| l.split(' ').next()).collect();
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(labels.contains(&label), "{ours:?}");
    }
    assert!(
        ours.iter()
            .all(|l| l.split(' ').nth(1).is_some_and(|r| r.len() == 64))
    );
}

/// The new dialogues check what they are told: against an SMTP server, NNTP's greeting
/// check quotes the server, and Sieve, whose greeting never ends in an OK line there, gives
/// up at the connect timeout with the reason.
#[test]
fn nntp_and_sieve_against_the_wrong_server_are_clear_errors() {
    let pki = Pki::new();
    let [host, port] = host_port(starttls_server("smtp", pki.server_config(), false));

    let nntp = run(&["--starttls", "nntp", "--insecure", &host, &port], b"");
    let sieve = run(
        &[
            "--starttls",
            "sieve",
            "--insecure",
            "--connect-timeout",
            "1s",
            &host,
            &port,
        ],
        b"",
    );

    assert_eq!(nntp.status, 1);
    assert!(
        nntp.stderr
            .contains("STARTTLS: expected `200`, the server said `220 ready`"),
        "{}",
        nntp.stderr
    );
    assert_eq!(sieve.status, 1);
    assert!(
        sieve
            .stderr
            .contains("did not finish within --connect-timeout"),
        "{}",
        sieve.stderr
    );
}

// ---- what the handshake negotiated, and the chain ----

/// `--brief` and `--showcerts` against the test PKI, field by field: the negotiated
/// parameters, then the leaf's subject, issuer, validity and alternative names, and its PEM,
/// which decodes to the very certificate the server presented.
#[test]
fn brief_and_showcerts_show_the_test_pki_field_by_field() {
    let pki = Pki::new();
    let [host, port] = host_port(tls_echo_server(pki.server_config()));
    let ca = temp_file("showcerts-ca.pem", pki.ca_pem().as_bytes());

    let run = run(
        &[
            "--tls",
            "--brief",
            "--showcerts",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            &host,
            &port,
        ],
        b"x\n",
    );

    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, b"x\n", "the certificates go to standard error");
    let lines: Vec<&str> = run.stderr.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {}", run.stderr))
    };
    assert_eq!(lines[at("Protocol version:")], "Protocol version: TLSv1_3");
    assert_eq!(
        lines[at("Ciphersuite:")],
        "Ciphersuite: TLS13_AES_256_GCM_SHA384"
    );
    assert_eq!(
        lines[at("Key exchange group:")],
        "Key exchange group: X25519MLKEM768",
        "the post-quantum hybrid, which both ends offer first"
    );
    assert_eq!(lines[at("Session:")], "Session: new");
    assert_eq!(
        lines[at("Peer certificate:")],
        "Peer certificate: CN=tcpclient test server"
    );
    assert_eq!(lines[at("Verification:")], "Verification: OK");
    let leaf = at(" 0 s:");
    assert_eq!(
        &lines[leaf..leaf + 4],
        [
            " 0 s:CN=tcpclient test server",
            "   i:CN=tcpclient test CA",
            "   v:NotBefore: Jan  1 00:00:00 1975 +00:00; NotAfter: Jan  1 00:00:00 4096 +00:00",
            "   san:DNS:localhost, IP:127.0.0.1, IP:::1",
        ]
    );
    let begin = at("-----BEGIN CERTIFICATE-----");
    let end = at("-----END CERTIFICATE-----");
    let pem = lines[begin..=end].join("\n");
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .expect("a PEM certificate");
    assert_eq!(der, pki.server_cert_der().to_vec());
    assert!(
        !run.stderr.contains(" 1 s:"),
        "the test server sends its leaf only"
    );
}

// ---- proxies ----

/// Relays bytes both ways between `a` and `b` until both directions end.
fn relay(a: std::net::TcpStream, b: std::net::TcpStream) {
    let (mut a_read, mut b_write) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut b_read, mut a_write) = (b, a);
    let _ = std::io::copy(&mut b_read, &mut a_write);
    let _ = a_write.shutdown(std::net::Shutdown::Write);
    let _ = forward.join();
}

/// How a test proxy behaves once asked for a tunnel.
#[derive(Clone, Copy, PartialEq)]
enum ProxyMood {
    /// Connects to the target and relays.
    Relays,
    /// Refuses (HTTP 403, SOCKS5 reply 2: not allowed by ruleset).
    Refuses,
    /// Says yes, and adds bytes of its own right after.
    Injects,
    /// Reads the request and never answers.
    Silent,
}

/// An HTTP CONNECT proxy; the tunnels it makes are recorded as `host:port`.
fn http_proxy(mood: ProxyMood) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let (tx, asked) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |mut stream| {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let target = head.split(' ').nth(1).unwrap_or_default().to_string();
        let _ = tx.lock().unwrap().send(target.clone());
        match mood {
            ProxyMood::Silent => std::thread::sleep(Duration::from_secs(30)),
            ProxyMood::Refuses => {
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            }
            ProxyMood::Relays | ProxyMood::Injects => {
                let Ok(upstream) = std::net::TcpStream::connect(&*target) else {
                    let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let extra: &[u8] = if mood == ProxyMood::Injects {
                    b"injected"
                } else {
                    b""
                };
                let _ = stream.write_all(
                    &[
                        &b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"[..],
                        extra,
                    ]
                    .concat(),
                );
                relay(stream, upstream);
            }
        }
    });
    (addr, asked)
}

/// A SOCKS5 proxy (no authentication) that resolves names itself; the tunnels it makes are
/// recorded as `host:port`.
fn socks5_proxy(mood: ProxyMood) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let (tx, asked) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = serve(move |mut stream| {
        let mut greeting = [0u8; 3];
        if stream.read_exact(&mut greeting).is_err() || greeting != [5, 1, 0] {
            return;
        }
        let _ = stream.write_all(&[5, 0]);
        let mut head = [0u8; 4];
        if stream.read_exact(&mut head).is_err() {
            return;
        }
        let host = match head[3] {
            1 => {
                let mut ip = [0u8; 4];
                let _ = stream.read_exact(&mut ip);
                std::net::Ipv4Addr::from(ip).to_string()
            }
            3 => {
                let mut len = [0u8; 1];
                let _ = stream.read_exact(&mut len);
                let mut name = vec![0u8; usize::from(len[0])];
                let _ = stream.read_exact(&mut name);
                String::from_utf8_lossy(&name).to_string()
            }
            _ => return,
        };
        let mut port = [0u8; 2];
        let _ = stream.read_exact(&mut port);
        let target = format!("{host}:{}", u16::from_be_bytes(port));
        let _ = tx.lock().unwrap().send(target.clone());
        let ok = [5, 0, 0, 1, 127, 0, 0, 1, 0, 0];
        match mood {
            ProxyMood::Silent => std::thread::sleep(Duration::from_secs(30)),
            ProxyMood::Refuses => {
                let _ = stream.write_all(&[5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
            }
            ProxyMood::Relays | ProxyMood::Injects => {
                let Ok(upstream) = std::net::TcpStream::connect(&*target) else {
                    let _ = stream.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
                    return;
                };
                let extra: &[u8] = if mood == ProxyMood::Injects {
                    b"injected"
                } else {
                    b""
                };
                let _ = stream.write_all(&[&ok[..], extra].concat());
                relay(stream, upstream);
            }
        }
    });
    (addr, asked)
}

/// Plaintext and TLS through each kind of proxy: the echo comes back, and the proxy was
/// asked for HOST PORT (SOCKS5 by name: the proxy resolves `localhost`).
#[test]
fn http_connect_and_socks5_proxies_carry_plaintext_and_tls() {
    let pki = Pki::new();
    let ca = temp_file("proxy-ca.pem", pki.ca_pem().as_bytes());
    let plain = echo_server().port().to_string();
    let tls = tls_echo_server(pki.server_config()).port().to_string();
    for (kind, (proxy, asked)) in [
        ("connect", http_proxy(ProxyMood::Relays)),
        ("5", socks5_proxy(ProxyMood::Relays)),
    ] {
        let proxy = proxy.to_string();
        let through = ["-X", kind, "-x", proxy.as_str()];

        let plaintext = run(&[&through[..], &["localhost", &plain]].concat(), b"plain\n");
        let encrypted = run(
            &[
                &through[..],
                &["--tls", "--cafile", ca.to_str().unwrap(), "localhost", &tls],
            ]
            .concat(),
            b"secret\n",
        );

        assert_eq!(
            (plaintext.status, plaintext.stderr.as_str()),
            (0, ""),
            "{kind}"
        );
        assert_eq!(plaintext.stdout, b"plain\n", "{kind}");
        assert_eq!(
            (encrypted.status, encrypted.stderr.as_str()),
            (0, ""),
            "{kind}"
        );
        assert_eq!(encrypted.stdout, b"secret\n", "{kind}");
        assert_eq!(
            asked.recv_timeout(LIMIT).unwrap(),
            format!("localhost:{plain}"),
            "{kind}"
        );
        assert_eq!(
            asked.recv_timeout(LIMIT).unwrap(),
            format!("localhost:{tls}"),
            "{kind}"
        );
    }
}

/// A proxy that refuses, one that injects bytes after its go-ahead before a TLS handshake,
/// and one that never answers: each a clear error, the last within the connect timeout.
#[test]
fn a_proxy_that_refuses_injects_or_stays_silent_is_a_clear_error() {
    let target = echo_server().port().to_string();
    for kind in ["connect", "5"] {
        let proxy = |mood| match kind {
            "connect" => http_proxy(mood).0.to_string(),
            _ => socks5_proxy(mood).0.to_string(),
        };
        let refuses = proxy(ProxyMood::Refuses);
        let injects = proxy(ProxyMood::Injects);
        let silent = proxy(ProxyMood::Silent);
        let via = |p: &str, extra: &[&str]| {
            let started = Instant::now();
            let run = run(
                &[&["-X", kind, "-x", p][..], extra, &["127.0.0.1", &target]].concat(),
                b"x\n",
            );
            (run, started.elapsed())
        };

        let (refused, _) = via(&refuses, &[]);
        let (injected, _) = via(&injects, &["--tls", "--insecure"]);
        let (silenced, waited) = via(&silent, &["--connect-timeout", "1s"]);

        assert_eq!(refused.status, 1, "{kind}");
        assert!(
            refused.stderr.contains("proxy: the") && refused.stderr.contains("refused"),
            "{kind}: {}",
            refused.stderr
        );
        assert_eq!(injected.status, 1, "{kind}");
        assert!(
            injected.stderr.contains("8 bytes after its go-ahead"),
            "{kind}: {}",
            injected.stderr
        );
        assert_eq!(silenced.status, 1, "{kind}");
        assert!(
            silenced
                .stderr
                .contains("no answer from the proxy within --connect-timeout"),
            "{kind}: {}",
            silenced.stderr
        );
        assert!(waited < Duration::from_secs(10), "{kind}: {waited:?}");
    }
}

/// Without TLS, bytes right after the go-ahead are the server's first words (a banner):
/// written out, not refused.
#[test]
fn bytes_after_a_proxys_go_ahead_are_the_servers_without_tls() {
    let target = echo_server().port().to_string();
    let (proxy, _) = http_proxy(ProxyMood::Injects);

    let run = run(
        &[
            "-X",
            "connect",
            "-x",
            &proxy.to_string(),
            "127.0.0.1",
            &target,
        ],
        b" echoed\n",
    );

    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, b"injected echoed\n");
}

/// XMPP's go-ahead (`<proceed/>`) followed by a stanza in plaintext: refused, as any
/// STARTTLS injection is.
#[test]
fn xmpp_injection_after_proceed_is_refused() {
    let pki = Pki::new();
    let [host, port] = host_port(starttls_server("xmpp", pki.server_config(), true));

    let run = run(&["--starttls", "xmpp", "--insecure", &host, &port], b"");

    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("STARTTLS injection"), "{}", run.stderr);
}

// ---- session resumption ----

/// A TLS echo server of the test PKI that gives `tickets` TLS 1.3 tickets per handshake
/// (and keeps TLS 1.2 sessions by id), like most servers.
fn resuming_server(pki: &Pki, tickets: usize, tls12_only: bool) -> SocketAddr {
    let base = if tls12_only {
        use rustls::crypto::ring::cipher_suite;
        pki.server_config_with_suites(vec![
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ])
    } else {
        pki.server_config()
    };
    let mut config = (*base).clone();
    config.send_tls13_tickets = tickets;
    tls_echo_server(std::sync::Arc::new(config))
}

fn resume_test(addr: SocketAddr, pki: &Pki, connections: &str) -> Run {
    let [host, port] = host_port(addr);
    let ca = temp_file("resume-ca.pem", pki.ca_pem().as_bytes());
    run(
        &[
            "--tls",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            "--resume-test",
            connections,
            &host,
            &port,
        ],
        b"",
    )
}

#[test]
fn resume_test_reports_each_connection_resumed_with_tls13_tickets_and_tls12_sessions() {
    let pki = Pki::new();
    for (tls12, version) in [(false, "TLSv1_3"), (true, "TLSv1_2")] {
        let run = resume_test(resuming_server(&pki, 2, tls12), &pki, "3");
        assert_eq!(run.status, 0, "{version}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing is sent or received");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 4, "{}", run.stderr);
        assert!(
            lines[0].starts_with(&format!(
                "tcpclient: connection 1: new session, {version}, "
            )),
            "{}",
            lines[0]
        );
        for (i, line) in lines[1..].iter().enumerate() {
            let prefix = format!("tcpclient: connection {}: resumed, {version}, ", i + 2);
            assert!(line.starts_with(&prefix), "{line}");
        }
    }
}

#[test]
fn resume_test_fails_naming_the_cause_when_the_server_gives_no_ticket() {
    let pki = Pki::new();
    let run = resume_test(resuming_server(&pki, 0, false), &pki, "2");
    assert_eq!(run.status, 1, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "tcpclient: connection 1: new session, TLSv1_3, TLS13_AES_256_GCM_SHA384",
            "tcpclient: connection 2: new session, TLSv1_3, TLS13_AES_256_GCM_SHA384",
            "tcpclient: --resume-test: connection 2 was not resumed: the server gave no \
             session ticket on connection 1",
        ],
        "stops at the first connection not resumed"
    );
}

#[test]
fn resume_test_runs_the_starttls_dialogue_on_every_connection() {
    let pki = Pki::new();
    let mut config = (*pki.server_config()).clone();
    config.send_tls13_tickets = 1;
    let [host, port] = host_port(starttls_server("smtp", std::sync::Arc::new(config), false));
    let ca = temp_file("resume-starttls-ca.pem", pki.ca_pem().as_bytes());
    let run = run(
        &[
            "--starttls",
            "smtp",
            "--cafile",
            ca.to_str().unwrap(),
            "--servername",
            "localhost",
            "--resume-test",
            "2",
            &host,
            &port,
        ],
        b"",
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches(": resumed, TLSv1_3").count(),
        2,
        "{}",
        run.stderr
    );
}

#[test]
fn resume_test_needs_tls() {
    let [host, port] = host_port(echo_server());
    let run = run(&["--resume-test", "2", &host, &port], b"");
    assert_eq!(run.status, 1);
    assert!(
        run.stderr
            .contains("--resume-test need TLS: add --tls or --starttls"),
        "{}",
        run.stderr
    );
}
