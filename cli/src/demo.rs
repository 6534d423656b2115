//! `tcpclient demo`: the whole lifecycle against an embedded server, step by step.

use std::time::{Duration, Instant};

use crate::demo_server::DemoServer;
use bytes::Bytes;
use tcpclient_core::{Config, Event};
use tcpclient_polling::Runtime;

use super::Failure;
use super::inbound::Inbound;
use super::output::say;
use super::trace::Trace;

/// Every step of the script must finish within this.
const STEP: Duration = Duration::from_secs(10);

pub fn run() -> Result<(), Failure> {
    let server = DemoServer::start()?;
    let addr = server.addr();
    say(format_args!(
        "tcpclient demo: a server on {addr} speaks a line protocol with STARTTLS;"
    ));
    say(format_args!(
        "its certificate comes from a CA made just now, which only this client trusts.\n"
    ));
    let tls = server
        .client_tls()
        .map_err(|e| Failure::Setup(e.to_string()))?;
    let config = Config::new().with_tls(tls);

    let runtime = Runtime::spawn()?;
    let conn = runtime.connect(server.destination(), config)?;
    let trace = Trace::new(false);
    let mut inbound = Inbound::new(&conn, &trace, false);
    let deadline = || Instant::now() + STEP;

    say(format_args!("1. connect"));
    wait_for(&mut inbound, "Connected", |e| {
        matches!(e, Event::Connected(_))
    })?;
    say(format_args!("   connected to {addr}"));
    say(format_args!("   server: {}", inbound.line(deadline())?));

    say(format_args!("2. plaintext exchange"));
    exchange(&mut inbound, "ECHO hello in plaintext")?;

    say(format_args!("3. STARTTLS (Kamaelia's makessl)"));
    exchange(&mut inbound, "STARTTLS")?;
    conn.start_tls()
        .map_err(|refusal| Failure::Setup(format!("STARTTLS refused: {refusal}")))?;
    let info = wait_for(&mut inbound, "TlsEstablished", |e| {
        matches!(e, Event::TlsEstablished(_))
    })?;
    if let Event::TlsEstablished(info) = info {
        say(format_args!(
            "   TLS established (sslready): {info}, certificate verified"
        ));
    }

    say(format_args!("4. encrypted exchange"));
    exchange(&mut inbound, "ECHO hello over TLS")?;

    say(format_args!(
        "5. graceful shutdown (producerFinished): flush, close_notify, FIN, drain"
    ));
    inbound.answered(conn.finish());
    let closed = wait_for(&mut inbound, "Closed", |e| matches!(e, Event::Closed(_)))?;
    let Event::Closed(report) = closed else {
        return Err(Failure::Vanished);
    };
    say(format_args!("   close report: {report}"));
    if !report.is_clean() {
        return Err(Failure::Unclean(report));
    }
    say(format_args!(
        "\ndone: every byte accounted for, the session closed cleanly."
    ));
    Ok(())
}

/// Sends one line and prints it and the server's reply.
fn exchange(inbound: &mut Inbound<'_>, line: &str) -> Result<(), Failure> {
    say(format_args!("   client: {line}"));
    inbound
        .conn
        .send(Bytes::from(format!("{line}\r\n")))
        .map_err(|e| Failure::Setup(e.to_string()))?;
    say(format_args!(
        "   server: {}",
        inbound.line(Instant::now() + STEP)?
    ));
    Ok(())
}

/// Waits for the first event `wanted` accepts; a close report before it is a failure.
fn wait_for(
    inbound: &mut Inbound<'_>,
    what: &str,
    wanted: impl Fn(&Event) -> bool,
) -> Result<Event, Failure> {
    let deadline = Instant::now() + STEP;
    loop {
        match inbound.next(Some(deadline))? {
            event if wanted(&event) => return Ok(event),
            Event::Closed(report) => return Err(Failure::Unclean(report)),
            Event::Data(data) => say(format_args!(
                "   (unexpected data while waiting for {what}: {data:?})"
            )),
            _ => {}
        }
    }
}
