//! TLS over the connection, driven sans-IO with rustls.
//!
//! Every rustls call in the crate is in this module, so a rustls API change stays here.
//! The handshake runs on rustls's unbuffered connection (`tls/handshake.rs`); then the core seals
//! and opens the session's records itself, with rustls's own record encrypter and decrypter
//! and its kernel connection for key updates and tickets (`tls/records.rs` says why). Each sealed
//! record becomes an [`Output::Transmit`](crate::Output::Transmit) without a copy.
//! [`client_config`] and its friends build the [`rustls::ClientConfig`] that
//! [`crate::TlsConfig`] needs.

mod config;
mod flood;
mod framing;
mod handshake;
mod records;

use bytes::{Bytes, BytesMut};
use rustls::{AlertDescription, CertificateError};

#[cfg(feature = "ring")]
pub use config::ring_provider;
pub use config::{
    check_alpn_protocols, client_config, client_config_from_pem,
    danger_client_config_accepting_any_certificate, default_provider, roots_from_pem,
};

use crate::{AlertSent, Destination, PeerCertificates, TlsConfig, TlsError, TlsInfo};
use handshake::{Finished, Handshake, Progress};
use records::Records;

/// The most plaintext one TLS record carries. Sealing at most this much at a time makes
/// every seal exactly one record, so the ledger can count delivered bytes per record.
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// A record's header, which rustls's `max_fragment_size` counts.
const RECORD_HEADER: usize = 5;

/// What one batch of received bytes did to the session.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    /// Decrypted application data, if any arrived.
    pub(crate) plaintext: Option<Bytes>,
    /// The handshake finished during this batch.
    pub(crate) handshake_finished: bool,
    /// The peer's `close_notify` arrived during this batch.
    pub(crate) peer_closed: bool,
    /// The session failed after the plaintext above, with the alert sealed for the peer
    /// (waiting in [`TlsSession::write_outgoing`], the last bytes the session sends).
    pub(crate) failed: Option<Failed>,
}

/// A failure of the session, with the fatal alert TLS names for it where it names one.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: TlsError,
    pub(crate) alert: Option<AlertDescription>,
}

impl Failure {
    fn new(alert: AlertDescription, error: TlsError) -> Self {
        Self {
            error,
            alert: Some(alert),
        }
    }
}

/// A failure no alert answers: the peer's own fatal alert, a flood (rustls sends none for
/// either), or one of ours.
impl From<TlsError> for Failure {
    fn from(error: TlsError) -> Self {
        Self { error, alert: None }
    }
}

/// One TLS client session: a handshake, then its records.
pub(crate) struct TlsSession {
    handshake: Option<Box<Handshake>>,
    records: Option<Records>,
    /// Bytes waiting for [`Self::write_outgoing`]: handshake flights, our key-update answers,
    /// our `close_notify`.
    outgoing: Vec<u8>,
    /// What the handshake negotiated.
    info: Option<TlsInfo>,
    /// The most plaintext one record carries: 16 KiB, or less under the configuration's
    /// `max_fragment_size`.
    max_plaintext: usize,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.is_handshaking())
            .field("close_notify_sent", &self.close_notify_sent())
            .field("peer_closed", &self.peer_closed())
            .finish()
    }
}

impl TlsSession {
    /// Starts a session; its ClientHello is ready in [`Self::write_outgoing`].
    pub(crate) fn new(config: &TlsConfig, destination: &Destination) -> Result<Self, TlsError> {
        // rustls panics while building the ClientHello on a name it cannot encode.
        config::check_alpn(&config.client_config.alpn_protocols)?;
        let Some(server_name) = destination.server_name.clone() else {
            let host = &destination.host;
            let reason = format!(
                "no name to verify the server against: the destination `{host}` has none \
                 (a host that is neither a DNS name nor an IP address gives none; give one \
                 with Destination::with_server_name)"
            );
            return Err(TlsError::Other { reason });
        };
        let mut outgoing = Vec::new();
        let handshake = Handshake::start(config.client_config.clone(), server_name, &mut outgoing)?;
        Ok(Self {
            handshake: Some(handshake),
            records: None,
            outgoing,
            info: None,
            max_plaintext: config.client_config.max_fragment_size.map_or(
                MAX_RECORD_PLAINTEXT,
                |size| {
                    size.saturating_sub(RECORD_HEADER)
                        .clamp(1, MAX_RECORD_PLAINTEXT)
                },
            ),
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.handshake.is_some()
    }

    /// Returns true once application data may be sealed.
    pub(crate) fn can_send(&self) -> bool {
        self.records.is_some() && !self.close_notify_sent()
    }

    fn close_notify_sent(&self) -> bool {
        self.records
            .as_ref()
            .is_some_and(Records::close_notify_sent)
    }

    /// Returns true while TLS bytes wait to be taken with [`Self::write_outgoing`].
    pub(crate) fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty() || self.records.as_ref().is_some_and(Records::has_control)
    }

    /// Appends the TLS bytes the session itself sends (handshake flights, alerts, key
    /// updates) to `out`; returns how many.
    pub(crate) fn write_outgoing(&mut self, out: &mut BytesMut) -> usize {
        if let Some(records) = &mut self.records {
            records.take_control(&mut self.outgoing);
        }
        let n = self.outgoing.len();
        out.extend_from_slice(&self.outgoing);
        self.outgoing.clear();
        n
    }

    /// The most plaintext one record may carry: what [`Self::seal`] takes at a time.
    pub(crate) fn max_plaintext(&self) -> usize {
        self.max_plaintext
    }

    /// Seals `chunks` (at most [`Self::max_plaintext`] bytes) as one record, ready to send.
    /// Bytes of the session's own ([`Self::write_outgoing`]) go before it. A failure seals
    /// the alert it calls for, as [`Self::receive`] does.
    pub(crate) fn seal(&mut self, chunks: &[Bytes]) -> Result<Bytes, Failed> {
        let Some(records) = &mut self.records else {
            let error = TlsError::Other {
                reason: "encrypting before the handshake is over".into(),
            };
            return Err((error, None));
        };
        match records.seal(chunks) {
            Ok(sealed) => Ok(sealed),
            Err(Failure { error, alert }) => {
                let alert = alert.and_then(|alert| self.seal_fatal_alert(alert));
                Err((error, alert))
            }
        }
    }

    /// Seals our `close_notify` (its bytes wait in [`Self::write_outgoing`]); nothing may be
    /// sent after it. The peer's stream is still read to its end.
    pub(crate) fn send_close_notify(&mut self) -> Result<(), TlsError> {
        let Some(records) = &mut self.records else {
            return Ok(());
        };
        if records.close_notify_sent() {
            return Ok(());
        }
        records.take_control(&mut self.outgoing);
        let alert = records.seal_close_notify()?;
        self.outgoing.extend_from_slice(&alert);
        Ok(())
    }

    /// Feeds bytes read from the socket and collects what they produced. Plaintext from the
    /// records before a failure is kept: each record was authenticated on its own.
    ///
    /// A failure seals the fatal alert it calls for (the handshake's is rustls's own) as
    /// the session's last bytes, unless our `close_notify` already went: nothing may follow
    /// that.
    pub(crate) fn receive(&mut self, data: &[u8]) -> Inbound {
        let mut plaintext = Vec::new();
        let mut handshake_finished = false;
        let result = self.receive_into(data, &mut plaintext, &mut handshake_finished);
        let failed = match result {
            Ok(()) => None,
            Err(Received::Handshake(failed)) => Some(failed),
            Err(Received::Records(Failure { error, alert })) => {
                Some((error, alert.and_then(|alert| self.seal_fatal_alert(alert))))
            }
        };
        Inbound {
            plaintext: (!plaintext.is_empty()).then(|| Bytes::from(plaintext)),
            handshake_finished,
            peer_closed: self.peer_closed(),
            failed,
        }
    }

    /// Seals `alert` after whatever the session still had to send.
    fn seal_fatal_alert(&mut self, alert: AlertDescription) -> Option<AlertSent> {
        let records = self.records.as_mut()?;
        records.take_control(&mut self.outgoing);
        let sealed = records.seal_fatal_alert(alert)?;
        self.outgoing.extend_from_slice(&sealed);
        Some(AlertSent::Named(alert))
    }

    fn receive_into(
        &mut self,
        data: &[u8],
        plaintext: &mut Vec<u8>,
        handshake_finished: &mut bool,
    ) -> Result<(), Received> {
        if let Some(handshake) = self.handshake.take() {
            let progress = handshake
                .receive(data, &mut self.outgoing)
                .map_err(Received::Handshake)?;
            let finished = match progress {
                Progress::Continues(handshake) => {
                    self.handshake = Some(handshake);
                    return Ok(());
                }
                Progress::Done(finished) => finished,
            };
            let Finished {
                info,
                secrets,
                kernel,
                rest,
            } = *finished;
            *handshake_finished = true;
            self.info = Some(info);
            let records =
                Records::start(secrets, kernel).map_err(|e| Received::Records(e.into()))?;
            let records = self.records.insert(records);
            return records.receive(&rest, plaintext).map_err(Received::Records);
        }
        match &mut self.records {
            Some(records) => records.receive(data, plaintext).map_err(Received::Records),
            None => Ok(()),
        }
    }

    fn peer_closed(&self) -> bool {
        self.records.as_ref().is_some_and(Records::peer_closed)
    }

    /// Tells the session the TCP stream ended. Returns false if that truncated the session:
    /// the peer never sent `close_notify`.
    pub(crate) fn tcp_eof(&mut self) -> bool {
        self.peer_closed()
    }

    /// Returns what the handshake negotiated (so far, while it is under way).
    pub(crate) fn info(&self) -> TlsInfo {
        match (&self.info, &self.handshake) {
            (Some(info), _) => info.clone(),
            (None, Some(handshake)) => handshake.info(),
            (None, None) => TlsInfo {
                protocol_version: None,
                cipher_suite: None,
                key_exchange_group: None,
                alpn_protocol: None,
                resumed: false,
                peer_certificates: PeerCertificates::default(),
            },
        }
    }
}

/// A failed session: why, and the alert sealed for the peer as its last bytes, if any.
pub(crate) type Failed = (TlsError, Option<AlertSent>);

/// How receiving failed: in the handshake, whose alert (if any) rustls has sealed already,
/// or in the records, whose alert is still to be sealed.
enum Received {
    Handshake(Failed),
    Records(Failure),
}

/// The alert rustls sends for `error` wherever that does not depend on where it arose.
fn alert_for(error: &rustls::Error) -> Option<AlertDescription> {
    match error {
        rustls::Error::InvalidCertificate(cert) => Some(cert.clone().into()),
        rustls::Error::InvalidMessage(message) => Some((*message).into()),
        rustls::Error::DecryptError => Some(AlertDescription::BadRecordMac),
        rustls::Error::PeerSentOversizedRecord => Some(AlertDescription::RecordOverflow),
        rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::IllegalMiddleboxChangeCipherSpec) => {
            Some(AlertDescription::UnexpectedMessage)
        }
        _ => None,
    }
}

fn connection_info(conn: &rustls::CommonState) -> TlsInfo {
    TlsInfo {
        protocol_version: conn.protocol_version(),
        cipher_suite: conn.negotiated_cipher_suite().map(|s| s.suite()),
        key_exchange_group: conn.negotiated_key_exchange_group().map(|g| g.name()),
        alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        peer_certificates: PeerCertificates(
            conn.peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        ),
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
