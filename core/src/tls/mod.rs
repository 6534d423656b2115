//! TLS over the connection, driven sans-IO with rustls.
//!
//! Every rustls call in the crate is in this module, so a rustls API change stays here.
//! The session wraps a [`rustls::ClientConnection`] (the buffered 0.23 API): socket bytes go
//! in with `read_tls` + `process_new_packets`, plaintext comes out of `reader()`, and TLS bytes
//! come out of `write_tls` into a buffer that becomes an [`Output::Transmit`](crate::Output::Transmit).
//! [`client_config`] and its friends build the [`rustls::ClientConfig`] that
//! [`crate::TlsConfig`] needs.

mod config;
mod drain;
mod framing;

use std::io::{self, Read};

use bytes::{BufMut, Bytes, BytesMut};
use rustls::{CertificateError, ClientConnection};

pub use config::{
    check_alpn_protocols, client_config, client_config_from_pem,
    danger_client_config_accepting_any_certificate, ring_provider, roots_from_pem,
};

use crate::{PeerCertificates, TlsConfig, TlsError, TlsInfo};
use drain::Drain;
use framing::RecordBoundaries;

/// The most plaintext one TLS record carries. Feeding rustls at most this much per write
/// makes every write exactly one record, so the ledger can count delivered bytes per record.
pub(crate) const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// What one batch of received bytes did to the session.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// Decrypted application data, if any arrived.
    pub(crate) plaintext: Option<Bytes>,
    /// The handshake finished during this batch.
    pub(crate) handshake_finished: bool,
    /// The peer's `close_notify` arrived during this batch.
    pub(crate) peer_closed: bool,
    /// The session failed after the plaintext above.
    pub(crate) error: Option<TlsError>,
}

/// One TLS client session.
///
/// Until our `close_notify`, rustls's connection does everything. Then the rest of the
/// peer's stream is read by a [`Drain`] with the session's keys (see [`drain`] for why),
/// starting with the record rustls was half way through, whose bytes the session keeps.
pub(crate) struct TlsSession {
    conn: Option<ClientConnection>,
    drain: Option<Drain>,
    close_notify_sent: bool,
    /// Our `close_notify`, encrypted and waiting for [`Self::write_outgoing`].
    alert: Vec<u8>,
    /// What the handshake negotiated, kept for after rustls's connection is gone.
    info: Option<TlsInfo>,
    peer_closed: bool,
    /// Where the records received so far end.
    boundaries: RecordBoundaries,
    /// The bytes of the record received in part: rustls holds them, and loses them when
    /// its keys are taken for the drain.
    partial_record: Vec<u8>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.is_handshaking())
            .field("close_notify_sent", &self.close_notify_sent)
            .field("peer_closed", &self.peer_closed)
            .finish()
    }
}

impl TlsSession {
    /// Starts a session; its ClientHello is ready in [`Self::write_outgoing`].
    pub(crate) fn new(config: &TlsConfig) -> Result<Self, TlsError> {
        // rustls panics while building the ClientHello on a name it cannot encode.
        config::check_alpn(&config.client_config.alpn_protocols)?;
        let mut conn =
            ClientConnection::new(config.client_config.clone(), config.server_name.clone())
                .map_err(classify)?;
        // The core bounds what it queues itself and drains rustls after every write, so
        // rustls's own limit would only make writes partial.
        conn.set_buffer_limit(None);
        Ok(Self {
            conn: Some(conn),
            drain: None,
            close_notify_sent: false,
            alert: Vec::new(),
            info: None,
            peer_closed: false,
            boundaries: RecordBoundaries::default(),
            partial_record: Vec::new(),
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_handshaking())
    }

    /// Returns true once application data may be encrypted.
    pub(crate) fn can_send(&self) -> bool {
        !self.close_notify_sent && self.conn.as_ref().is_some_and(|c| !c.is_handshaking())
    }

    /// Returns true while TLS bytes wait to be taken with [`Self::write_outgoing`].
    pub(crate) fn has_outgoing(&self) -> bool {
        !self.alert.is_empty() || self.conn.as_ref().is_some_and(|c| c.wants_write())
    }

    /// Appends the TLS bytes waiting to be written (handshake, records, alerts) to `out`;
    /// returns how many.
    pub(crate) fn write_outgoing(&mut self, out: &mut BytesMut) -> usize {
        let before = out.len();
        if let Some(conn) = &mut self.conn {
            write_tls(conn, out);
        }
        out.extend_from_slice(&self.alert);
        self.alert.clear();
        out.len() - before
    }

    /// Encrypts `chunks` (at most [`MAX_RECORD_PLAINTEXT`] bytes) as one record.
    pub(crate) fn encrypt(&mut self, chunks: &[Bytes]) -> Result<(), TlsError> {
        let Some(conn) = &mut self.conn else {
            return Err(TlsError::Other {
                reason: "encrypting after our close_notify".into(),
            });
        };
        let slices: Vec<io::IoSlice<'_>> = chunks.iter().map(|c| io::IoSlice::new(c)).collect();
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let taken = io::Write::write_vectored(&mut conn.writer(), &slices).map_err(other)?;
        if taken != total {
            return Err(TlsError::Other {
                reason: format!("rustls accepted {taken} of {total} plaintext bytes"),
            });
        }
        Ok(())
    }

    /// Sends our `close_notify` (its bytes wait in [`Self::write_outgoing`]) and hands the
    /// receive side to a [`Drain`]; nothing may be sent after it.
    pub(crate) fn send_close_notify(&mut self) -> Result<(), TlsError> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        self.close_notify_sent = true;
        conn.send_close_notify();
        let mut alert = BytesMut::new();
        write_tls(&mut conn, &mut alert);
        self.alert = alert.to_vec();
        if !self.peer_closed {
            let partial = std::mem::take(&mut self.partial_record);
            self.drain = Some(Drain::start(conn, partial)?);
        }
        Ok(())
    }

    /// Feeds bytes read from the socket and collects what they produced. Plaintext from the
    /// records before a failure is kept: each record was authenticated on its own.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Inbound {
        let was_handshaking = self.is_handshaking();
        let mut plaintext = Vec::new();
        let result = self.receive_into(data, &mut plaintext);
        let handshake_finished = was_handshaking && !self.is_handshaking();
        if handshake_finished {
            self.info = self.conn.as_ref().map(connection_info);
        }
        Inbound {
            plaintext: (!plaintext.is_empty()).then(|| Bytes::from(plaintext)),
            handshake_finished,
            peer_closed: self.peer_closed,
            error: result.err(),
        }
    }

    fn receive_into(&mut self, data: &[u8], plaintext: &mut Vec<u8>) -> Result<(), TlsError> {
        if self.conn.is_some() {
            // Keep a copy of the record this read ends inside: if our close_notify goes
            // out before the rest of it arrives, the drain needs its start.
            match self.boundaries.advance(data) {
                Some(end) => {
                    self.partial_record.clear();
                    self.partial_record.extend_from_slice(&data[end..]);
                }
                None => self.partial_record.extend_from_slice(data),
            }
            return self.receive_with_rustls(data, plaintext);
        }
        if let Some(drain) = &mut self.drain
            && !self.peer_closed
        {
            let received = drain.receive(data, plaintext);
            self.peer_closed = drain.peer_closed();
            received?;
        }
        Ok(())
    }

    fn receive_with_rustls(
        &mut self,
        mut data: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        let Some(conn) = &mut self.conn else {
            return Ok(());
        };
        while !data.is_empty() && !self.peer_closed {
            receive_some(conn, &mut data, plaintext, &mut self.peer_closed)?;
        }
        Ok(())
    }

    /// Tells the session the TCP stream ended. Returns false if that truncated the session:
    /// the peer never sent `close_notify`.
    pub(crate) fn tcp_eof(&mut self) -> bool {
        if let Some(conn) = &mut self.conn {
            let mut empty: &[u8] = &[];
            // A read of zero bytes is how rustls learns of EOF; it cannot fail on an empty slice.
            let _ = conn.read_tls(&mut empty);
        }
        self.peer_closed
    }

    /// Returns what the handshake negotiated.
    pub(crate) fn info(&self) -> TlsInfo {
        match (&self.info, &self.conn) {
            (Some(info), _) => info.clone(),
            (None, Some(conn)) => connection_info(conn),
            (None, None) => TlsInfo {
                protocol_version: None,
                cipher_suite: None,
                alpn_protocol: None,
                resumed: false,
                peer_certificates: PeerCertificates::default(),
            },
        }
    }
}

/// Moves every TLS byte rustls has to send into `out`.
fn write_tls(conn: &mut ClientConnection, out: &mut BytesMut) {
    let mut writer = out.writer();
    while conn.wants_write() {
        // Writing into memory cannot fail; stop rather than spin if it ever did.
        match conn.write_tls(&mut writer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn connection_info(conn: &ClientConnection) -> TlsInfo {
    TlsInfo {
        protocol_version: conn.protocol_version(),
        cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
        alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        peer_certificates: PeerCertificates(
            conn.peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        ),
    }
}

/// One `read_tls` + `process_new_packets` step: consumes from `data`, appends the plaintext
/// it produced (also when it then fails) to `plaintext`.
fn receive_some(
    conn: &mut ClientConnection,
    data: &mut &[u8],
    plaintext: &mut Vec<u8>,
    peer_closed: &mut bool,
) -> Result<(), TlsError> {
    let read = conn.read_tls(data).map_err(|e| TlsError::CorruptMessage {
        reason: e.to_string(),
    })?;
    let state = match conn.process_new_packets() {
        Ok(state) => state,
        Err(e) => {
            drain_available(conn, plaintext);
            return Err(classify(e));
        }
    };
    drain_plaintext(conn, state.plaintext_bytes_to_read(), plaintext)?;
    if state.peer_has_closed() {
        *peer_closed = true;
    } else if read == 0 {
        // rustls reads nothing when a record header announces an impossible length.
        return Err(TlsError::CorruptMessage {
            reason: "a record rustls cannot buffer".into(),
        });
    }
    Ok(())
}

/// Takes whatever plaintext rustls holds, after a failure (when it no longer says how much).
fn drain_available(conn: &mut ClientConnection, into: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = conn.reader().read(&mut chunk) {
        into.extend_from_slice(&chunk[..n]);
    }
}

fn drain_plaintext(
    conn: &mut ClientConnection,
    available: usize,
    into: &mut Vec<u8>,
) -> Result<(), TlsError> {
    if available == 0 {
        return Ok(());
    }
    let start = into.len();
    into.resize(start + available, 0);
    conn.reader().read_exact(&mut into[start..]).map_err(other)
}

fn other(error: io::Error) -> TlsError {
    TlsError::Other {
        reason: error.to_string(),
    }
}

/// Sorts a rustls error into the cases a caller can act on.
fn classify(error: rustls::Error) -> TlsError {
    let reason = error.to_string();
    match error {
        rustls::Error::InvalidCertificate(cert) if config::is_ca_used_as_end_entity(&cert) => {
            TlsError::CertificateIsCa
        }
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            | CertificateError::InvalidPurpose
            | CertificateError::InvalidPurposeContext { .. }
            | CertificateError::ApplicationVerificationFailure => {
                TlsError::CertificateNotTrusted { reason }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsError::CertificateNameMismatch { reason }
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                TlsError::CertificateExpired { reason }
            }
            _ => TlsError::CertificateInvalid { reason },
        },
        rustls::Error::NoCertificatesPresented => TlsError::CertificateInvalid { reason },
        rustls::Error::AlertReceived(alert) => TlsError::AlertReceived {
            alert: format!("{alert:?}"),
        },
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::DecryptError
        | rustls::Error::PeerSentOversizedRecord
        | rustls::Error::PeerMisbehaved(_) => TlsError::CorruptMessage { reason },
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
            TlsError::Incompatible { reason }
        }
        _ => TlsError::Other { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_fall_into_the_cases_a_caller_can_act_on() {
        let cases = [
            (rustls::Error::NoCertificatesPresented, "CertificateInvalid"),
            (rustls::Error::NoApplicationProtocol, "Incompatible"),
            (rustls::Error::DecryptError, "CorruptMessage"),
            (rustls::Error::PeerSentOversizedRecord, "CorruptMessage"),
            (
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                "AlertReceived",
            ),
            (rustls::Error::FailedToGetCurrentTime, "Other"),
        ];
        for (error, name) in cases {
            let debug = format!("{error:?}");
            assert_eq!(classify(error).name(), name, "{debug}");
        }
    }
}
