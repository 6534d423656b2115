//! Differential testing: a [`Case`] is written once and run both inside the turmoil
//! simulator ([`in_simulation`]) and by the polling driver over loopback ([`over_loopback`]).
//! Both runs are reduced to the same [`Observed`] shape and must be equal: the simulator
//! must not drift from reality.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::ServerConfig;
use tcpclient_core::{Config, Ending, Error, Event, TlsConfig};
use tcpclient_polling::EventLoop;
use tcpclient_sim::{PORT, ServerKind, SharedLog, Trace, connect, serve};
use tcpclient_testkit::{Pki, loopback};

/// The server side of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Echoes until the client's EOF, then closes.
    Echo,
    /// Echoes over TLS from the first byte; answers `close_notify` in kind.
    TlsEcho,
    /// Nothing listens on the port.
    Nobody,
}

/// One scenario, for both drivers.
#[derive(Debug, Clone)]
pub struct Case {
    /// The server.
    pub server: Server,
    /// Messages the application sends right away, then it finishes.
    pub messages: Vec<Bytes>,
}

/// What a user of either driver sees: the events with `Data` merged and addresses dropped,
/// and the close report's outcome and accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Event names in order, consecutive `Data` merged into one.
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

/// How long either run may take.
pub const LIMIT: Duration = Duration::from_secs(20);

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
            other => format!("{other:?}"),
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
    (pki.server_config(), pki.client_tls("localhost"))
}

/// Runs `case` inside turmoil.
pub fn in_simulation(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .simulation_duration(Duration::from_secs(60))
        .build();
    let kind = match case.server {
        Server::Echo | Server::Nobody => ServerKind::Echo,
        Server::TlsEcho => ServerKind::TlsEcho,
    };
    if case.server == Server::Nobody {
        // A host, but nothing bound on the port: the SYN is refused.
        sim.host("server", || async {
            std::future::pending::<turmoil::Result>().await
        });
    } else {
        let log = SharedLog::default();
        sim.host("server", move || {
            serve(kind, log.clone(), server_tls.clone())
        });
    }
    let mut config = Config::new("server", PORT);
    let tls = case.server == Server::TlsEcho;
    if tls {
        config = config.with_tls(client_tls);
    }
    let messages = case.messages.clone();
    let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = events.clone();
    sim.client("client", async move {
        let (mut conn, driver) = connect(config, Trace::new());
        let sender = conn.sender();
        if tls {
            let _ = sender.start_tls();
        }
        for message in messages {
            let _ = sender.send(message);
        }
        let _ = sender.finish();
        let app = async {
            while let Some(event) = conn.recv().await {
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

/// Runs `case` with the polling driver against real servers on 127.0.0.1.
pub fn over_loopback(case: &Case) -> Observed {
    let pki = Pki::new();
    let (server_tls, client_tls) = tls_configs(&pki);
    let port = match case.server {
        Server::Nobody => loopback::unused_port(),
        Server::Echo => loopback::echo_server().port(),
        Server::TlsEcho => loopback::tls_echo_server(server_tls).port(),
    };
    let mut config = Config::new("127.0.0.1", port);
    if case.server == Server::TlsEcho {
        config = config.with_tls(client_tls);
    }
    let mut event_loop = EventLoop::new().expect("event loop");
    let id = event_loop.connect(config);
    if case.server == Server::TlsEcho {
        let _ = event_loop.start_tls(id);
    }
    for message in &case.messages {
        let _ = event_loop.send(id, message.clone());
    }
    let _ = event_loop.finish(id);
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
        events.extend(std::iter::from_fn(|| event_loop.poll_event()).map(|(_, e)| e));
    }
    observe(&events)
}
