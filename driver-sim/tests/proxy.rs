//! Proxy dialogues in the simulator: the core's `ProxyTunnel` driven over the tokio driver
//! inside turmoil, through HTTP CONNECT and SOCKS5 proxies on simulated hosts to an echo
//! server behind them, with the invariant monitor watching the connection. A proxy that
//! refuses is a typed error; one that never answers is stopped by the application's
//! deadline, in simulated time.

mod common;

use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::proxy::{ProxyError, ProxyProtocol, ProxyTunnel, TunnelStatus};
use tcpclient_core::{Config, Event};
use tcpclient_sim::{SimConnection, Trace, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use turmoil::net::{TcpListener, TcpStream};

const PROXY_PORT: u16 = 1080;
const ECHO_PORT: u16 = 7;
/// How long the application gives the dialogue, as the CLI's --connect-timeout does.
const DIALOGUE_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq)]
enum Mood {
    Relays,
    Refuses,
    Silent,
}

/// Echoes each connection on `server`.
async fn echo_server() -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", ECHO_PORT)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A proxy on `proxy` speaking `protocol`: reads the request, then relays, refuses or
/// stays silent.
async fn proxy_server(protocol: ProxyProtocol, mood: Mood) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", PROXY_PORT)).await?;
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve_proxy(client, protocol, mood).await;
        });
    }
}

async fn serve_proxy(
    mut client: TcpStream,
    protocol: ProxyProtocol,
    mood: Mood,
) -> std::io::Result<()> {
    let target = match protocol {
        ProxyProtocol::HttpConnect => {
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.push(client.read_u8().await?);
            }
            let text = String::from_utf8_lossy(&request);
            let authority = text.split(' ').nth(1).unwrap_or_default().to_string();
            match mood {
                Mood::Relays => client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await?,
                Mood::Refuses => client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await?,
                Mood::Silent => return std::future::pending().await,
            }
            authority
        }
        ProxyProtocol::Socks5 => {
            let mut greeting = [0u8; 3];
            client.read_exact(&mut greeting).await?;
            if mood == Mood::Silent {
                return std::future::pending().await;
            }
            client.write_all(&[5, 0]).await?;
            let mut head = [0u8; 5];
            client.read_exact(&mut head).await?;
            let mut name = vec![0u8; usize::from(head[4])];
            client.read_exact(&mut name).await?;
            let port = client.read_u16().await?;
            let reply = if mood == Mood::Refuses { 2 } else { 0 };
            client
                .write_all(&[5, reply, 0, 1, 0, 0, 0, 0, 0, 0])
                .await?;
            format!("{}:{port}", String::from_utf8_lossy(&name))
        }
    };
    if mood != Mood::Relays {
        return Ok(());
    }
    let (host, port) = target.rsplit_once(':').unwrap_or_default();
    let mut server = TcpStream::connect((host, port.parse().unwrap_or(0))).await?;
    copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// Runs the dialogue over `conn`: sends what the tunnel hands out, feeds it what arrives.
async fn open_tunnel(conn: &mut SimConnection, protocol: ProxyProtocol) -> Result<Bytes, String> {
    let mut tunnel = ProxyTunnel::new(protocol, "server", ECHO_PORT).map_err(|e| e.to_string())?;
    let dialogue = async {
        loop {
            if let Some(bytes) = tunnel.poll_transmit() {
                conn.send(bytes).map_err(|e| e.to_string())?;
            }
            match conn.recv().await {
                Some(Event::Data(data)) => {
                    if let TunnelStatus::Open { leftover } =
                        tunnel.handle_data(&data).map_err(|e| e.to_string())?
                    {
                        return Ok(leftover);
                    }
                }
                Some(Event::Closed(report)) => return Err(format!("closed: {report}")),
                Some(_) => {}
                None => return Err("the connection went away".into()),
            }
        }
    };
    tokio::time::timeout(DIALOGUE_DEADLINE, dialogue)
        .await
        .unwrap_or_else(|_| Err("no answer from the proxy in time".into()))
}

struct Run {
    /// What the dialogue ended with: the bytes after the go-ahead, or why it failed.
    tunnel: Result<Bytes, String>,
    /// The echo of `through the proxy`, read after the tunnel opened.
    echoed: Vec<u8>,
    violations: Vec<String>,
    /// Simulated time when the dialogue ended.
    dialogue_ended: Duration,
}

fn run(protocol: ProxyProtocol, mood: Mood) -> Run {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(30))
        .build();
    sim.host("server", echo_server);
    sim.host("proxy", move || proxy_server(protocol, mood));
    let result = std::rc::Rc::new(std::cell::RefCell::new(None));
    let out = result.clone();
    sim.client("client", async move {
        let (mut conn, driver) = connect(("proxy", PROXY_PORT), Config::new(), Trace::new());
        let app = async {
            let tunnel = open_tunnel(&mut conn, protocol).await;
            let dialogue_ended = turmoil::sim_elapsed().unwrap_or_default();
            let echoed =
                common::echo_then_end(&mut conn, tunnel.is_ok(), b"through the proxy").await;
            (tunnel, echoed, dialogue_ended)
        };
        let (end, (tunnel, echoed, dialogue_ended)) = tokio::join!(driver, app);
        *out.borrow_mut() = Some(Run {
            tunnel,
            echoed,
            violations: end.violations,
            dialogue_ended,
        });
        Ok(())
    });
    sim.run().expect("the simulation runs to its end");
    result.borrow_mut().take().expect("the client ran")
}

#[test]
fn http_connect_and_socks5_tunnels_carry_data_to_the_server_behind_the_proxy() {
    for protocol in [ProxyProtocol::HttpConnect, ProxyProtocol::Socks5] {
        let run = run(protocol, Mood::Relays);
        assert_eq!(run.tunnel, Ok(Bytes::new()), "{protocol:?}");
        assert_eq!(run.echoed, b"through the proxy", "{protocol:?}");
        assert!(
            run.violations.is_empty(),
            "{protocol:?}: {:?}",
            run.violations
        );
    }
}

#[test]
fn a_refusing_proxy_is_a_typed_error() {
    let refused = [
        (
            ProxyProtocol::HttpConnect,
            ProxyError::Refused {
                status: "HTTP/1.1 403 Forbidden".into(),
            },
        ),
        (ProxyProtocol::Socks5, ProxyError::Socks5Refused { code: 2 }),
    ];
    for (protocol, error) in refused {
        let run = run(protocol, Mood::Refuses);
        assert_eq!(run.tunnel, Err(error.to_string()), "{protocol:?}");
        assert!(
            run.violations.is_empty(),
            "{protocol:?}: {:?}",
            run.violations
        );
    }
}

#[test]
fn a_silent_proxy_ends_at_the_applications_deadline_in_simulated_time() {
    for protocol in [ProxyProtocol::HttpConnect, ProxyProtocol::Socks5] {
        let run = run(protocol, Mood::Silent);
        assert_eq!(
            run.tunnel,
            Err("no answer from the proxy in time".into()),
            "{protocol:?}"
        );
        assert!(
            run.dialogue_ended >= DIALOGUE_DEADLINE
                && run.dialogue_ended < DIALOGUE_DEADLINE + Duration::from_millis(100),
            "{protocol:?}: {:?}",
            run.dialogue_ended
        );
        assert!(
            run.violations.is_empty(),
            "{protocol:?}: {:?}",
            run.violations
        );
    }
}
