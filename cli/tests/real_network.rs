//! The command over a real kernel TCP path, where "written to the kernel" and "the server
//! got it" are not the same thing: two network namespaces joined by a veth pair, the client
//! in one, a server process in the other, and faults made the way a network makes them:
//! iptables dropping everything, dropping FIN segments, answering with resets, dropping at
//! random, and `kill -9`. (Loopback acknowledges at once and turmoil has no send buffer, so
//! neither can show what these show.)
//!
//! Each test makes its own pair of namespaces, with addresses only inside them, and removes
//! them, and every process in them, when it ends. They need root and `ip` and `iptables`
//! (`.ci/run` installs them). Where namespaces cannot be made they are skipped with a loud
//! message, except under CI (`CI` set), where that is a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{Run, Spawned};

/// The server's address, inside its namespace.
const SERVER: &str = "10.99.0.2";
/// The port every server listens on.
const PORT: &str = "9000";

/// Byte `i` of every stream the client sends: a byte out of place shows.
fn stream(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---- the cases ----

/// The server vanishes (every packet to it dropped) before our 50 KB reach it; then the end
/// of the input. Writing them to the kernel is not delivering them: the drain deadline ends
/// it, and the command says the server never acknowledged them.
#[test]
fn a_server_that_vanished_before_the_data_is_named_and_the_exit_status_is_1() {
    let Some(net) = Net::new() else { return };
    let server = net.server(Reads::AsFastAsItCan);
    let mut client = net.client(&["-v", "--drain-timeout", "2s", SERVER, PORT]);
    client.spawned.wait_for_stderr("connected to");

    net.iptables(Side::Server, "-A INPUT -j DROP");
    client.send(&stream(50_000));
    let run = client.finish();

    assert_eq!(run.status, 1, "{}", run.stderr);
    let last = last_line(&run);
    assert!(
        last.contains("sent 50000 of 50000 bytes (50000 lost, 50000 undelivered)"),
        "{last}"
    );
    assert!(
        last.ends_with(
            "the server never acknowledged the last 50000 bytes sent: the server never closed its side"
        ),
        "{last}"
    );
    assert_eq!(server.received().len(), 0);
}

/// A middlebox drops every segment that carries our FIN, to a server that reads 1 MB/s: the
/// last bytes ride with the FIN and never arrive. The command names exactly those as never
/// acknowledged, and the server's data as unconfirmed, since it never closed.
#[test]
fn a_dropped_fin_is_named_with_the_bytes_it_carried() {
    let Some(net) = Net::new() else { return };
    net.iptables(Side::Server, "-A INPUT -p tcp --tcp-flags FIN FIN -j DROP");
    let server = net.server(Reads::PerSecond(1_000_000));
    let data = stream(1_000_000);
    let mut client = net.client(&["--drain-timeout", "3s", SERVER, PORT]);

    client.send(&data);
    let run = client.finish();

    assert_eq!(run.status, 1, "{}", run.stderr);
    let got = server.received();
    assert_eq!(
        got[..],
        data[..got.len()],
        "the server got a prefix, in order"
    );
    let counts = Counts::of(&run);
    let lost = counts.lost;
    assert!(
        lost > 0,
        "the FIN rode on the last data segment: {counts:?}"
    );
    assert_eq!(lost, 1_000_000 - got.len() as u64, "{counts:?}");
    assert_eq!(counts.unconfirmed, got.len() as u64, "{counts:?}");
    assert!(
        last_line(&run).ends_with(&format!(
            "the server never acknowledged the last {lost} bytes sent, {} bytes sent are \
             unconfirmed: the server never closed its side",
            got.len()
        )),
        "{}",
        run.stderr
    );
}

/// The server vanishes in the middle of a send: the stall deadline ends it, and what sat
/// unacknowledged in our kernel's send queue is counted undelivered, with what was never
/// written: accepted minus what the server got, to the byte.
#[test]
fn a_server_that_vanished_mid_send_is_owed_exactly_what_it_never_got() {
    let Some(net) = Net::new() else { return };
    let server = net.server(Reads::PerSecond(1_000_000));
    let mut client = net.client(&["--stall-timeout", "2s", SERVER, PORT]);
    let writer = client.send_in_background(stream(8_000_000));
    std::thread::sleep(Duration::from_millis(1500));

    net.iptables(Side::Server, "-A INPUT -j DROP");
    let run = client.finish();
    let _ = writer.join();

    run.assert_says(1, "no write progress within the stall timeout");
    let got = server.received();
    let counts = Counts::of(&run);
    assert!(
        counts.lost > 0,
        "the kernel held unacknowledged bytes: {counts:?}"
    );
    assert_eq!(
        counts.undelivered,
        counts.accepted - got.len() as u64,
        "{counts:?}"
    );
    assert_eq!(got[..], stream(got.len())[..]);
}

/// `--reconnect` while the slow-reading server is killed with `kill -9` and a new one starts
/// two seconds later. What the first server's kernel acknowledged and its application never
/// read is gone with it: the command never says otherwise. It exits 1 naming what is
/// unconfirmed; the servers got the stream with one contiguous gap, no larger than that, and
/// nothing twice.
#[test]
fn reconnect_across_kill_9_never_exits_0_with_a_gap() {
    let Some(net) = Net::new() else { return };
    let first = net.server(Reads::PerSecond(1_000_000));
    let data = stream(6_000_000);
    let mut client = net.client(&["--reconnect", SERVER, PORT]);
    let writer = client.send_in_background(data.clone());
    std::thread::sleep(Duration::from_secs(2));

    let at_first = first.kill();
    std::thread::sleep(Duration::from_secs(2));
    let second = net.server(Reads::AsFastAsItCan);
    let run = client.finish();
    let _ = writer.join();
    let at_second = second.received();

    let counts = Counts::of(&run);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(counts.accepted, data.len() as u64, "{counts:?}");
    assert_eq!(
        counts.confirmed + counts.unconfirmed,
        counts.accepted,
        "the second connection confirmed all it took: {counts:?}"
    );
    let unconfirmed = counts.unconfirmed as usize;
    assert!(
        last_line(&run).contains(&format!("{unconfirmed} bytes sent are unconfirmed")),
        "{}",
        run.stderr
    );
    assert!(at_first.len() <= unconfirmed, "{counts:?}");
    assert_eq!(at_first[..], data[..at_first.len()]);
    assert_eq!(
        at_second[..],
        data[unconfirmed..],
        "the second server got the rest, from where the first one's kernel stopped acknowledging"
    );
}

/// A connection that only reads, to a server that vanishes: keepalive probes go unanswered
/// and, with `TCP_USER_TIMEOUT`, the kernel drops the connection once that long has passed
/// since the last acknowledgement.
#[test]
fn a_vanished_server_is_found_while_only_reading() {
    let Some(net) = Net::new() else { return };
    let _server = net.server(Reads::AsFastAsItCan);
    let mut client = net.client(&[
        "-v",
        "--keepalive",
        "1s",
        "--user-timeout",
        "3s",
        SERVER,
        PORT,
    ]);
    client.spawned.wait_for_stderr("connected to");
    let vanished = Instant::now();

    net.iptables(Side::Server, "-A INPUT -j DROP");
    net.iptables(Side::Server, "-A OUTPUT -j DROP");
    let run = client.finish_keeping_input_open();
    let took = vanished.elapsed();

    run.assert_says(1, "socket error: timed out");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

/// 3% of the segments each way dropped at random: TCP recovers, the transfer arrives whole
/// and in order, the server closes, and the exit status is 0.
#[test]
fn a_lossy_path_delivers_everything_and_the_exit_status_is_0() {
    let Some(net) = Net::new() else { return };
    for side in [Side::Client, Side::Server] {
        net.iptables(
            side,
            "-A INPUT -m statistic --mode random --probability 0.03 -j DROP",
        );
    }
    let server = net.server(Reads::AsFastAsItCan);
    let data = stream(2_000_000);
    let mut client = net.client(&["-v", SERVER, PORT]);

    client.send(&data);
    let run = client.finish();

    run.assert_says(
        0,
        "sent 2000000 of 2000000 bytes (2000000 confirmed, 0 undelivered)",
    );
    assert!(
        server.received() == data,
        "the server got every byte, in order"
    );
}

/// The server's side answers our segments with resets in the middle of a send (iptables
/// REJECT with tcp-reset): the bytes its kernel acknowledged are unconfirmed, the rest
/// undelivered, to the byte.
#[test]
fn a_reset_mid_send_counts_exactly_what_the_server_never_got() {
    let Some(net) = Net::new() else { return };
    let server = net.server(Reads::PerSecond(1_000_000));
    let mut client = net.client(&[SERVER, PORT]);
    let writer = client.send_in_background(stream(8_000_000));
    std::thread::sleep(Duration::from_millis(1500));

    net.iptables(
        Side::Server,
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
    );
    let run = client.finish();
    let _ = writer.join();

    run.assert_says(1, "socket error: connection reset");
    let got = server.received();
    let counts = Counts::of(&run);
    assert_eq!(counts.unconfirmed, got.len() as u64, "{counts:?}");
    assert_eq!(
        counts.undelivered,
        counts.accepted - got.len() as u64,
        "{counts:?}"
    );
}

// ---- the counts of a close report, as the command prints them ----

/// "sent W of A bytes (C confirmed, U unconfirmed, L lost, N undelivered)", counts that are
/// zero left out but the last.
#[derive(Debug)]
struct Counts {
    written: u64,
    accepted: u64,
    confirmed: u64,
    unconfirmed: u64,
    lost: u64,
    undelivered: u64,
}

impl Counts {
    fn of(run: &Run) -> Self {
        let line = last_line(run);
        let sent = line
            .split("; sent ")
            .nth(1)
            .unwrap_or_else(|| panic!("no counts in {line}"));
        let number = |text: &str| -> u64 {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            digits.parse().unwrap_or_else(|_| panic!("{line}"))
        };
        let (of, rest) = sent
            .split_once(" bytes (")
            .unwrap_or_else(|| panic!("{line}"));
        let (written, accepted) = of.split_once(" of ").unwrap_or_else(|| panic!("{line}"));
        let within = rest.split(')').next().unwrap_or_default();
        let count = |what: &str| -> u64 {
            within
                .split(", ")
                .find(|part| part.split(' ').nth(1) == Some(what))
                .map_or(0, number)
        };
        let counts = Self {
            written: number(written),
            accepted: number(accepted),
            confirmed: count("confirmed"),
            unconfirmed: count("unconfirmed"),
            lost: count("lost"),
            undelivered: count("undelivered"),
        };
        let through = counts.confirmed + counts.unconfirmed;
        assert_eq!(
            through + counts.lost,
            counts.written,
            "written = confirmed + unconfirmed + lost: {line}"
        );
        assert_eq!(
            through + counts.undelivered,
            counts.accepted,
            "accepted = confirmed + unconfirmed + undelivered: {line}"
        );
        counts
    }
}

fn last_line(run: &Run) -> &str {
    run.stderr.lines().last().unwrap_or_default()
}

// ---- the network: two namespaces and a veth pair ----

/// Which namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Two network namespaces joined by a veth pair: 10.99.0.1 in the client's, 10.99.0.2 in
/// the server's. Removed, with every process in them, when dropped.
struct Net {
    client: String,
    server: String,
    dir: PathBuf,
}

impl Net {
    /// Makes the pair, or says loudly why it cannot (and fails under CI).
    fn new() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 100_000);
        let net = Self {
            client: format!("tcn{id}c"),
            server: format!("tcn{id}s"),
            dir: std::env::temp_dir().join(format!("tcpclient-net-{id}")),
        };
        let (veth_c, veth_s) = (format!("tv{id}c"), format!("tv{id}s"));
        let made = [
            vec!["ip", "netns", "add", &net.client],
            vec!["ip", "netns", "add", &net.server],
            vec![
                "ip",
                "link",
                "add",
                &veth_c,
                "netns",
                &net.client,
                "type",
                "veth",
                "peer",
                "name",
                &veth_s,
                "netns",
                &net.server,
            ],
            vec![
                "ip",
                "-n",
                &net.client,
                "addr",
                "add",
                "10.99.0.1/24",
                "dev",
                &veth_c,
            ],
            vec![
                "ip",
                "-n",
                &net.server,
                "addr",
                "add",
                "10.99.0.2/24",
                "dev",
                &veth_s,
            ],
            vec!["ip", "-n", &net.client, "link", "set", &veth_c, "up"],
            vec!["ip", "-n", &net.server, "link", "set", &veth_s, "up"],
            vec!["ip", "-n", &net.client, "link", "set", "lo", "up"],
            vec!["ip", "-n", &net.server, "link", "set", "lo", "up"],
        ]
        .iter()
        .try_for_each(|command| quiet(command));
        let iptables = quiet(&["ip", "netns", "exec", &net.server, "iptables", "-L", "-n"]);
        let ready = made.and(iptables).and_then(|()| {
            std::fs::create_dir_all(&net.dir).map_err(|e| format!("{}: {e}", net.dir.display()))
        });
        match ready {
            Ok(()) => Some(net),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("CI must run the real-network tests, and cannot make namespaces: {why}")
            }
            Err(why) => {
                eprintln!(
                    "\n*** SKIPPED: the real-network tests need root, `ip` and `iptables` \
                     to make network namespaces, and: {why} ***\n"
                );
                None
            }
        }
    }

    fn namespace(&self, side: Side) -> &str {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// Adds an iptables `rule` (its words, as on the command line) in a namespace.
    fn iptables(&self, side: Side, rule: &str) {
        let mut command = vec!["ip", "netns", "exec", self.namespace(side), "iptables"];
        command.extend(rule.split_whitespace());
        if let Err(why) = quiet(&command) {
            panic!("{why}");
        }
    }

    /// Starts a server process on 10.99.0.2:9000 that writes what it reads to a file, and
    /// closes once it has read the end of the stream.
    fn server(&self, reads: Reads) -> Server {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let file = self
            .dir
            .join(format!("received-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        let rate = match reads {
            Reads::AsFastAsItCan => 0,
            Reads::PerSecond(rate) => rate,
        };
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server,
                "python3",
                "-c",
                SERVER_SCRIPT,
            ])
            .args([SERVER, PORT, &rate.to_string()])
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the CI script installs it)");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut ready)
            .expect("the server says ready");
        assert_eq!(ready, "ready\n");
        Server { child, file }
    }

    /// Starts `tcpclient args` inside the client's namespace.
    fn client(&self, args: &[&str]) -> Client {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &self.client,
                env!("CARGO_BIN_EXE_tcpclient"),
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut spawned = Spawned::new(command);
        let input = spawned.child.stdin.take();
        Client { spawned, input }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server] {
            let pids = Command::new("ip").args(["netns", "pids", ns]).output();
            for pid in pids
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default()
                .split_whitespace()
            {
                let _ = quiet(&["kill", "-9", pid]);
            }
            // Deleting a namespace deletes its end of the veth pair, and so the other.
            let _ = quiet(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `command`; `Err` with what it said if it fails.
fn quiet(command: &[&str]) -> Result<(), String> {
    let output = Command::new(command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{}`: {e}", command.join(" ")))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "`{}` failed: {}",
            command.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

// ---- the server and the client ----

/// How fast a server reads.
#[derive(Debug, Clone, Copy)]
enum Reads {
    AsFastAsItCan,
    /// This many bytes a second, in steps of 20 ms.
    PerSecond(u64),
}

/// A server process: accepts one connection, appends what it reads to a file, and closes
/// the connection once it has read the end of the stream (then waits to be killed).
const SERVER_SCRIPT: &str = r#"
import socket, sys, time
host, port, rate, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((host, port))
listener.listen(8)
print("ready", flush=True)
conn, _ = listener.accept()
step = max(1, rate // 50) if rate else 65536
with open(path, "wb") as out:
    while True:
        data = conn.recv(step)
        if not data:
            break
        out.write(data)
        out.flush()
        if rate:
            time.sleep(len(data) / rate)
conn.close()
time.sleep(3600)
"#;

/// A server started by [`Net::server`].
struct Server {
    child: Child,
    file: PathBuf,
}

impl Server {
    /// What it has read, once it has read all it will: the file has stopped growing.
    fn received(&self) -> Vec<u8> {
        settled(&self.file)
    }

    /// `kill -9`: gone at once, its unread bytes with it. Returns what it had read.
    fn kill(mut self) -> Vec<u8> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read(&self.file).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The contents of `file` once it has not grown for half a second (ten seconds at most).
fn settled(file: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        let len = std::fs::metadata(file).map_or(0, |m| m.len());
        if last == Some(len) || Instant::now() > deadline {
            return std::fs::read(file).unwrap_or_default();
        }
        last = Some(len);
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The command, running in the client's namespace, with its standard input.
struct Client {
    spawned: Spawned,
    input: Option<ChildStdin>,
}

impl Client {
    /// Writes `data` to its standard input, then closes it (the end of the input).
    fn send(&mut self, data: &[u8]) {
        if let Some(mut input) = self.input.take() {
            let _ = input.write_all(data);
        }
    }

    /// Writes `data` to its standard input on a thread of its own, then closes it; the
    /// thread ends early if the command exits first.
    fn send_in_background(&mut self, data: Vec<u8>) -> std::thread::JoinHandle<()> {
        let input = self.input.take();
        std::thread::spawn(move || {
            if let Some(mut input) = input {
                let _ = input.write_all(&data);
            }
        })
    }

    /// Waits for it to exit (within the limit), its input closed if it is still open.
    fn finish(mut self) -> Run {
        drop(self.input.take());
        self.spawned.finish()
    }

    /// Waits for it to exit with its input still open: it ends by itself.
    fn finish_keeping_input_open(self) -> Run {
        let Client { spawned, input } = self;
        let run = spawned.finish();
        drop(input);
        run
    }
}
