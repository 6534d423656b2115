//! `-v`: the core's own diagnostics (phase changes, refusals, the close), from its `tracing`
//! events, one `tcpclient: core: ...` line each on standard error.

use std::fmt;
use std::io::{self, Write};

use tracing::Subscriber;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Sends the core's debug events to standard error for the rest of the run.
pub fn show_core_events() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(|| QuietStderr)
        .event_format(Lines)
        .try_init();
}

/// `tcpclient: core: <message> <fields>`, like the program's other lines.
struct Lines;

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        write!(writer, "tcpclient: core: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Standard error, with failures swallowed: tracing-subscriber reports a failed write with
/// `eprintln!`, which panics when standard error is a closed pipe, and the exit status must
/// not depend on whether anyone reads the diagnostics.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().lock().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}
