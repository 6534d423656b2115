//! `tcpclient HOST PORT`: standard input (or `--send-file`) to the server, the server to
//! standard output, like `nc`.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use std::net::IpAddr;

use tcpclient_core::{
    CloseReport, Config, Destination, Error, Event, FamilyPreference, Keepalive, Preamble,
    ReconnectPolicy, Request, SocketOptions,
};
use tcpclient_polling::{Runtime, Sender};

use super::args::{Args, KeepaliveArg};
use super::inbound::Inbound;
use super::output::warn;
use super::trace::Trace;
use super::{Failure, resumption, starttls, tls};

/// Bytes read from the input per `send`.
const CHUNK: usize = 64 * 1024;

pub fn run(args: &Args) -> Result<(), Failure> {
    let (Some(host), Some(port)) = (args.host.as_deref(), args.port) else {
        return Err(Failure::Setup("HOST and PORT are required".into()));
    };
    let connect_timeout = args.wait.unwrap_or(args.connect_timeout);
    // Through a proxy, the connection is the proxy's; HOST PORT is asked of it.
    let (to_host, to_port) = match &args.proxy {
        Some((proxy_host, proxy_port)) => (proxy_host.as_str(), *proxy_port),
        None => (host, port),
    };
    let mut destination = Destination::new(to_host, to_port);
    let mut config = Config::new()
        .with_delay(args.delay)
        .with_connect_timeout(connect_timeout)
        .with_drain_timeout(drain_timeout(args))
        .with_idle_timeout(args.wait.or(args.idle_timeout))
        .with_stall_timeout(args.stall_timeout.0)
        .with_attempt_delay(args.happy_eyeballs_delay)
        .with_family_preference(family_preference(args))
        .with_socket_options(socket_options(args));
    // --resume-test watches the session store for the server's tickets.
    let tickets = args.resume_test.map(|_| resumption::Tickets::new());
    if let Some((tls, server_name)) = tls::config(args, host, tickets.clone())? {
        // The name is the target's, also through a proxy.
        config = config.with_tls(tls);
        destination = destination.with_server_name(server_name);
    }
    let (input, file_len) = match &args.send_file {
        Some(path) => {
            let open = |e: io::Error| {
                Failure::Setup(format!("cannot open --send-file {}: {e}", path.display()))
            };
            let file = File::open(path).map_err(open)?;
            let len = file.metadata().map_err(open)?.len();
            (Input::File(file), Some(len))
        }
        None => (Input::Stdin(io::stdin()), None),
    };
    let progress = progress_bar(args, file_len)?;
    if args.verbose {
        super::diagnostics::show_core_events();
    }

    let runtime = Runtime::spawn()?;
    let trace = Trace::new(args.trace);
    if let (Some(resumptions), Some(tickets)) = (args.resume_test, &tickets) {
        return resumption::check(
            &runtime,
            &destination,
            &config,
            &trace,
            args,
            resumptions,
            tickets,
        );
    }
    let started = Instant::now();
    let conn = if args.reconnect {
        runtime.connect(destination, config.with_reconnect(reconnect_policy(args)?))?
    } else {
        runtime.connect(destination, config)?
    };
    let mut inbound = Inbound::new(&conn, &trace, args.verbose);
    inbound.brief = args.brief;
    inbound.showcerts = args.showcerts;
    let interrupted = watch_interrupts(conn.sender(), &trace)?;

    let deadline = establishment_deadline(started, args);
    let Established { preamble, early } = establish(&mut inbound, args, deadline)?;
    if args.zero_io {
        return check_port(&mut inbound, host, port, deadline, args.verbose);
    }

    let ledger = Arc::new(Mutex::new(InputLedger::default()));
    let pumping = Pump {
        sender: conn.sender(),
        trace: trace.clone(),
        rate: args.rate,
        progress,
        ledger: ledger.clone(),
    };
    std::thread::spawn(move || pumping.run(input));

    let report = copy_to_stdout(&mut inbound, early)?;
    let interrupted = interrupted.load(Ordering::Relaxed);
    // Under the ledger's lock the input thread is between reads (it reads under the lock):
    // what it read is counted, and it reads nothing more for this session.
    let input = lock(&ledger).close();
    let delivered = report.is_clean() || quit_as_asked(args, &report);
    let from_input = report.bytes_accepted.saturating_sub(preamble);
    let not_sent = input.read.saturating_sub(from_input);
    if let Some(len) = file_len
        && !interrupted
        && (input.end != Some(InputEnd::Finished) || not_sent > 0)
    {
        let sent = report.bytes_written.saturating_sub(preamble);
        return Err(Failure::InputNotSent(format!(
            "the connection closed after {sent} of {len} bytes of --send-file were sent; {report}"
        )));
    }
    if delivered && !interrupted && not_sent > 0 {
        return Err(Failure::InputNotSent(format!(
            "{not_sent} bytes read from the input could not be sent: the connection closed first; {report}"
        )));
    }
    if delivered && input.end == Some(InputEnd::ReadFailed) {
        return Err(Failure::InputNotSent(format!(
            "reading the input failed; {report}"
        )));
    }
    if args.verbose || interrupted || !delivered {
        if delivered {
            warn(format_args!("{report}"));
        } else {
            return Err(Failure::Unclean(report));
        }
    }
    Ok(())
}

/// `-q` quits at its deadline whether or not the server closed: that is not a failure once
/// the server's TCP has acknowledged every byte and our end of the stream, the most that can
/// be known without the server's close.
fn quit_as_asked(args: &Args, report: &CloseReport) -> bool {
    args.quit_after.is_some()
        && report.result == Err(Error::DrainTimeout)
        && report.fin_acknowledged
        && report.bytes_undelivered == 0
}

/// --connect-timeout bounds the whole establishment, as curl's does: every connect
/// attempt (the core's own deadline), then the proxy and STARTTLS dialogues and the TLS
/// handshake.
pub fn establishment_deadline(started: Instant, args: &Args) -> Instant {
    let connect_timeout = args.wait.unwrap_or(args.connect_timeout);
    started
        .checked_add(args.delay.saturating_add(connect_timeout))
        .unwrap_or(started + Duration::from_secs(365 * 86_400))
}

/// What the dialogues before the session left behind.
pub struct Established {
    /// Bytes the dialogues sent, which are not the input's.
    pub preamble: u64,
    /// What the server behind a proxy sent right after the proxy's go-ahead.
    pub early: Option<Bytes>,
}

/// The proxy dialogue, then TLS from the start or the STARTTLS dialogue, by `deadline`.
pub fn establish(
    inbound: &mut Inbound<'_>,
    args: &Args,
    deadline: Instant,
) -> Result<Established, Failure> {
    let (Some(host), Some(port)) = (args.host.as_deref(), args.port) else {
        return Err(Failure::Setup("HOST and PORT are required".into()));
    };
    let mut established = Established {
        preamble: 0,
        early: None,
    };
    if args.proxy.is_some() {
        let (sent, after) = super::proxy::tunnel(inbound, args.proxy_type, host, port, deadline)?;
        established.preamble += sent;
        // What came after the go-ahead: the server's first bytes, or, before a handshake,
        // an injection.
        if !after.is_empty() {
            if args.tls || args.starttls.is_some() {
                return Err(Failure::Proxy(format!(
                    "the proxy sent {} bytes after its go-ahead and before the TLS handshake; \
                     refusing them",
                    after.len()
                )));
            }
            established.early = Some(after);
        }
    }
    if args.tls {
        inbound.trace.request(&Request::StartTls);
        inbound.answered(inbound.conn.start_tls());
        starttls::await_tls(inbound, deadline, |_| Ok(()))?;
    }
    if let Some(protocol) = args.starttls {
        let names = starttls::Names {
            ehlo: &args.name,
            xmpp: args.xmpphost.as_deref().unwrap_or(host),
        };
        established.preamble += starttls::negotiate(inbound, protocol, &names, deadline)?;
    }
    Ok(established)
}

/// How long a graceful shutdown waits for the server: `-q`, else `--drain-timeout`; at most
/// a second for `-z`, which has nothing to deliver.
fn drain_timeout(args: &Args) -> Duration {
    let wait = args.quit_after.unwrap_or(args.drain_timeout);
    if args.zero_io {
        wait.min(Duration::from_secs(1))
    } else {
        wait
    }
}

/// `-z`: connected (and, with `--tls`, handshaken) by `deadline` or not; then closed
/// without sending anything. Says so on standard error with `-v`, as nc does.
fn check_port(
    inbound: &mut Inbound<'_>,
    host: &str,
    port: u16,
    deadline: Instant,
    verbose: bool,
) -> Result<(), Failure> {
    // With --tls the handshake is over already, and the connection with it.
    let answered = loop {
        if let Some(addr) = inbound.connected_to {
            break addr;
        }
        match inbound.next(Some(deadline)) {
            Ok(Event::Closed(report)) => return Err(Failure::Unclean(report)),
            Ok(_) => {}
            Err(Failure::TimedOut) => {
                return Err(Failure::Late(format!(
                    "{host} port {port} did not answer within the connect timeout"
                )));
            }
            Err(other) => return Err(other),
        }
    };
    // How the close goes does not matter: the port answered.
    inbound.finish_and_wait(Some(deadline));
    if verbose {
        warn(format_args!(
            "Connection to {host} ({}) {port} port succeeded",
            answered.ip()
        ));
    }
    Ok(())
}

/// `--reconnect`: the core's default backoff, replaying what a lost connection did not
/// send, after `--preamble` on every connection; jitter seeded from the clock, so that many
/// clients restarted together spread out.
fn reconnect_policy(args: &Args) -> Result<ReconnectPolicy, Failure> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let preamble = match &args.preamble {
        Some(path) => std::fs::read(path)
            .map(|bytes| Preamble::Fixed(bytes.into()))
            .map_err(|e| {
                Failure::Setup(format!("cannot read --preamble {}: {e}", path.display()))
            })?,
        None => Preamble::None,
    };
    Ok(ReconnectPolicy::default()
        .with_seed(seed)
        .with_max_attempts(args.reconnect_max)
        .with_replay_undelivered(true)
        .with_preamble(preamble))
}

/// `-4`, `-6`, or the family of `-s`; both families, IPv6 first, otherwise.
fn family_preference(args: &Args) -> FamilyPreference {
    match (args.ipv4_only, args.ipv6_only, args.source) {
        (true, _, _) | (_, _, Some(IpAddr::V4(_))) => FamilyPreference::Ipv4Only,
        (_, true, _) | (_, _, Some(IpAddr::V6(_))) => FamilyPreference::Ipv6Only,
        _ => FamilyPreference::PreferIpv6,
    }
}

/// `-s`, `--keepalive`, `--user-timeout` as the core's socket options.
fn socket_options(args: &Args) -> SocketOptions {
    let mut options = SocketOptions::default();
    match args.source {
        Some(IpAddr::V4(ip)) => options.local_v4 = Some(ip),
        Some(IpAddr::V6(ip)) => options.local_v6 = Some(ip),
        None => {}
    }
    options.keepalive = match args.keepalive {
        KeepaliveArg::Off => None,
        KeepaliveArg::After(idle) => Some(Keepalive {
            idle,
            interval: idle,
            count: Keepalive::GO_DEFAULT.count,
        }),
    };
    if let Some(timeout) = args.user_timeout {
        options.user_timeout = Some(timeout);
    }
    options
}

/// Writes what the server sends to standard output until the close report arrives.
///
/// Blocking on a slow standard output is fine: the connection stops reading the socket
/// while this side holds its window of unread data.
fn copy_to_stdout(
    inbound: &mut Inbound<'_>,
    early: Option<Bytes>,
) -> Result<Box<CloseReport>, Failure> {
    let mut stdout = io::stdout().lock();
    let mut early = early.map(Event::Data);
    loop {
        let event = match early.take() {
            Some(event) => event,
            None => inbound.next(None)?,
        };
        match event {
            Event::Data(data) => {
                let written = stdout.write_all(&data).and_then(|()| stdout.flush());
                if let Err(e) = written {
                    inbound.answered(inbound.conn.abort());
                    return Err(Failure::Io(io::Error::new(
                        e.kind(),
                        format!("standard output: {e}"),
                    )));
                }
            }
            Event::Closed(report) => return Ok(report),
            _ => {}
        }
    }
}

/// What the input thread read, shared with the main thread under one lock, so that the
/// exit status counts every byte read, whenever the connection closes.
#[derive(Debug, Default)]
struct InputLedger {
    /// Bytes read from the input (and handed to the connection, or refused by it).
    read: u64,
    /// How reading ended, once it has.
    end: Option<InputEnd>,
    /// The session is over: the input thread stops.
    closed: bool,
}

impl InputLedger {
    /// Ends the session's reading; returns what was read up to now.
    fn close(&mut self) -> InputSummary {
        self.closed = true;
        InputSummary {
            read: self.read,
            end: self.end,
        }
    }
}

/// The ledger as the main thread found it at the close.
struct InputSummary {
    read: u64,
    end: Option<InputEnd>,
}

/// How the input thread stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    /// The input ended, and everything read was handed to the connection.
    Finished,
    /// Reading the input failed (not its end: an error).
    ReadFailed,
}

fn lock(ledger: &Mutex<InputLedger>) -> MutexGuard<'_, InputLedger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// Standard input or the `--send-file` file.
enum Input {
    Stdin(io::Stdin),
    File(File),
}

impl Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stdin(stdin) => stdin.read(buf),
            Input::File(file) => file.read(buf),
        }
    }

    /// Waits up to `timeout` for the input to have something to read (data, its end, or an
    /// error), so that the read itself never blocks.
    #[cfg(unix)]
    fn wait_readable(&self, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let fd = match self {
            Input::Stdin(stdin) => stdin.as_raw_fd(),
            Input::File(file) => file.as_raw_fd(),
        };
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `poll` reads and writes the one `pollfd` it is given, which lives on this
        // stack frame for the whole call.
        #[allow(unsafe_code)]
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        // An error other than an interruption is left for the read to report.
        ready > 0 || (ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
    }

    /// Without `poll`, the read may block; the count can then miss a read that straddles
    /// the close.
    #[cfg(not(unix))]
    fn wait_readable(&self, _timeout: Duration) -> bool {
        true
    }
}

/// How often the input thread, waiting for input, looks whether the session is over.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// The input thread: sends the input in chunks, waiting for room in the send queue, paced
/// to `rate` bytes per second if given; at its end (or a read error), shuts the connection
/// down gracefully.
struct Pump {
    sender: Sender,
    trace: Trace,
    rate: Option<u64>,
    progress: ProgressBar,
    ledger: Arc<Mutex<InputLedger>>,
}

impl Pump {
    fn run(self, mut input: Input) {
        let chunk = self.rate.map_or(CHUNK, |r| {
            usize::try_from(r / 10).unwrap_or(CHUNK).clamp(1, CHUNK)
        });
        let start = Instant::now();
        let mut sent: u64 = 0;
        loop {
            while !input.wait_readable(INPUT_POLL) {
                if lock(&self.ledger).closed {
                    return;
                }
            }
            let mut buf = vec![0; chunk];
            let read = {
                // Read and counted under the lock, after `poll` said the read will not
                // block: the main thread sees a read (and the end of the input) either
                // counted or not yet made.
                let mut ledger = lock(&self.ledger);
                if ledger.closed {
                    return;
                }
                let read = input.read(&mut buf);
                match &read {
                    Ok(0) => ledger.end = Some(InputEnd::Finished),
                    Ok(n) => ledger.read += *n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => ledger.end = Some(InputEnd::ReadFailed),
                }
                read
            };
            let n = match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn(format_args!("reading input: {e}"));
                    break;
                }
            };
            buf.truncate(n);
            let data = Bytes::from(buf);
            self.trace.request(&Request::Send(data.clone()));
            if self.sender.send_all(data).is_err() {
                // Shutting down already (Ctrl-C, or the server closed): stop reading.
                self.progress.abandon();
                return;
            }
            sent += n as u64;
            self.progress
                .set_position(sent.saturating_sub(self.sender.bytes_queued()));
            if let Some(rate) = self.rate {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                std::thread::sleep(due.saturating_sub(start.elapsed()));
            }
        }
        self.progress.finish_and_clear();
        self.trace.request(&Request::Finish);
        // Refused only when the connection is shutting down already.
        let _ = self.sender.finish();
    }
}

/// A byte progress bar for `--send-file` on a terminal; hidden otherwise.
fn progress_bar(args: &Args, file_len: Option<u64>) -> Result<ProgressBar, Failure> {
    let (Some(_), Some(len)) = (&args.send_file, file_len) else {
        return Ok(ProgressBar::hidden());
    };
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let style = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map_err(|e| Failure::Setup(e.to_string()))?;
    Ok(ProgressBar::with_draw_target(Some(len), target).with_style(style))
}

/// Ctrl-C once: graceful shutdown. Twice: abort. Returns whether it was pressed.
fn watch_interrupts(sender: Sender, trace: &Trace) -> Result<Arc<AtomicBool>, Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let seen = interrupted.clone();
    let mut signals = Signals::new([SIGINT])?;
    let trace = trace.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            trace.note("interrupted");
            if seen.swap(true, Ordering::Relaxed) {
                warn(format_args!("interrupted again: aborting"));
                trace.request(&Request::Abort);
                let _ = sender.abort();
            } else {
                warn(format_args!(
                    "interrupted: finishing (Ctrl-C again to abort)"
                ));
                trace.request(&Request::Finish);
                let _ = sender.finish();
            }
        }
    });
    Ok(interrupted)
}
