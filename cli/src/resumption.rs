//! `--resume-test N`: does the server resume TLS sessions? The first connection makes a full
//! handshake and waits for the server's session ticket; each of the next N must resume.
//! As `openssl s_client -reconnect`, with an exit status that says whether it worked.
//!
//! rustls keeps sessions in memory only (it has no way to write one to a file, so there is
//! no `-sess_out`/`-sess_in`); every connection of one run shares the same `ClientConfig`
//! and so the same store. The store here also says when the server's ticket has arrived,
//! so that a connection is not closed before it has something to resume with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustls::NamedGroup;
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use tcpclient_core::{Config, Destination, Event, TlsInfo};
use tcpclient_polling::Runtime;

use super::Failure;
use super::args::Args;
use super::inbound::Inbound;
use super::output::warn;
use super::session;
use super::trace::Trace;

/// How long a connection waits for the server's session ticket after its handshake. A
/// server sends its tickets right after the handshake, one round trip later at most.
pub const TICKET_WAIT: Duration = Duration::from_secs(1);

/// How often the ticket's arrival is looked for.
const TICKET_POLL: Duration = Duration::from_millis(10);

/// Sessions the store keeps, as rustls's default.
const SESSIONS: usize = 256;

/// Runs `--resume-test`: a full handshake, then `resumptions` connections that must resume.
/// Each says on standard error how its handshake went, as `openssl s_client -reconnect`.
pub fn check(
    runtime: &Runtime,
    destination: &Destination,
    config: &Config,
    trace: &Trace,
    args: &Args,
    resumptions: u32,
    tickets: &Arc<Tickets>,
) -> Result<(), Failure> {
    let mut ticket_arrived = false;
    for number in 1..=resumptions + 1 {
        let Handshake { info, ticket } =
            handshake(runtime, destination, config, trace, args, tickets)?;
        let (version, suite) = super::certs::version_and_suite(&info);
        let kind = if info.resumed {
            "resumed"
        } else {
            "new session"
        };
        warn(format_args!(
            "connection {number}: {kind}, {version}, {suite}"
        ));
        if number > 1 && !info.resumed {
            let before = number - 1;
            let why = if ticket_arrived {
                format!("the server did not accept the session it gave on connection {before}")
            } else {
                format!("the server gave no session ticket on connection {before}")
            };
            return Err(Failure::NotResumed(format!(
                "connection {number} was not resumed: {why}"
            )));
        }
        ticket_arrived = ticket;
    }
    Ok(())
}

/// What one connection of the test found.
struct Handshake {
    info: TlsInfo,
    /// The server gave a session (or ticket) on this connection.
    ticket: bool,
}

/// Connects, runs the dialogues and the handshake, waits for the server's ticket, closes.
fn handshake(
    runtime: &Runtime,
    destination: &Destination,
    config: &Config,
    trace: &Trace,
    args: &Args,
    tickets: &Tickets,
) -> Result<Handshake, Failure> {
    let before = tickets.received();
    let started = Instant::now();
    let conn = runtime.connect(destination.clone(), config.clone())?;
    let mut inbound = Inbound::new(&conn, trace, args.verbose);
    inbound.brief = args.brief;
    inbound.showcerts = args.showcerts;
    session::establish(
        &mut inbound,
        args,
        session::establishment_deadline(started, args),
    )?;
    let info = inbound.tls.clone().ok_or(Failure::Vanished)?;
    // Wait for the ticket while taking the connection's events, so that nothing the server
    // sends meanwhile holds the connection up.
    let ticket_deadline = Instant::now() + TICKET_WAIT;
    let mut ticket = tickets.received() > before;
    while !ticket && Instant::now() < ticket_deadline {
        let step = (Instant::now() + TICKET_POLL).min(ticket_deadline);
        match inbound.next(Some(step)) {
            Ok(Event::Closed(_)) => break,
            Ok(_) | Err(Failure::TimedOut) => {}
            Err(other) => return Err(other),
        }
        ticket = tickets.received() > before;
    }
    // How the close goes does not matter here; the core bounds it by the drain timeout.
    inbound.finish_and_wait(None);
    Ok(Handshake { info, ticket })
}

/// rustls's in-memory session store, counting the sessions and tickets servers give it.
#[derive(Debug)]
pub struct Tickets {
    store: ClientSessionMemoryCache,
    received: AtomicU64,
}

impl Tickets {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            store: ClientSessionMemoryCache::new(SESSIONS),
            received: AtomicU64::new(0),
        })
    }

    /// Sessions and tickets received so far, from any server.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn count_one(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

impl ClientSessionStore for Tickets {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.store.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.store.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.store.set_tls12_session(server_name, value);
        self.count_one();
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.store.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.store.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.store.insert_tls13_ticket(server_name, value);
        self.count_one();
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.store.take_tls13_ticket(server_name)
    }
}
