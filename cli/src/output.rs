//! Writing to the terminal without ever panicking: `println!` and `eprintln!` panic when the
//! stream is a closed pipe, and the exit status must tell how the session ended whatever
//! happened to standard error.

use std::fmt;
use std::io::{self, Write};

/// Writes `tcpclient: <message>` as one line on standard error; a failed write is ignored.
pub fn warn(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "tcpclient: {message}");
}

/// Writes one line on standard output (the demo's narration); a failed write is ignored.
pub fn say(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stdout().lock(), "{message}");
}
