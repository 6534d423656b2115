//! `tcpclient`: a TCP/TLS client in the manner of `nc` and `openssl s_client`, built on
//! `tcpclient-core` and the polling driver. `tcpclient --help` says how to use it.
//!
//! Argument parsing, the nc-style session, the STARTTLS dialogues and the demo live here.
//! All connection logic is the core's; this is the application around it.

mod args;
mod certs;
mod demo;
mod demo_server;
mod diagnostics;
mod inbound;
mod output;
mod proxy;
mod resumption;
mod session;
mod starttls;
mod tls;
mod trace;

use clap::Parser;
use tcpclient_core::{CloseReport, Error, TlsError};

use args::Args;

/// Why a run did not end with a clean close: one line on standard error, exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The connection ended, but not cleanly; the close report says how, and what the
    /// server was not shown to get.
    #[error("{}{}{}", .0, shortfall(.0), hint(.0))]
    Unclean(Box<CloseReport>),
    /// A wait with a deadline ran out (the caller says which wait, see [`Failure::Late`]).
    #[error("timed out")]
    TimedOut,
    /// Establishing the session (connect, dialogue, TLS handshake) took longer than allowed.
    #[error("{0}")]
    Late(String),
    /// The connection handle went away without a close report.
    #[error("the connection ended without a close report")]
    Vanished,
    /// A STARTTLS dialogue went wrong.
    #[error("STARTTLS: {0}")]
    StartTls(String),
    /// The proxy refused, or its dialogue went wrong.
    #[error("proxy: {0}")]
    Proxy(String),
    /// `--resume-test`: a connection was not resumed.
    #[error("--resume-test: {0}")]
    NotResumed(String),
    /// Input was read but could not all be sent.
    #[error("{0}")]
    InputNotSent(String),
    /// A configuration that cannot work: unreadable CA file, bad server name, ...
    #[error("{0}")]
    Setup(String),
    /// Standard output or a local file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the program; returns its exit status.
fn run() -> i32 {
    let args = Args::parse();
    let result = match args.command {
        Some(args::Command::Demo) => demo::run(),
        Some(args::Command::Completions { shell }) => completions(shell),
        Some(args::Command::Man) => man_page(),
        None => session::run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            output::warn(format_args!("{failure}"));
            1
        }
    }
}

/// `tcpclient completions SHELL`: generated from the argument definitions.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    use clap::CommandFactory;
    let mut command = Args::command();
    clap_complete::generate(shell, &mut command, "tcpclient", &mut std::io::stdout());
    Ok(())
}

/// `tcpclient man`: the manual page, generated from the argument definitions.
fn man_page() -> Result<(), Failure> {
    use clap::CommandFactory;
    clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout())?;
    Ok(())
}

/// What the server was not shown to get, for a close that is not clean: the bytes its TCP
/// never acknowledged, the bytes nothing confirms it read, the bytes never sent, and why
/// the drain deadline ended it.
fn shortfall(report: &CloseReport) -> String {
    let never_sent = report.bytes_undelivered.saturating_sub(report.bytes_lost);
    let mut parts = Vec::new();
    if report.bytes_lost > 0 {
        parts.push(format!(
            "the server never acknowledged the last {} bytes sent",
            report.bytes_lost
        ));
    }
    if report.bytes_unconfirmed > 0 {
        parts.push(format!(
            "{} bytes sent are unconfirmed",
            report.bytes_unconfirmed
        ));
    }
    if never_sent > 0 {
        parts.push(format!("{never_sent} bytes were never sent"));
    }
    let cause = match (&report.result, report.peer_closed) {
        (Err(Error::DrainTimeout), false) => Some("the server never closed its side"),
        (Err(Error::DrainTimeout), true) => {
            Some("the server closed, but never acknowledged our end of the stream")
        }
        // A graceful end with bytes unconfirmed: a connection before the last one (with
        // --reconnect) took them and was lost, or the system cannot tell what the server
        // acknowledged and the server closed first.
        (Ok(_), _) if report.bytes_unconfirmed > 0 => {
            Some("the connection that took them did not close both ways")
        }
        _ => None,
    };
    match (parts.is_empty(), cause) {
        (true, None) => String::new(),
        (true, Some(cause)) => format!("; {cause}"),
        (false, None) => format!("; {}", parts.join(", ")),
        (false, Some(cause)) => format!("; {}: {cause}", parts.join(", ")),
    }
}

/// What to do about a failure, where the command line can fix it.
fn hint(report: &CloseReport) -> &'static str {
    match &report.result {
        Err(Error::Tls(TlsError::CertificateIsCa)) => {
            " (to trust a self-signed server certificate, pass that certificate itself with --cafile)"
        }
        Err(Error::Tls(TlsError::CertificateNotTrusted { .. })) => {
            " (pass the issuing CA with --cafile, or --insecure to skip verification)"
        }
        Err(Error::Tls(TlsError::CertificateNameMismatch { .. })) => {
            " (--servername sets the name to verify)"
        }
        Err(Error::Tls(TlsError::AlertReceived { alert }))
            if alert == "CertificateRequired" || alert == "HandshakeFailure" =>
        {
            " (if the server wants a client certificate, pass it with --cert and --key)"
        }
        Err(Error::Tls(TlsError::AlertReceived { alert }))
            if alert == "BadCertificate" || alert == "UnknownCA" =>
        {
            " (the server refused the client certificate of --cert)"
        }
        _ => "",
    }
}

fn main() {
    std::process::exit(run());
}
