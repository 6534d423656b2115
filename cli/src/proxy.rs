//! `-x PROXY -X connect|5`: reaching HOST PORT through an HTTP CONNECT proxy or a SOCKS5
//! proxy (the proxy resolving the name), as nc does. The dialogue is the core's
//! [`ProxyTunnel`]; this runs it over the connection, bounded by the connect timeout.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tcpclient_core::Request;
use tcpclient_core::proxy::{ProxyProtocol as Protocol, ProxyTunnel, TunnelStatus};

use super::Failure;
use super::args::ProxyProtocol;
use super::inbound::Inbound;

/// Asks the proxy the connection is made to for a tunnel to `host`:`port`, by `deadline`.
/// Returns the bytes the dialogue sent and those the proxy sent after its go-ahead.
pub fn tunnel(
    inbound: &mut Inbound<'_>,
    protocol: ProxyProtocol,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<(u64, Bytes), Failure> {
    let protocol = match protocol {
        ProxyProtocol::Connect => Protocol::HttpConnect,
        ProxyProtocol::Socks5 => Protocol::Socks5,
    };
    let refused = |e: tcpclient_core::proxy::ProxyError| Failure::Proxy(e.to_string());
    let mut tunnel = ProxyTunnel::new(protocol, host, port).map_err(refused)?;
    let mut sent = 0;
    loop {
        if let Some(bytes) = tunnel.poll_transmit() {
            sent += send(inbound, bytes)?;
        }
        let data = inbound.data(deadline).map_err(|failure| match failure {
            Failure::TimedOut => {
                Failure::Proxy("no answer from the proxy within --connect-timeout".into())
            }
            Failure::StartTls(reason) => Failure::Proxy(reason),
            other => other,
        })?;
        if let TunnelStatus::Open { leftover } = tunnel.handle_data(&data).map_err(refused)? {
            return Ok((sent, leftover));
        }
    }
}

fn send(inbound: &mut Inbound<'_>, bytes: Bytes) -> Result<u64, Failure> {
    let len = bytes.len() as u64;
    inbound
        .trace
        .request_with(&Request::Send(bytes.clone()), json!({ "proxy": true }));
    inbound
        .conn
        .send(bytes)
        .map_err(|e| Failure::Proxy(e.to_string()))?;
    Ok(len)
}
