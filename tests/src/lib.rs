//! Differential testing: a [`Case`] is written once and run by every driver — inside the
//! turmoil simulator ([`in_simulation`]), by the polling driver's event loop over loopback
//! ([`over_loopback`]) and its runtime's handles ([`over_runtime`]), and by the tokio
//! driver over loopback ([`over_tokio`]). The application makes its requests the same way
//! in all four, as [`Request`] values. Every run is
//! reduced to the same [`Observed`] shape and they must be equal: no driver, and not the
//! simulator, may drift from the others.
#![deny(missing_docs)]

use std::io::Write;
use std::net::Shutdown;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::ServerConfig;
use tcpclient_core::{Client, Config, Destination, Ending, Error, Event, Request, TlsConfig};
use tcpclient_polling::{EventLoop, Runtime};
use tcpclient_sim::{
    Listener, PORT, ServerKind, SharedLog, Trace, Turmoil, Wire, connect_with, serve,
};
use tcpclient_testkit::{Pki, loopback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server side of a case. Each exists twice, in turmoil and on loopback, byte for byte
/// the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Echoes until the client's EOF, then closes.
    Echo,
    /// Echoes over TLS from the first byte; answers `close_notify` in kind.
    TlsEcho,
    /// `220 ready`; on `STARTTLS`, `220 go` and TLS; then echoes over TLS.
    StartTlsLine,
    /// Sends [`GREETING`] and closes its side, then reads until the client's EOF.
    GreetsAndCloses,
    /// Nothing listens on the port.
    Nobody,
}

/// What [`Server::GreetsAndCloses`] sends.
pub const GREETING: &[u8] = b"hello, and goodbye\r\n";

/// How the application ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Graceful shutdown once everything is sent.
    Finish,
    /// Abort right after sending.
    Abort,
}

/// One scenario, for every driver.
#[derive(Debug, Clone)]
pub struct Case {
    /// The server.
    pub server: Server,
    /// Messages the application sends (after the STARTTLS dialogue, with that server).
    pub messages: Vec<Bytes>,
    /// How the application ends.
    pub end: End,
}

/// What a user of any driver sees: the events with `Data` merged and addresses dropped,
/// and the close report's outcome and accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Event names in order, consecutive `Data` (and `Undelivered`) merged into one.
    pub events: Vec<String>,
    /// Every received byte.
    pub data: Vec<u8>,
    /// How it ended: an ending, or the error with its socket error kind.
    pub result: Result<Ending, String>,
    /// Accepted, written, undelivered, received.
    pub accounting: (u64, u64, u64, u64),
    /// Whether the peer closed its side.
    pub peer_closed: bool,
}

/// How long any run may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The application's script, the same for every driver: the requests it makes, as values
/// ([`Request`]), which each driver takes as they are: TLS first for a TLS server, the
/// STARTTLS dialogue for a line server (TLS once `220 go` came), then the messages and the
/// end.
struct App {
    case: Case,
    received: Vec<u8>,
    sent: bool,
}

impl App {
    fn new(case: &Case) -> Self {
        Self {
            case: case.clone(),
            received: Vec::new(),
            sent: false,
        }
    }

    /// The requests to make once the connection is started.
    fn start(&mut self) -> Vec<Request> {
        match self.case.server {
            Server::StartTlsLine => vec![Request::Send(Bytes::from_static(b"STARTTLS\r\n"))],
            Server::TlsEcho => {
                let mut requests = vec![Request::StartTls];
                requests.extend(self.send_all());
                requests
            }
            _ => self.send_all(),
        }
    }

    /// The requests `event` calls for.
    fn on_event(&mut self, event: &Event) -> Vec<Request> {
        if let Event::Data(data) = event {
            self.received.extend_from_slice(data);
        }
        let go = self.received.windows(8).any(|w| w == b"220 go\r\n");
        if self.case.server == Server::StartTlsLine && go && !self.sent {
            let mut requests = vec![Request::StartTls];
            requests.extend(self.send_all());
            return requests;
        }
        Vec::new()
    }

    fn send_all(&mut self) -> Vec<Request> {
        self.sent = true;
        let mut requests: Vec<Request> = self
            .case
            .messages
            .iter()
            .cloned()
            .map(Request::Send)
            .collect();
        requests.push(match self.case.end {
            End::Finish => Request::Finish,
            End::Abort => Request::Abort,
        });
        requests
    }
}

fn observe(events: &[Event]) -> Observed {
    let mut names: Vec<String> = Vec::new();
    let mut data = Vec::new();
    let mut last = None;
    let mut handed_back = 0;
    for event in events {
        let name = match event {
            Event::Connected(_) => "Connected".to_string(),
            Event::Data(bytes) => {
                data.extend_from_slice(bytes);
                "Data".to_string()
            }
            Event::TlsEstablished(info) => format!("TlsEstablished({info})"),
            Event::Undelivered(bytes) => {
                handed_back += bytes.len() as u64;
                "Undelivered".to_string()
            }
            Event::Closed(report) => {
                last = Some(report.clone());
                "Closed".to_string()
            }
            other => other.name().to_string(),
        };
        let repeats = name == "Data" || name == "Undelivered";
        if names.last() != Some(&name) || !repeats {
            names.push(name);
        }
    }
    let report = last.expect("a Closed event");
    assert_eq!(
        handed_back, report.bytes_undelivered,
        "every undelivered byte handed back"
    );
    Observed {
        events: names,
        data,
        result: report.result.clone().map_err(|e| match e {
            // The address differs between the simulator and loopback; the kind must not.
            Error::Connect { kind, .. } => format!("Connect({kind:?})"),
            other => other.to_string(),
        }),
        accounting: (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered,
            report.bytes_received,
        ),
        peer_closed: report.peer_closed,
    }
}

fn tls_configs(pki: &Pki) -> (Arc<ServerConfig>, TlsConfig) {
    (pki.server_config(), pki.client_tls())
}

/// The loopback server on `port`, its certificate checked for `localhost`.
fn on_loopback(port: u16) -> Destination {
    Destination::new("127.0.0.1", port)
        .with_server_name(tcpclient_testkit::server_name("localhost"))
}

fn client_config(case: &Case, tls: TlsConfig) -> Config {
    let config = Config::new();
    match case.server {
        Server::TlsEcho | Server::StartTlsLine => config.with_tls(tls),
        _ => config,
    }
}

// ---- the simulator ----

/// Runs `case` inside turmoil, through the tokio driver over turmoil's network.
pub fn in_simulation(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .simulation_duration(Duration::from_secs(60))
        .build();
    let kind = match case.server {
        Server::Echo | Server::Nobody => Some(ServerKind::Echo),
        Server::TlsEcho => Some(ServerKind::TlsEcho),
        Server::StartTlsLine => Some(ServerKind::StartTlsLine),
        Server::GreetsAndCloses => None,
    };
    // Shared by the servers and the client's network: what the servers read is what the
    // client is told was acknowledged.
    let wire = Wire::default();
    match (case.server, kind) {
        // A host, but nothing bound on the port: the SYN is refused.
        (Server::Nobody, _) => sim.host("server", || async {
            std::future::pending::<turmoil::Result>().await
        }),
        (_, Some(kind)) => {
            let (log, wire) = (SharedLog::default(), wire.clone());
            sim.host("server", move || {
                serve(kind, log.clone(), server_tls.clone(), wire.clone())
            })
        }
        (_, None) => {
            let wire = wire.clone();
            sim.host("server", move || greets_and_closes_in_turmoil(wire.clone()))
        }
    }
    let config = client_config(case, client_tls);
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (seen, case) = (events.clone(), case.clone());
    sim.client("client", async move {
        let network = Turmoil {
            wire,
            ..Turmoil::default()
        };
        let (mut conn, driver) = connect_with(
            tcpclient_sim::server(),
            config,
            Trace::new(),
            network,
            Rc::default(),
        );
        let sender = conn.sender();
        let app = async {
            let mut app = App::new(&case);
            for request in app.start() {
                let _ = sender.request(request);
            }
            while let Some(event) = conn.recv().await {
                for request in app.on_event(&event) {
                    let _ = sender.request(request);
                }
                seen.borrow_mut().push(event);
            }
        };
        let (end, ()) = tokio::join!(driver, app);
        assert!(end.violations.is_empty(), "{:?}", end.violations);
        Ok(())
    });
    sim.run().expect("the simulation runs to the end");
    let events = events.borrow().clone();
    observe(&events)
}

async fn greets_and_closes_in_turmoil(wire: Wire) -> turmoil::Result {
    let listener = Listener::bind(("0.0.0.0", PORT), wire).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.write_all(GREETING).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        while stream.read(&mut buf).await? > 0 {}
    }
}

// ---- the polling driver ----

/// Starts the loopback server of `case`; returns its port.
fn loopback_server(case: &Case, tls: Arc<ServerConfig>) -> u16 {
    match case.server {
        Server::Nobody => loopback::unused_port(),
        Server::Echo => loopback::echo_server().port(),
        Server::TlsEcho => loopback::tls_echo_server(tls).port(),
        Server::StartTlsLine => start_tls_line_on_loopback(tls).port(),
        Server::GreetsAndCloses => loopback::serve(|mut stream| {
            let _ = stream.write_all(GREETING);
            let _ = stream.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        })
        .port(),
    }
}

/// The simulator's `StartTlsLine` server, on loopback.
fn start_tls_line_on_loopback(tls: Arc<ServerConfig>) -> std::net::SocketAddr {
    loopback::serve(move |mut stream| {
        let _ = stream.write_all(b"220 ready\r\n");
        loop {
            match loopback::read_line(&mut stream).as_deref() {
                Some("STARTTLS") => break,
                Some(_) => {
                    let _ = stream.write_all(b"500 say STARTTLS\r\n");
                }
                None => return,
            }
        }
        let _ = stream.write_all(b"220 go\r\n");
        loopback::tls_echo(stream, tls.clone());
    })
}

/// Runs `case` with the polling driver against real servers on 127.0.0.1.
pub fn over_loopback(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let port = loopback_server(case, server_tls);
    let mut event_loop = EventLoop::new().expect("event loop");
    let id = event_loop.connect(on_loopback(port), client_config(case, client_tls));
    let mut app = App::new(case);
    for request in app.start() {
        let _ = event_loop.request(id, request);
    }
    let deadline = Instant::now() + LIMIT;
    let mut events = Vec::new();
    while !event_loop.is_empty() {
        assert!(
            Instant::now() < deadline,
            "still open after {LIMIT:?}: {events:?}"
        );
        event_loop
            .turn(Some(Duration::from_millis(50)))
            .expect("turn");
        while let Some((_, event)) = event_loop.poll_event() {
            if let Event::Data(data) = &event {
                let _ = event_loop.consumed(id, data.len());
            }
            for request in app.on_event(&event) {
                let _ = event_loop.request(id, request);
            }
            events.push(event);
        }
    }
    observe(&events)
}

/// Runs `case` with the polling driver's [`Runtime`], through its handles, against real
/// servers on 127.0.0.1.
pub fn over_runtime(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let port = loopback_server(case, server_tls);
    let runtime = Runtime::spawn().expect("a runtime");
    let conn = runtime
        .connect(on_loopback(port), client_config(case, client_tls))
        .expect("a connection");
    let sender = conn.sender();
    let mut app = App::new(case);
    for request in app.start() {
        let _ = sender.request(request);
    }
    let deadline = Instant::now() + LIMIT;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "still open after {LIMIT:?}: {events:?}");
        let event = match conn.recv_timeout(left) {
            Ok(Some(event)) => event,
            Ok(None) => continue,
            Err(_) => break,
        };
        for request in app.on_event(&event) {
            let _ = sender.request(request);
        }
        events.push(event);
    }
    observe(&events)
}

// ---- the tokio driver ----

/// Runs `case` with the tokio driver against real servers on 127.0.0.1.
pub fn over_tokio(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let port = loopback_server(case, server_tls);
    let config = client_config(case, client_tls);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let events = runtime.block_on(async {
        let client = Client::new(on_loopback(port), config, tcpclient_tokio::now());
        let (mut conn, driver) = tcpclient_tokio::start(
            tcpclient_tokio::Tokio::default(),
            client,
            tcpclient_tokio::Unobserved,
        );
        tokio::spawn(driver);
        let sender = conn.sender();
        let mut app = App::new(case);
        for request in app.start() {
            let _ = sender.request(request);
        }
        let mut events = Vec::new();
        let run = async {
            while let Some(event) = conn.recv().await {
                for request in app.on_event(&event) {
                    let _ = sender.request(request);
                }
                events.push(event);
            }
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .expect("within the time limit");
        events
    });
    observe(&events)
}
