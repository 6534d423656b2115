//! STARTTLS dialogues in the simulator: the core's `StartTlsDialogue` driven over the tokio
//! driver inside turmoil, as the proxy dialogues are, against an SMTP server on a simulated
//! host, with the invariant monitor watching the connection: over a slow network, against a
//! server that injects plaintext after its go-ahead, and across a partition that outlasts
//! the application's deadline.

mod common;

use std::time::Duration;

use tcpclient_core::starttls::{DialogueStatus, StartTlsDialogue, StartTlsError, StartTlsProtocol};
use tcpclient_core::{Config, Event};
use tcpclient_sim::{
    PORT, ServerKind, SharedLog, SimConnection, Trace, Turmoil, Wire, connect_with, serve,
};
use tcpclient_testkit::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the application gives the dialogue and the handshake, as the CLI's
/// --connect-timeout does.
const DIALOGUE_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mood {
    /// The simulator's STARTTLS server: the dialogue, then TLS, echoing.
    Speaks,
    /// Slips a line of plaintext in after its go-ahead.
    Injects,
    /// Cut off from the client by a partition once it has greeted it.
    CutOff,
}

/// A server that gives its go-ahead and then a line of its own, in one write.
async fn injecting_server() -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.write_all(b"220 ready\r\n").await?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"STARTTLS\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.ends_with(b"\r\n") && seen.starts_with(b"EHLO") && !seen.ends_with(b"TLS\r\n") {
                stream.write_all(b"250 STARTTLS\r\n").await?;
            }
        }
        stream.write_all(b"220 go\r\n250 injected\r\n").await?;
    }
}

/// Runs the dialogue and the handshake over `conn`, by the deadline.
async fn start_tls(conn: &mut SimConnection, mood: Mood) -> Result<(), String> {
    let mut dialogue = StartTlsDialogue::new(StartTlsProtocol::Smtp, "client.example", "")
        .map_err(|e| e.to_string())?;
    let run = async {
        loop {
            while let Some(bytes) = dialogue.poll_transmit() {
                conn.send(bytes).map_err(|e| e.to_string())?;
            }
            match conn.recv().await {
                Some(Event::Data(data)) => {
                    if dialogue.handle_data(&data).map_err(|e| e.to_string())?
                        == DialogueStatus::GoAhead
                    {
                        break;
                    }
                    if mood == Mood::CutOff {
                        // The greeting came: the network between the two fails now.
                        turmoil::partition("client", "server");
                    }
                }
                Some(Event::Closed(report)) => return Err(format!("closed: {report}")),
                Some(_) => {}
                None => return Err("the connection went away".into()),
            }
        }
        conn.sender().start_tls().map_err(|e| e.to_string())?;
        loop {
            match conn.recv().await {
                Some(Event::TlsEstablished(_)) => return Ok(()),
                Some(Event::Data(data)) => {
                    dialogue.handle_data(&data).map_err(|e| e.to_string())?;
                }
                Some(Event::Closed(report)) => return Err(format!("closed: {report}")),
                Some(_) => {}
                None => return Err("the connection went away".into()),
            }
        }
    };
    tokio::time::timeout(DIALOGUE_DEADLINE, run)
        .await
        .unwrap_or_else(|_| Err("no TLS session in time".into()))
}

struct Run {
    started: Result<(), String>,
    /// The echo of `over TLS`, read after the handshake.
    echoed: Vec<u8>,
    violations: Vec<String>,
}

fn run(mood: Mood) -> Run {
    let pki = Pki::new();
    let (server_tls, client_tls) = (pki.server_config(), pki.client_tls());
    let mut sim = turmoil::Builder::new()
        .rng_seed(7)
        .min_message_latency(Duration::from_millis(20))
        .max_message_latency(Duration::from_millis(80))
        .simulation_duration(Duration::from_secs(60))
        .build();
    let wire = Wire::default();
    match mood {
        Mood::Injects => sim.host("server", injecting_server),
        Mood::Speaks | Mood::CutOff => {
            let (log, wire) = (SharedLog::default(), wire.clone());
            sim.host("server", move || {
                serve(
                    ServerKind::StartTlsLine,
                    log.clone(),
                    server_tls.clone(),
                    wire.clone(),
                )
            })
        }
    }
    let result = std::rc::Rc::new(std::cell::RefCell::new(None));
    let out = result.clone();
    sim.client("client", async move {
        let network = Turmoil {
            wire,
            ..Turmoil::default()
        };
        let config = Config::new()
            .with_tls(client_tls)
            .with_drain_timeout(Duration::from_secs(2));
        let (mut conn, driver) = connect_with(
            tcpclient_sim::server(),
            config,
            Trace::new(),
            network,
            Default::default(),
        );
        let app = async {
            let started = start_tls(&mut conn, mood).await;
            let echoed = common::echo_then_end(&mut conn, started.is_ok(), b"over TLS").await;
            (started, echoed)
        };
        let (end, (started, echoed)) = tokio::join!(driver, app);
        *out.borrow_mut() = Some(Run {
            started,
            echoed,
            violations: end.violations,
        });
        Ok(())
    });
    sim.run().expect("the simulation runs to its end");
    result.borrow_mut().take().expect("the client ran")
}

#[test]
fn an_smtp_dialogue_over_a_slow_network_reaches_tls_and_carries_data() {
    let run = run(Mood::Speaks);
    assert_eq!(run.started, Ok(()));
    assert_eq!(run.echoed, b"over TLS");
    assert!(run.violations.is_empty(), "{:?}", run.violations);
}

#[test]
fn plaintext_after_the_go_ahead_is_refused_as_an_injection() {
    let run = run(Mood::Injects);
    let injection = StartTlsError::Injection { bytes: 14 }.to_string();
    assert_eq!(run.started, Err(injection));
    assert!(run.echoed.is_empty());
    assert!(run.violations.is_empty(), "{:?}", run.violations);
}

#[test]
fn a_partition_during_the_dialogue_ends_it_at_the_applications_deadline() {
    let run = run(Mood::CutOff);
    assert_eq!(run.started, Err("no TLS session in time".into()));
    assert!(run.violations.is_empty(), "{:?}", run.violations);
}
