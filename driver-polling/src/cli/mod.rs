//! The `tcpclient` program: argument parsing, the nc-style session, STARTTLS dialogues and
//! the demo. All connection logic is the core's; this is the application around it.

mod args;
mod demo;
mod inbound;
mod session;
mod starttls;
mod tls;
mod trace;

use clap::Parser;

pub use args::Args;

/// Why a run did not end with a clean close: one line on standard error, exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The connection ended, but not cleanly; the close report says how.
    #[error("{0}")]
    Unclean(Box<tcpclient_core::CloseReport>),
    /// The connection handle went away without a close report.
    #[error("the connection ended without a close report")]
    Vanished,
    /// A STARTTLS dialogue went wrong.
    #[error("STARTTLS: {0}")]
    StartTls(String),
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
pub fn main() -> i32 {
    let args = Args::parse();
    let result = match args.command {
        Some(args::Command::Demo) => demo::run(),
        None => session::run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("tcpclient: {failure}");
            1
        }
    }
}
