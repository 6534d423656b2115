//! Reading the peer's stream after our `close_notify`, without the rustls connection.
//!
//! rustls 0.23 counts our `close_notify` as a fatal alert already sent; if it then meets a
//! record it must reject, it asserts that it never sends a second one, and that
//! `debug_assert!` panics in every debug build (rustls#959). A hostile server, or a bit flip
//! on the path, can always send such a record. So once our `close_notify` is out, the core
//! takes the session's receive keys from rustls and decrypts the rest itself, with the very
//! record decrypter rustls would have used: the application data, the peer's own
//! `close_notify`, and typed errors for anything else. No byte after our `close_notify`
//! reaches the rustls connection.

use rustls::crypto::cipher::{InboundOpaqueMessage, MessageDecrypter};
use rustls::{
    AlertDescription, ClientConnection, ConnectionTrafficSecrets, ContentType, HandshakeType,
    ProtocolVersion, SupportedCipherSuite,
};

use super::framing::{HEADER, validate};
use crate::TlsError;

/// The receive side of a session whose sending side we closed.
pub(crate) struct Drain {
    decrypter: Box<dyn MessageDecrypter>,
    /// Sequence number of the next record.
    seq: u64,
    tls13: bool,
    /// The record being assembled: header, then payload.
    record: Vec<u8>,
    /// The peer's `close_notify` arrived: nothing after it counts.
    peer_closed: bool,
}

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("seq", &self.seq)
            .field("tls13", &self.tls13)
            .field("peer_closed", &self.peer_closed)
            .finish()
    }
}

impl Drain {
    /// Takes the receive keys out of `conn`, which must have no record half read and nothing
    /// left to write (our `close_notify` written), and must allow secret extraction.
    pub(crate) fn start(conn: ClientConnection) -> Result<Self, TlsError> {
        let suite = conn
            .negotiated_cipher_suite()
            .ok_or_else(|| cannot("no cipher suite"))?;
        let secrets = conn
            .dangerous_extract_secrets()
            .map_err(|e| cannot(&e.to_string()))?;
        let (seq, traffic) = secrets.rx;
        let (key, iv, gcm) = match traffic {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (key, iv, true),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv, false),
            _ => return Err(cannot("an unknown cipher")),
        };
        let (decrypter, tls13) = match suite {
            SupportedCipherSuite::Tls13(suite) => (suite.aead_alg.decrypter(key, iv), true),
            SupportedCipherSuite::Tls12(suite) => {
                // TLS 1.2 GCM nonces are a 4-byte salt plus an explicit part in each record;
                // rustls hands out salt and first explicit part together.
                let fixed = if gcm { &iv.as_ref()[..4] } else { iv.as_ref() };
                (suite.aead_alg.decrypter(key, fixed), false)
            }
        };
        Ok(Self {
            decrypter,
            seq,
            tls13,
            record: Vec::new(),
            peer_closed: false,
        })
    }

    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Takes bytes from the socket; appends the application data they carry to
    /// `plaintext` (also when a later record fails).
    pub(crate) fn receive(
        &mut self,
        mut data: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<(), TlsError> {
        while !data.is_empty() && !self.peer_closed {
            let wanted = self.wanted();
            let n = wanted.min(data.len());
            self.record.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.record.len() == HEADER {
                let mut header = [0u8; HEADER];
                header.copy_from_slice(&self.record);
                validate(&header).map_err(|reason| TlsError::CorruptMessage {
                    reason: reason.into(),
                })?;
            }
            if self.record.len() >= HEADER && self.wanted() == 0 {
                self.open_record(plaintext)?;
                self.record.clear();
            }
        }
        Ok(())
    }

    /// Bytes still missing from the record being assembled.
    fn wanted(&self) -> usize {
        if self.record.len() < HEADER {
            return HEADER - self.record.len();
        }
        let len = usize::from(u16::from_be_bytes([self.record[3], self.record[4]]));
        (HEADER + len).saturating_sub(self.record.len())
    }

    /// Decrypts the assembled record and acts on what it holds.
    fn open_record(&mut self, plaintext: &mut Vec<u8>) -> Result<(), TlsError> {
        let outer = ContentType::from(self.record[0]);
        let version = ProtocolVersion::from(u16::from_be_bytes([self.record[1], self.record[2]]));
        if outer == ContentType::ChangeCipherSpec
            || (self.tls13 && outer != ContentType::ApplicationData)
        {
            return Err(corrupt("an unencrypted record after the handshake"));
        }
        let message = InboundOpaqueMessage::new(outer, version, &mut self.record[HEADER..]);
        let opened =
            self.decrypter
                .decrypt(message, self.seq)
                .map_err(|e| TlsError::CorruptMessage {
                    reason: e.to_string(),
                })?;
        self.seq += 1;
        let payload = opened.payload;
        match opened.typ {
            ContentType::ApplicationData => plaintext.extend_from_slice(payload),
            ContentType::Alert => match payload {
                [_, description]
                    if AlertDescription::from(*description) == AlertDescription::CloseNotify =>
                {
                    self.peer_closed = true;
                }
                [1, description]
                    if AlertDescription::from(*description) == AlertDescription::UserCanceled => {}
                [_, description] => {
                    return Err(TlsError::AlertReceived {
                        alert: format!("{:?}", AlertDescription::from(*description)),
                    });
                }
                _ => return Err(corrupt("a malformed alert")),
            },
            // Resumption tickets (TLS 1.3) and renegotiation requests (TLS 1.2) are of no use
            // to a connection on its way out.
            ContentType::Handshake => match payload.first().map(|t| HandshakeType::from(*t)) {
                Some(HandshakeType::NewSessionTicket | HandshakeType::HelloRequest) => {}
                Some(HandshakeType::KeyUpdate) => {
                    return Err(TlsError::Other {
                        reason: "the server changed its keys after our close_notify; the rest \
                                 of its data cannot be read"
                            .into(),
                    });
                }
                _ => {
                    return Err(corrupt(
                        "an unexpected handshake message after our close_notify",
                    ));
                }
            },
            _ => {
                return Err(corrupt(
                    "a record of an unexpected type after our close_notify",
                ));
            }
        }
        Ok(())
    }
}

fn corrupt(reason: &str) -> TlsError {
    TlsError::CorruptMessage {
        reason: reason.into(),
    }
}

fn cannot(why: &str) -> TlsError {
    TlsError::Other {
        reason: format!("cannot read the peer's data after our close_notify: {why}"),
    }
}
