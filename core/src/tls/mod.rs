//! TLS over the connection, driven sans-IO with rustls.
//!
//! Every rustls call in the crate is in this module, so a rustls API change stays here.
//! The session wraps a [`rustls::ClientConnection`] (the buffered 0.23 API): socket bytes go
//! in with `read_tls` + `process_new_packets`, plaintext comes out of `reader()`, and TLS bytes
//! come out of `write_tls` into a buffer that becomes an [`Output::Transmit`](crate::Output::Transmit).
//! [`client_config`] and its friends build the [`rustls::ClientConfig`] that
//! [`crate::TlsConfig`] needs.

mod config;
mod framing;

use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::{BufMut, Bytes, BytesMut};
use rustls::{CertificateError, ClientConnection};

pub use config::{
    check_alpn_protocols, client_config, client_config_from_pem,
    danger_client_config_accepting_any_certificate, ring_provider, roots_from_pem,
};

use crate::{TlsConfig, TlsError, TlsInfo};

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
pub(crate) struct TlsSession {
    conn: ClientConnection,
    close_notify_sent: bool,
    peer_closed: bool,
    /// Record boundaries of what arrives after our `close_notify` (see [`Self::receive`]).
    after_close_notify: framing::RecordFraming,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
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
            conn,
            close_notify_sent: false,
            peer_closed: false,
            after_close_notify: framing::RecordFraming::default(),
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Returns true once application data may be encrypted.
    pub(crate) fn can_send(&self) -> bool {
        !self.conn.is_handshaking() && !self.close_notify_sent
    }

    /// Returns true while TLS bytes wait to be taken with [`Self::write_outgoing`].
    pub(crate) fn has_outgoing(&self) -> bool {
        self.conn.wants_write()
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify_sent
    }

    /// Appends the TLS bytes waiting to be written (handshake, records, alerts) to `out`;
    /// returns how many.
    pub(crate) fn write_outgoing(&mut self, out: &mut BytesMut) -> usize {
        let before = out.len();
        let mut writer = out.writer();
        while self.conn.wants_write() {
            // Writing into memory cannot fail; stop rather than spin if it ever did.
            match self.conn.write_tls(&mut writer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        writer.into_inner().len() - before
    }

    /// Encrypts `chunks` (at most [`MAX_RECORD_PLAINTEXT`] bytes) as one record.
    ///
    /// Returns how many bytes rustls took: all of them, since the buffer limit is off.
    pub(crate) fn encrypt(&mut self, chunks: &[Bytes]) -> Result<usize, TlsError> {
        let slices: Vec<io::IoSlice<'_>> = chunks.iter().map(|c| io::IoSlice::new(c)).collect();
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let taken = io::Write::write_vectored(&mut self.conn.writer(), &slices).map_err(other)?;
        if taken != total {
            return Err(TlsError::Other {
                reason: format!("rustls accepted {taken} of {total} plaintext bytes"),
            });
        }
        Ok(taken)
    }

    /// Queues our `close_notify`; nothing may be sent after it.
    pub(crate) fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
        self.close_notify_sent = true;
    }

    /// Feeds bytes read from the socket and collects what they produced. Plaintext from the
    /// records before a failure is kept: each record was authenticated on its own.
    ///
    /// After our `close_notify`, rustls 0.23 must not see a record it would reject: it answers
    /// with a fatal alert, and its `debug_assert!` that no second alert follows the first
    /// (`close_notify` counts as one) panics in every debug build (rustls#959). So the record
    /// headers are checked here first, as rustls's own deframer would, and a malformed record
    /// never reaches it. A well-formed record that fails to authenticate can only be found by
    /// rustls itself; for that last case the panic is contained and reported as corrupt data.
    pub(crate) fn receive(&mut self, mut data: &[u8]) -> Inbound {
        let was_handshaking = self.conn.is_handshaking();
        let mut plaintext = Vec::new();
        let mut error = None;
        if self.close_notify_sent
            && let Err(bad) = self.after_close_notify.check(data)
        {
            data = &data[..bad.valid_prefix];
            error = Some(TlsError::CorruptMessage {
                reason: bad.reason.into(),
            });
        }
        while !data.is_empty() && !self.peer_closed {
            if let Err(e) = self.receive_some(&mut data, &mut plaintext) {
                error = Some(e);
                break;
            }
        }
        Inbound {
            plaintext: (!plaintext.is_empty()).then(|| Bytes::from(plaintext)),
            handshake_finished: was_handshaking && !self.conn.is_handshaking(),
            peer_closed: self.peer_closed,
            error,
        }
    }

    /// One `read_tls` + `process_new_packets` step: consumes from `data`, appends the
    /// plaintext it produced (also when it then fails) to `plaintext`.
    fn receive_some(&mut self, data: &mut &[u8], plaintext: &mut Vec<u8>) -> Result<(), TlsError> {
        let read = self
            .conn
            .read_tls(data)
            .map_err(|e| TlsError::CorruptMessage {
                reason: e.to_string(),
            })?;
        let state = match self.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                self.drain_available(plaintext);
                return Err(e);
            }
        };
        self.drain_plaintext(state.plaintext_bytes_to_read(), plaintext)?;
        if state.peer_has_closed() {
            self.peer_closed = true;
        } else if read == 0 {
            // rustls reads nothing when a record header announces an impossible length.
            return Err(TlsError::CorruptMessage {
                reason: "a record rustls cannot buffer".into(),
            });
        }
        Ok(())
    }

    /// `process_new_packets`, with the rustls#959 panic (only reachable after our
    /// `close_notify`, see [`Self::receive`]) turned into the error rustls was reporting.
    fn process_new_packets(&mut self) -> Result<rustls::IoState, TlsError> {
        if !self.close_notify_sent {
            return self.conn.process_new_packets().map_err(classify);
        }
        let conn = &mut self.conn;
        match catch_unwind(AssertUnwindSafe(|| conn.process_new_packets())) {
            Ok(processed) => processed.map_err(classify),
            Err(_) => Err(TlsError::CorruptMessage {
                reason: "a record that does not authenticate, after our close_notify".into(),
            }),
        }
    }

    /// Takes whatever plaintext rustls holds, after a failure (when it no longer says how much).
    fn drain_available(&mut self, into: &mut Vec<u8>) {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = self.conn.reader().read(&mut chunk) {
            into.extend_from_slice(&chunk[..n]);
        }
    }

    /// Tells rustls the TCP stream ended. Returns false if that truncated the session: the
    /// peer never sent `close_notify`.
    pub(crate) fn tcp_eof(&mut self) -> bool {
        let mut empty: &[u8] = &[];
        // A read of zero bytes is how rustls learns of EOF; it cannot fail on an empty slice.
        let _ = self.conn.read_tls(&mut empty);
        self.peer_closed
    }

    /// Returns what the handshake negotiated.
    pub(crate) fn info(&self) -> TlsInfo {
        TlsInfo {
            protocol_version: self.conn.protocol_version(),
            cipher_suite: self.conn.negotiated_cipher_suite().map(|s| s.suite()),
            alpn_protocol: self.conn.alpn_protocol().map(<[u8]>::to_vec),
        }
    }

    fn drain_plaintext(&mut self, available: usize, into: &mut Vec<u8>) -> Result<(), TlsError> {
        if available == 0 {
            return Ok(());
        }
        let start = into.len();
        into.resize(start + available, 0);
        self.conn
            .reader()
            .read_exact(&mut into[start..])
            .map_err(other)
    }
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
