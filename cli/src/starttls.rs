//! The STARTTLS dialogues of `--starttls`, as `openssl s_client -starttls` runs them, but
//! checking every reply code and refusing injected plaintext. The dialogue is the core's
//! [`StartTlsDialogue`]; this runs it over the connection, bounded by the connect timeout.

use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tcpclient_core::starttls::{StartTlsDialogue, StartTlsError, StartTlsProtocol as Protocol};
use tcpclient_core::{Event, Request};

use super::Failure;
use super::args::StartTlsProtocol;
use super::inbound::Inbound;

/// Runs `protocol`'s dialogue up to its go-ahead, switches to TLS and waits for the
/// handshake to finish, all before `deadline`. Returns how many bytes the dialogue sent.
///
/// Bytes the server sends after its go-ahead and before the handshake are refused: a
/// man-in-the-middle can inject plaintext there that a careless client would take as part
/// of the encrypted session (CVE-2011-0411 and its class).
pub fn negotiate(
    inbound: &mut Inbound<'_>,
    protocol: StartTlsProtocol,
    names: &Names<'_>,
    deadline: Instant,
) -> Result<u64, Failure> {
    let protocol = match protocol {
        StartTlsProtocol::Smtp => Protocol::Smtp,
        StartTlsProtocol::Imap => Protocol::Imap,
        StartTlsProtocol::Pop3 => Protocol::Pop3,
        StartTlsProtocol::Ftp => Protocol::Ftp,
        StartTlsProtocol::Lmtp => Protocol::Lmtp,
        StartTlsProtocol::Nntp => Protocol::Nntp,
        StartTlsProtocol::Xmpp => Protocol::Xmpp,
        StartTlsProtocol::Sieve => Protocol::Sieve,
    };
    let refused = |e: StartTlsError| Failure::StartTls(e.to_string());
    let mut dialogue = StartTlsDialogue::new(protocol, names.ehlo, names.xmpp).map_err(refused)?;
    loop {
        while let Some(bytes) = dialogue.poll_transmit() {
            send(inbound, bytes)?;
        }
        if dialogue.is_done() {
            break;
        }
        let data = inbound.data(deadline).map_err(|failure| match failure {
            Failure::TimedOut => Failure::Late(
                "STARTTLS: the dialogue did not finish within --connect-timeout".into(),
            ),
            other => other,
        })?;
        dialogue.handle_data(&data).map_err(refused)?;
    }
    inbound.trace.request(&Request::StartTls);
    inbound.answered(inbound.conn.start_tls());
    await_tls(inbound, deadline, |data| {
        dialogue.handle_data(data).map(drop).map_err(refused)
    })?;
    Ok(dialogue.bytes_sent())
}

/// Waits for the TLS handshake to finish by `deadline`, handing any data that comes first
/// to `early`.
pub fn await_tls(
    inbound: &mut Inbound<'_>,
    deadline: Instant,
    mut early: impl FnMut(&[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    loop {
        match inbound.next(Some(deadline)) {
            Ok(Event::TlsEstablished(_)) => return Ok(()),
            Ok(Event::Data(data)) => early(&data)?,
            Ok(Event::Closed(report)) => return Err(Failure::Unclean(report)),
            Ok(_) => {}
            Err(Failure::TimedOut) => {
                return Err(Failure::Late(
                    "no TLS session within --connect-timeout: the handshake did not finish".into(),
                ));
            }
            Err(other) => return Err(other),
        }
    }
}

/// The names a dialogue announces.
pub struct Names<'a> {
    /// SMTP's EHLO and LMTP's LHLO.
    pub ehlo: &'a str,
    /// The domain an XMPP stream is opened to.
    pub xmpp: &'a str,
}

/// Sends one of the dialogue's commands.
fn send(inbound: &mut Inbound<'_>, bytes: Bytes) -> Result<(), Failure> {
    let line = String::from_utf8_lossy(&bytes).trim_end().to_string();
    inbound
        .trace
        .request_with(&Request::Send(bytes.clone()), json!({ "line": line }));
    inbound
        .conn
        .send(bytes)
        .map_err(|e| Failure::StartTls(e.to_string()))
}
