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
    /// Handshake messages arriving after our `close_notify`, reassembled across records.
    handshake: Vec<u8>,
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
    /// Takes the receive keys out of `conn`, which must have nothing left to write (our
    /// `close_notify` written) and allow secret extraction. `partial` is the start of the
    /// record rustls was half way through, which it loses here.
    pub(crate) fn start(conn: ClientConnection, partial: Vec<u8>) -> Result<Self, TlsError> {
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
        let mut drain = Self {
            decrypter,
            seq,
            tls13,
            record: Vec::new(),
            handshake: Vec::new(),
            peer_closed: false,
        };
        // Nothing to decrypt yet: the partial record's end has not arrived.
        let mut none = Vec::new();
        drain.receive(&partial, &mut none)?;
        Ok(drain)
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
            ContentType::Handshake => {
                self.handshake.extend_from_slice(payload);
                self.handshake_messages()?;
            }
            _ => {
                return Err(corrupt(
                    "a record of an unexpected type after our close_notify",
                ));
            }
        }
        Ok(())
    }
}

impl Drain {
    /// Acts on every complete handshake message. Resumption tickets (TLS 1.3) and
    /// renegotiation requests (TLS 1.2) are of no use to a connection on its way out; a key
    /// update would need a secret the core does not hold.
    fn handshake_messages(&mut self) -> Result<(), TlsError> {
        while let Some(kind) = take_message(&mut self.handshake)? {
            match HandshakeType::from(kind) {
                HandshakeType::NewSessionTicket | HandshakeType::HelloRequest => {}
                HandshakeType::KeyUpdate => return Err(TlsError::KeyUpdateAfterCloseNotify),
                _ => {
                    return Err(corrupt(
                        "an unexpected handshake message after our close_notify",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Takes the first handshake message out of `buf` if it is complete (type, 24-bit length,
/// body), and returns its type.
fn take_message(buf: &mut Vec<u8>) -> Result<Option<u8>, TlsError> {
    let [kind, a, b, c, ..] = buf[..] else {
        return Ok(None);
    };
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if len > MAX_HANDSHAKE_MESSAGE {
        return Err(corrupt("a handshake message too long to be real"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.drain(..4 + len);
    Ok(Some(kind))
}

/// The longest handshake message the drain reassembles: a generous resumption ticket.
const MAX_HANDSHAKE_MESSAGE: usize = 64 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, len: usize) -> Vec<u8> {
        let mut bytes = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        bytes.resize(4 + len, 0xab);
        bytes
    }

    #[test]
    fn handshake_messages_are_taken_whole_however_records_cut_or_join_them() {
        let stream = [message(4, 300), message(24, 1), message(4, 0)].concat();
        for cut in 0..stream.len() {
            let mut buf = stream[..cut].to_vec();
            let mut kinds = Vec::new();
            while let Some(kind) = take_message(&mut buf).unwrap() {
                kinds.push(kind);
            }
            buf.extend_from_slice(&stream[cut..]);
            while let Some(kind) = take_message(&mut buf).unwrap() {
                kinds.push(kind);
            }
            assert_eq!(kinds, [4, 24, 4], "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_message_of_64_kib_is_taken_and_one_byte_longer_is_refused() {
        let mut at_limit = message(4, 64 * 1024);
        assert_eq!(take_message(&mut at_limit).unwrap(), Some(4));
        let mut past_limit = message(4, 64 * 1024 + 1);
        assert!(take_message(&mut past_limit).is_err());
    }

    #[test]
    fn an_absurd_length_is_an_error_not_a_wait() {
        let mut buf = vec![4, 0xff, 0xff, 0xff];
        assert!(take_message(&mut buf).is_err());
    }
}
