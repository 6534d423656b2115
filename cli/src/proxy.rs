//! `-x PROXY -X connect|5`: reaching HOST PORT through an HTTP CONNECT proxy (RFC 9110
//! section 9.3.6) or a SOCKS5 proxy (RFC 1928, the proxy resolving the name), as nc does.
//! Like a STARTTLS dialogue, it runs before anything else is sent; a proxy that answers
//! more than its go-ahead before a TLS handshake is refused as an injection.

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;

use super::Failure;
use super::args::ProxyProtocol;
use super::inbound::Inbound;

/// Most header lines a CONNECT response may have.
const MAX_HEADER_LINES: usize = 128;

/// Asks the proxy the connection is made to for a tunnel to `host`:`port`, by `deadline`.
/// Returns the bytes the dialogue sent.
pub fn tunnel(
    inbound: &mut Inbound<'_>,
    protocol: ProxyProtocol,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<u64, Failure> {
    let result = match protocol {
        ProxyProtocol::Connect => http_connect(inbound, host, port, deadline),
        ProxyProtocol::Socks5 => socks5(inbound, host, port, deadline),
    };
    result.map_err(|failure| match failure {
        Failure::TimedOut => {
            Failure::Proxy("no answer from the proxy within --connect-timeout".into())
        }
        Failure::StartTls(reason) => Failure::Proxy(reason),
        other => other,
    })
}

fn send(inbound: &mut Inbound<'_>, bytes: Vec<u8>) -> Result<u64, Failure> {
    let len = bytes.len() as u64;
    inbound
        .trace
        .request("Send", json!({ "bytes": len, "proxy": true }));
    inbound
        .conn
        .send(Bytes::from(bytes))
        .map_err(|e| Failure::Proxy(e.to_string()))?;
    Ok(len)
}

fn http_connect(
    inbound: &mut Inbound<'_>,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<u64, Failure> {
    // An IPv6 literal goes in brackets; it may come with them already.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let authority = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{bare}]:{port}"),
        _ => format!("{bare}:{port}"),
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    let sent = send(inbound, request.into_bytes())?;
    let status = inbound.line(deadline)?;
    let code = status
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok());
    match code {
        Some(200..=299) => {}
        Some(_) => return Err(Failure::Proxy(format!("the proxy refused: `{status}`"))),
        None => {
            return Err(Failure::Proxy(format!(
                "not an HTTP response from the proxy: `{status}`"
            )));
        }
    }
    for _ in 0..MAX_HEADER_LINES {
        if inbound.line(deadline)?.is_empty() {
            return Ok(sent);
        }
    }
    Err(Failure::Proxy(format!(
        "the proxy's response had more than {MAX_HEADER_LINES} header lines"
    )))
}

fn socks5(
    inbound: &mut Inbound<'_>,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<u64, Failure> {
    // Version 5, one method: no authentication.
    let mut sent = send(inbound, vec![5, 1, 0])?;
    match inbound.exact(2, deadline)?[..] {
        [5, 0] => {}
        [5, 0xff] => {
            return Err(Failure::Proxy(
                "the SOCKS5 proxy wants authentication, which is not supported".into(),
            ));
        }
        ref other => {
            return Err(Failure::Proxy(format!(
                "not a SOCKS5 answer from the proxy: {other:02x?}"
            )));
        }
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let mut request = vec![5, 1, 0];
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        // The proxy resolves the name (nc -X 5 does the same).
        Err(_) => {
            let name = u8::try_from(bare.len()).map_err(|_| {
                Failure::Proxy(format!("`{bare}` is longer than SOCKS5's 255 bytes"))
            })?;
            request.push(3);
            request.push(name);
            request.extend_from_slice(bare.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    sent += send(inbound, request)?;
    let head = inbound.exact(4, deadline)?;
    let [5, reply, _, kind] = head[..] else {
        return Err(Failure::Proxy(format!(
            "not a SOCKS5 reply from the proxy: {head:02x?}"
        )));
    };
    if reply != 0 {
        return Err(Failure::Proxy(format!(
            "the SOCKS5 proxy refused: {}",
            socks5_reply(reply)
        )));
    }
    // The address the proxy bound, then its port: read and dropped.
    let address = match kind {
        1 => 4,
        4 => 16,
        3 => usize::from(inbound.exact(1, deadline)?[0]),
        other => {
            return Err(Failure::Proxy(format!(
                "the SOCKS5 proxy answered with an unknown address type {other}"
            )));
        }
    };
    inbound.exact(address + 2, deadline)?;
    Ok(sent)
}

/// RFC 1928 section 6, in words.
fn socks5_reply(code: u8) -> String {
    let reason = match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the destination host",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unknown reply code",
    };
    format!("{reason} ({code})")
}
