//! `tcpclient HOST PORT`: standard input (or `--send-file`) to the server, the server to
//! standard output, like `nc`.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use signal_hook::consts::SIGINT;
use signal_hook::iterator::Signals;
use tcpclient_core::{CloseReport, Config, Event};
use tcpclient_polling::{ConnectionSender, Runtime};

use super::args::Args;
use super::inbound::Inbound;
use super::trace::Trace;
use super::{Failure, starttls, tls};

/// Bytes read from the input per `send`.
const CHUNK: usize = 64 * 1024;

pub fn run(args: &Args) -> Result<(), Failure> {
    let (Some(host), Some(port)) = (args.host.as_deref(), args.port) else {
        return Err(Failure::Setup("HOST and PORT are required".into()));
    };
    let mut config = Config::new(host, port)
        .with_delay(args.delay)
        .with_connect_timeout(args.connect_timeout)
        .with_drain_timeout(args.drain_timeout)
        .with_idle_timeout(args.idle_timeout);
    if let Some(tls) = tls::config(args, host)? {
        config = config.with_tls(tls);
    }
    let input: Box<dyn Read + Send> = match &args.send_file {
        Some(path) => Box::new(File::open(path).map_err(|e| {
            Failure::Setup(format!("cannot open --send-file {}: {e}", path.display()))
        })?),
        None => Box::new(io::stdin()),
    };
    let progress = progress_bar(args)?;

    let runtime = Runtime::spawn()?;
    let conn = runtime.connect(config)?;
    let trace = Trace::new(args.trace);
    let mut inbound = Inbound::new(&conn, &trace, args.verbose);
    let interrupted = watch_interrupts(conn.sender(), &trace)?;

    if args.tls {
        trace.note("start_tls", json!({}));
        conn.start_tls();
    }
    if let Some(protocol) = args.starttls {
        let now = Instant::now();
        let limit = args.delay.saturating_add(args.connect_timeout);
        let deadline = now
            .checked_add(limit)
            .unwrap_or(now + Duration::from_secs(86_400));
        starttls::negotiate(&mut inbound, protocol, &args.name, deadline)?;
    }

    let sender = conn.sender();
    let rate = args.rate;
    let (ended_tx, input_ended) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = ended_tx.send(pump(input, &sender, rate, &progress));
    });

    let report = copy_to_stdout(&mut inbound)?;
    let interrupted = interrupted.load(Ordering::Relaxed);
    // A send that crossed the close is refused on its way: give the input thread a moment
    // to hear of it (it is quick unless it waits for more input, which is not lost data).
    let input_end = input_ended.recv_timeout(Duration::from_millis(100)).ok();
    let refused_by_pump = match input_end {
        Some(InputEnd::Refused(n)) => n,
        _ => 0,
    };
    let refused = refused_by_pump + inbound.refused_after_close();
    if report.is_clean() && !interrupted && refused > 0 {
        return Err(Failure::InputNotSent(format!(
            "{refused} bytes read from the input could not be sent: the connection closed first; {report}"
        )));
    }
    if report.is_clean() && input_end == Some(InputEnd::ReadFailed) {
        return Err(Failure::InputNotSent(format!(
            "reading the input failed; {report}"
        )));
    }
    if args.verbose || interrupted || !report.is_clean() {
        if report.is_clean() {
            eprintln!("tcpclient: {report}");
        } else {
            return Err(Failure::Unclean(report));
        }
    }
    Ok(())
}

/// Writes what the server sends to standard output until the close report arrives.
///
/// Blocking on a slow standard output is fine: the connection stops reading the socket
/// while this side holds its window of unread data.
fn copy_to_stdout(inbound: &mut Inbound<'_>) -> Result<Box<CloseReport>, Failure> {
    let mut stdout = io::stdout().lock();
    loop {
        match inbound.next(None)? {
            Event::Data(data) => {
                let written = stdout.write_all(&data).and_then(|()| stdout.flush());
                if let Err(e) = written {
                    inbound.conn.abort();
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

/// How the input thread ended, as far as the program read the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    /// Everything read was handed to the connection, then the input ended.
    Sent,
    /// Reading the input failed (not its end: an error).
    ReadFailed,
    /// The connection would no longer take this many bytes read from the input.
    Refused(u64),
}

/// Sends the input in chunks, waiting for room in the send queue, paced to `rate` bytes per
/// second if given; at its end (or a read error), shuts the connection down gracefully.
fn pump(
    mut input: Box<dyn Read + Send>,
    sender: &ConnectionSender,
    rate: Option<u64>,
    progress: &ProgressBar,
) -> InputEnd {
    let chunk = rate.map_or(CHUNK, |r| {
        usize::try_from(r / 10).unwrap_or(CHUNK).clamp(1, CHUNK)
    });
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut end = InputEnd::Sent;
    loop {
        let mut buf = vec![0; chunk];
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("tcpclient: reading input: {e}");
                end = InputEnd::ReadFailed;
                break;
            }
        };
        buf.truncate(n);
        if sender.send_blocking(Bytes::from(buf)).is_err() {
            // Shutting down already (Ctrl-C, or the server closed): stop reading.
            progress.abandon();
            return InputEnd::Refused(n as u64);
        }
        sent += n as u64;
        progress.set_position(sent.saturating_sub(sender.unwritten()));
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            std::thread::sleep(due.saturating_sub(start.elapsed()));
        }
    }
    progress.finish_and_clear();
    sender.finish();
    end
}

/// A byte progress bar for `--send-file` on a terminal; hidden otherwise.
fn progress_bar(args: &Args) -> Result<ProgressBar, Failure> {
    let Some(path) = &args.send_file else {
        return Ok(ProgressBar::hidden());
    };
    let len = std::fs::metadata(path)?.len();
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
fn watch_interrupts(sender: ConnectionSender, trace: &Trace) -> Result<Arc<AtomicBool>, Failure> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let seen = interrupted.clone();
    let mut signals = Signals::new([SIGINT])?;
    let trace = trace.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if seen.swap(true, Ordering::Relaxed) {
                eprintln!("tcpclient: interrupted again: aborting");
                sender.abort();
            } else {
                eprintln!("tcpclient: interrupted: finishing (Ctrl-C again to abort)");
                sender.finish();
            }
            trace.note("interrupted", json!({}));
        }
    });
    Ok(interrupted)
}
