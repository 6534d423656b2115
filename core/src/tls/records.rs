//! The record layer after the handshake: the core encrypts and decrypts the session's
//! records itself, with the very record encrypter and decrypter rustls would have used, and
//! rustls's kernel connection (`rustls::kernel`) keeps what only it can: the key schedule for
//! key updates and the store for resumption tickets.
//!
//! Why not leave the records to rustls. Its buffered connection encrypts each record into a
//! buffer of its own, which a sans-IO core then has to copy into the bytes it hands out (its
//! unbuffered connection copies the same way, into the caller's buffer). Sealed here, a
//! record's ciphertext is the very allocation that goes to the socket. And rustls 0.23 counts
//! our `close_notify` as a fatal alert already sent: given a record it must reject after it,
//! it asserts it never sends a second alert, a `debug_assert!` that panics in every debug
//! build (rustls#959), which a hostile server or a flipped bit can always trigger. Here a
//! record after our `close_notify` meets the same checks as any other and gets a typed error.

use bytes::Bytes;
use rustls::client::ClientConnectionData;
use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::kernel::KernelConnection;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, ExtractedSecrets, HandshakeType,
    ProtocolVersion, SupportedCipherSuite,
};

use super::flood::FloodGuard;
use super::framing::{HEADER, validate};
use super::{Failure, alert_for, classify};
use crate::TlsError;

/// The session's records, both ways, once the handshake is over.
pub(crate) struct Records {
    suite: SupportedCipherSuite,
    kernel: KernelConnection<ClientConnectionData>,
    decrypter: Box<dyn MessageDecrypter>,
    encrypter: Box<dyn MessageEncrypter>,
    /// Sequence number of the next record received.
    rx_seq: u64,
    /// Sequence number of the next record sent.
    tx_seq: u64,
    /// Records one key may seal before it must be changed: the suite's confidentiality limit.
    tx_limit: u64,
    /// The record being assembled: header, then payload.
    record: Vec<u8>,
    /// Handshake messages after the handshake, reassembled across records.
    handshake: Vec<u8>,
    /// Records the session itself must send (our answer to a key update), sealed.
    control: Vec<u8>,
    /// The peer's `close_notify` arrived: nothing after it counts.
    peer_closed: bool,
    /// Our `close_notify` (or a fatal alert) is sealed: nothing may be sent after it.
    close_notify_sent: bool,
    /// We answered a key update request and have sent no data since: further requests
    /// get no second answer (RFC 8446 section 4.6.3).
    answered_while_silent: bool,
    /// What the peer repeated that costs it nothing.
    floods: FloodGuard,
}

impl Records {
    /// Takes over from a finished handshake, with its keys and its kernel connection.
    pub(crate) fn start(
        secrets: ExtractedSecrets,
        kernel: KernelConnection<ClientConnectionData>,
    ) -> Result<Self, TlsError> {
        let suite = kernel.negotiated_cipher_suite();
        let (rx_seq, rx) = secrets.rx;
        let (tx_seq, tx) = secrets.tx;
        let tx_limit = match suite {
            SupportedCipherSuite::Tls13(s) => s.common.confidentiality_limit,
            SupportedCipherSuite::Tls12(s) => s.common.confidentiality_limit,
        }
        .min(SEQ_SOFT_LIMIT);
        Ok(Self {
            suite,
            kernel,
            decrypter: decrypter(suite, rx)?,
            encrypter: encrypter(suite, tx, tx_seq)?,
            rx_seq,
            tx_seq,
            tx_limit,
            record: Vec::new(),
            handshake: Vec::new(),
            control: Vec::new(),
            peer_closed: false,
            close_notify_sent: false,
            answered_while_silent: false,
            floods: FloodGuard::default(),
        })
    }

    fn tls13(&self) -> bool {
        matches!(self.suite, SupportedCipherSuite::Tls13(_))
    }

    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    pub(crate) fn close_notify_sent(&self) -> bool {
        self.close_notify_sent
    }

    /// Returns true while sealed records of the session's own wait in [`Self::take_control`].
    pub(crate) fn has_control(&self) -> bool {
        !self.control.is_empty()
    }

    /// Appends the session's own sealed records to `out`.
    pub(crate) fn take_control(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.control);
    }

    /// Seals `chunks` (at most one record's worth) as one application data record, after
    /// any record of the session's own that must precede it.
    pub(crate) fn seal(&mut self, chunks: &[Bytes]) -> Result<Bytes, Failure> {
        if self.close_notify_sent {
            return Err(TlsError::Other {
                reason: "encrypting after our close_notify".into(),
            }
            .into());
        }
        self.refresh_if_worn()?;
        let sealed = match chunks {
            [one] => self.seal_one(ContentType::ApplicationData, OutboundChunks::Single(one))?,
            _ => {
                let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                self.seal_one(ContentType::ApplicationData, OutboundChunks::new(&slices))?
            }
        };
        self.answered_while_silent = false;
        if self.control.is_empty() {
            return Ok(Bytes::from(sealed));
        }
        // A key update made just now goes first: the record after it is under the new key.
        let mut records = std::mem::take(&mut self.control);
        records.extend_from_slice(&sealed);
        Ok(Bytes::from(records))
    }

    /// Seals our `close_notify`; nothing may be sealed after it.
    pub(crate) fn seal_close_notify(&mut self) -> Result<Vec<u8>, TlsError> {
        self.seal_alert(1, AlertDescription::CloseNotify)
    }

    /// Seals the alert a failure calls for (fatal, but for a `close_notify`), unless our
    /// `close_notify` already went (then nothing may follow it: rustls#959 is rustls
    /// asserting the same); nothing may be sealed after it.
    pub(crate) fn seal_fatal_alert(&mut self, alert: AlertDescription) -> Option<Vec<u8>> {
        let level = match alert {
            AlertDescription::CloseNotify => 1,
            _ => 2,
        };
        match self.close_notify_sent {
            true => None,
            false => self.seal_alert(level, alert).ok(),
        }
    }

    fn seal_alert(&mut self, level: u8, alert: AlertDescription) -> Result<Vec<u8>, TlsError> {
        let payload = [level, u8::from(alert)];
        let record = self.seal_one(ContentType::Alert, OutboundChunks::Single(&payload))?;
        self.close_notify_sent = true;
        Ok(record)
    }

    fn seal_one(
        &mut self,
        typ: ContentType,
        payload: OutboundChunks<'_>,
    ) -> Result<Vec<u8>, TlsError> {
        let message = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload,
        };
        let sealed = self
            .encrypter
            .encrypt(message, self.tx_seq)
            .map_err(classify)?;
        self.tx_seq += 1;
        Ok(sealed.encode())
    }

    /// Changes the sending key before it has sealed as many records as its cipher may: as
    /// rustls does, the KeyUpdate takes the last sequence number the key allows (unless the
    /// key is unused). Under TLS 1.2, which has no key update, the session ends there, with
    /// our `close_notify` in that last sequence number, as rustls ends it.
    fn refresh_if_worn(&mut self) -> Result<(), Failure> {
        if self.tx_seq == 0 || self.tx_seq.saturating_add(1) < self.tx_limit {
            return Ok(());
        }
        if !self.tls13() {
            return Err(Failure::new(
                AlertDescription::CloseNotify,
                TlsError::Other {
                    reason: "the cipher suite's confidentiality limit is reached".into(),
                },
            ));
        }
        Ok(self.send_key_update()?)
    }

    /// Seals a KeyUpdate (not asking the peer for one) with the current key, then moves to
    /// the next one.
    fn send_key_update(&mut self) -> Result<(), TlsError> {
        let key_update = [u8::from(HandshakeType::KeyUpdate), 0, 0, 1, 0];
        let record = self.seal_one(ContentType::Handshake, OutboundChunks::Single(&key_update))?;
        self.control.extend_from_slice(&record);
        let (seq, tx) = self.kernel.update_tx_secret().map_err(classify)?;
        self.encrypter = encrypter(self.suite, tx, 0)?;
        self.tx_seq = seq;
        Ok(())
    }

    /// Takes bytes from the socket; appends the application data they carry to
    /// `plaintext` (also when a later record fails).
    pub(crate) fn receive(
        &mut self,
        mut data: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<(), Failure> {
        while !data.is_empty() && !self.peer_closed {
            let wanted = self.wanted();
            let n = wanted.min(data.len());
            self.record.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.record.len() <= HEADER {
                validate(&self.record)
                    .map_err(|reason| fatal(AlertDescription::DecodeError, reason))?;
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
    fn open_record(&mut self, plaintext: &mut Vec<u8>) -> Result<(), Failure> {
        let outer = ContentType::from(self.record[0]);
        let version = ProtocolVersion::from(u16::from_be_bytes([self.record[1], self.record[2]]));
        // Never encrypted: decoded as it is, then out of place.
        if outer == ContentType::ChangeCipherSpec {
            return Err(match self.record[HEADER..] {
                [1] => unexpected("a change_cipher_spec after the handshake"),
                _ => fatal(
                    AlertDescription::DecodeError,
                    "a malformed change_cipher_spec",
                ),
            });
        }
        if self.tls13() && outer != ContentType::ApplicationData {
            // rustls tries to decrypt it, which fails: the header is authenticated.
            return Err(fatal(
                AlertDescription::BadRecordMac,
                "an unencrypted record after the handshake",
            ));
        }
        let message = InboundOpaqueMessage::new(outer, version, &mut self.record[HEADER..]);
        let opened = self
            .decrypter
            .decrypt(message, self.rx_seq)
            .map_err(misbehaved)?;
        self.rx_seq += 1;
        let payload = opened.payload;
        if opened.typ != ContentType::Handshake && !self.handshake.is_empty() {
            // rustls ends here without an alert.
            return Err(corrupt("a record inside a handshake message").into());
        }
        self.floods.record(payload.is_empty())?;
        match opened.typ {
            ContentType::ApplicationData => {
                if !payload.is_empty() {
                    self.floods.application_data();
                }
                plaintext.extend_from_slice(payload);
            }
            ContentType::Alert => {
                let alert = <[u8; 2]>::try_from(payload).ok();
                self.alert(alert)?
            }
            ContentType::Handshake => {
                self.handshake.extend_from_slice(payload);
                self.handshake_messages()?;
            }
            // A content type TLS does not have: rustls cannot decode it as any message. (A
            // change_cipher_spec never gets here: TLS 1.2 sends it as it is, which is
            // refused above, and TLS 1.3's decrypter refuses one inside a record.)
            _ => {
                return Err(fatal(
                    AlertDescription::DecodeError,
                    "a record of an unknown content type after the handshake",
                ));
            }
        }
        Ok(())
    }

    /// Acts on an alert, as rustls does: `close_notify` ends the peer's stream; a warning
    /// is passed over under TLS 1.2 (up to the flood limit), and under TLS 1.3 only
    /// `user_canceled` is (every other alert is fatal there, whatever level it claims).
    fn alert(&mut self, payload: Option<[u8; 2]>) -> Result<(), Failure> {
        let Some([level, description]) = payload else {
            return Err(fatal(AlertDescription::DecodeError, "a malformed alert"));
        };
        let description = AlertDescription::from(description);
        let received = || TlsError::AlertReceived {
            alert: format!("{description:?}"),
        };
        match level {
            1 | 2 if description == AlertDescription::CloseNotify => self.peer_closed = true,
            1 => {
                self.floods.warning_alert()?;
                if self.tls13() && description != AlertDescription::UserCanceled {
                    return Err(Failure::new(AlertDescription::DecodeError, received()));
                }
            }
            // A fatal alert ends the session at both ends: nothing is sent after it.
            2 => return Err(received().into()),
            // Neither warning nor fatal.
            _ => {
                return Err(fatal(
                    AlertDescription::IllegalParameter,
                    "an alert of unknown level",
                ));
            }
        }
        Ok(())
    }

    /// Acts on every complete handshake message: a resumption ticket (TLS 1.3) goes to the
    /// session store, a key update (TLS 1.3) changes the receiving key (and, when the peer
    /// asks, ours), a renegotiation request (TLS 1.2 only) is declined by ignoring it, once.
    fn handshake_messages(&mut self) -> Result<(), Failure> {
        while let Some((kind, body)) = take_message(&mut self.handshake)? {
            match HandshakeType::from(kind) {
                // Also after our close_notify: the next connection can resume with it.
                HandshakeType::NewSessionTicket if self.tls13() => self
                    .kernel
                    .handle_new_session_ticket(&body)
                    .map_err(misbehaved)?,
                // rustls takes a HelloRequest with a body for one too.
                HandshakeType::HelloRequest if !self.tls13() => {
                    self.floods.renegotiation_request()?;
                    self.decline_renegotiation()?;
                }
                // What follows a key update in its record would be under the old key.
                HandshakeType::KeyUpdate if self.tls13() && self.handshake.is_empty() => {
                    self.key_update(&body)?
                }
                _ => {
                    return Err(unexpected(
                        "an unexpected handshake message after the handshake (or a key \
                         update not at the end of its record)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Says no to a renegotiation with a `no_renegotiation` warning, as RFC 5246 section
    /// 7.2.2 and rustls do (nothing once our `close_notify` went).
    fn decline_renegotiation(&mut self) -> Result<(), TlsError> {
        if !self.close_notify_sent {
            let payload = [1, u8::from(AlertDescription::NoRenegotiation)];
            let record = self.seal_one(ContentType::Alert, OutboundChunks::Single(&payload))?;
            self.control.extend_from_slice(&record);
        }
        Ok(())
    }

    /// The peer changed its sending key, and may ask us to change ours. One answer covers
    /// every request until we send data again, and after our `close_notify` we send nothing
    /// more, so owe none (RFC 8446 section 4.6.3 asks for one before the next application
    /// data record). A key update must end its record: what follows is under the new key.
    fn key_update(&mut self, body: &[u8]) -> Result<(), Failure> {
        let update_requested = update_requested(body)?;
        self.floods.key_update()?;
        let (seq, rx) = self.kernel.update_rx_secret().map_err(misbehaved)?;
        self.decrypter = decrypter(self.suite, rx)?;
        self.rx_seq = seq;
        if update_requested && !self.close_notify_sent && !self.answered_while_silent {
            self.answered_while_silent = true;
            self.send_key_update()?;
        }
        Ok(())
    }
}

/// Whether a KeyUpdate's body asks for ours in return.
fn update_requested(body: &[u8]) -> Result<bool, Failure> {
    match body {
        [0] => Ok(false),
        [1] => Ok(true),
        // A request of a kind TLS 1.3 does not define, as rustls answers it.
        [_] => Err(fatal(
            AlertDescription::IllegalParameter,
            "a key update of an unknown kind",
        )),
        _ => Err(fatal(
            AlertDescription::DecodeError,
            "a malformed key update",
        )),
    }
}

/// The record decrypter for `suite` with the receiving `secrets`.
fn decrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
) -> Result<Box<dyn MessageDecrypter>, TlsError> {
    let (key, iv, gcm) = key_and_iv(secrets)?;
    Ok(match suite {
        SupportedCipherSuite::Tls13(suite) => suite.aead_alg.decrypter(key, iv),
        SupportedCipherSuite::Tls12(suite) => {
            // TLS 1.2 GCM nonces are a 4-byte salt plus an explicit part in each record;
            // rustls hands out salt and first explicit part together.
            let fixed = if gcm { &iv.as_ref()[..4] } else { iv.as_ref() };
            suite.aead_alg.decrypter(key, fixed)
        }
    })
}

/// The record encrypter for `suite` with the sending `secrets`, whose next record is
/// number `seq`.
fn encrypter(
    suite: SupportedCipherSuite,
    secrets: ConnectionTrafficSecrets,
    seq: u64,
) -> Result<Box<dyn MessageEncrypter>, TlsError> {
    let (key, iv, gcm) = key_and_iv(secrets)?;
    let mut encrypter = match suite {
        SupportedCipherSuite::Tls13(suite) => suite.aead_alg.encrypter(key, iv),
        SupportedCipherSuite::Tls12(suite) => {
            let (salt, explicit) = if gcm {
                iv.as_ref().split_at(4)
            } else {
                (iv.as_ref(), &[][..])
            };
            suite.aead_alg.encrypter(key, salt, explicit)
        }
    };
    if gcm && seq > 0 {
        // aws-lc's GCM sealing key guards against nonce reuse by requiring the nonces'
        // counter to grow, and learns the nonce mask from the first record it seals, taking
        // that for record 0. A key that comes out of rustls after sealing records of its own
        // (our TLS 1.2 Finished is record 0) would refuse every record but the first. So
        // record 0 is sealed once more, empty, for the key to learn its mask, and thrown
        // away: it never leaves this function. (ring's key checks nothing of the kind.)
        let empty = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(&[]),
        };
        let _ = encrypter.encrypt(empty, 0);
    }
    Ok(encrypter)
}

fn key_and_iv(
    secrets: ConnectionTrafficSecrets,
) -> Result<
    (
        rustls::crypto::cipher::AeadKey,
        rustls::crypto::cipher::Iv,
        bool,
    ),
    TlsError,
> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv } => Ok((key, iv, true)),
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv, false)),
        _ => Err(TlsError::Other {
            reason: "a cipher the core cannot seal records with".into(),
        }),
    }
}

/// Takes the first handshake message out of `buf` if it is complete (type, 24-bit length,
/// body), and returns its type and body.
fn take_message(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, Failure> {
    let [kind, a, b, c, ..] = buf[..] else {
        return Ok(None);
    };
    let len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    if len > MAX_HANDSHAKE_MESSAGE {
        // rustls ends here without an alert.
        return Err(corrupt("a handshake message too long to be real").into());
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let body = buf[4..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some((kind, body)))
}

/// rustls's own cap on records per key, whatever the suite allows.
const SEQ_SOFT_LIMIT: u64 = 0xffff_ffff_ffff_0000;

/// The longest handshake message reassembled after the handshake, rustls's limit: a
/// generous ticket.
const MAX_HANDSHAKE_MESSAGE: usize = 0xffff;

/// What rustls says of a record or message the peer should not have sent, with the alert
/// rustls would send for it.
fn misbehaved(error: rustls::Error) -> Failure {
    Failure {
        alert: alert_for(&error),
        error: corrupt(&error.to_string()),
    }
}

/// A record or message the peer should not have sent, answered with `alert`.
fn fatal(alert: AlertDescription, reason: &str) -> Failure {
    Failure::new(alert, corrupt(reason))
}

/// A message out of place: `unexpected_message`.
fn unexpected(reason: &str) -> Failure {
    fatal(AlertDescription::UnexpectedMessage, reason)
}

fn corrupt(reason: &str) -> TlsError {
    TlsError::CorruptMessage {
        reason: reason.into(),
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
            while let Some((kind, _)) = take_message(&mut buf).unwrap() {
                kinds.push(kind);
            }
            buf.extend_from_slice(&stream[cut..]);
            while let Some((kind, _)) = take_message(&mut buf).unwrap() {
                kinds.push(kind);
            }
            assert_eq!(kinds, [4, 24, 4], "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn a_message_of_64_kib_less_one_is_taken_and_one_byte_longer_is_refused() {
        let mut at_limit = message(4, 0xffff);
        assert_eq!(take_message(&mut at_limit).unwrap().map(|m| m.0), Some(4));
        let mut past_limit = message(4, 0xffff + 1);
        assert!(take_message(&mut past_limit).is_err());
    }

    #[test]
    fn a_key_update_asks_for_ours_with_1_and_not_with_0() {
        assert!(!update_requested(&[0]).unwrap());
        assert!(update_requested(&[1]).unwrap());
        for body in [&[][..], &[2], &[0, 0]] {
            assert!(update_requested(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn an_absurd_length_is_an_error_not_a_wait() {
        let mut buf = vec![4, 0xff, 0xff, 0xff];
        assert!(take_message(&mut buf).is_err());
    }
}
