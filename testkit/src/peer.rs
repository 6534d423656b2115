//! An in-memory server: the other end of the wire, plaintext or TLS (rustls `ServerConnection`).

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::{AlertDescription, ContentType, ProtocolVersion, ServerConfig, ServerConnection};

use crate::keys::{decrypter, encrypter, take_record};

/// The server side of an in-memory connection.
///
/// Bytes the client writes arrive with [`Server::receive`]; what the server sends waits in
/// [`Server::take_outgoing`]. TLS starts at a wire offset chosen by [`Server::start_tls`], so
/// a test can check that plaintext before STARTTLS stayed plaintext.
pub struct Server {
    /// Bytes received in plaintext, before TLS started.
    pub plaintext: Vec<u8>,
    /// Application bytes received inside TLS, decrypted.
    pub decrypted: Vec<u8>,
    /// Every byte received on the wire.
    pub wire: Vec<u8>,
    /// The client half-closed (its FIN arrived).
    pub got_fin: bool,
    /// The client's TLS `close_notify` arrived.
    pub got_close_notify: bool,
    /// The first TLS error the server saw.
    pub tls_error: Option<rustls::Error>,
    /// Alerts the client sent (level, description) that the server read with its own keys,
    /// once it took them out of rustls (rustls reports an alert as
    /// [`tls_error`](Self::tls_error)).
    pub alerts: Vec<(u8, AlertDescription)>,
    tls: Option<ServerConnection>,
    /// The server's sending keys, once taken out of rustls to send what rustls will not.
    sealer: Option<Sealer>,
    tls_config: Option<Arc<ServerConfig>>,
    tls_from: Option<usize>,
    outgoing: Vec<u8>,
}

impl Server {
    /// A plaintext server.
    pub fn new() -> Self {
        Self {
            plaintext: Vec::new(),
            decrypted: Vec::new(),
            wire: Vec::new(),
            got_fin: false,
            got_close_notify: false,
            tls_error: None,
            alerts: Vec::new(),
            tls: None,
            sealer: None,
            tls_config: None,
            tls_from: None,
            outgoing: Vec::new(),
        }
    }

    /// Expects TLS from the next byte received (STARTTLS), or from the first (TLS from the
    /// start) when called before any byte arrived.
    pub fn start_tls(&mut self, config: Arc<ServerConfig>) {
        self.start_tls_at(self.wire.len(), config);
    }

    /// Expects TLS from wire offset `at`.
    pub fn start_tls_at(&mut self, at: usize, config: Arc<ServerConfig>) {
        self.tls_from = Some(at);
        self.tls_config = Some(config);
    }

    /// Returns true once the server's TLS handshake has finished.
    pub fn tls_established(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| !t.is_handshaking())
    }

    /// Takes bytes from the client.
    pub fn receive(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let offset = self.wire.len();
            match self.tls_from {
                Some(from) if offset >= from => {
                    self.wire.extend_from_slice(data);
                    self.receive_tls(data);
                    return;
                }
                Some(from) => {
                    let n = (from - offset).min(data.len());
                    self.wire.extend_from_slice(&data[..n]);
                    self.plaintext.extend_from_slice(&data[..n]);
                    data = &data[n..];
                }
                None => {
                    self.wire.extend_from_slice(data);
                    self.plaintext.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    fn receive_tls(&mut self, mut data: &[u8]) {
        if let Some(sealer) = self.sealer.as_mut() {
            sealer.open(data, &mut self.decrypted, &mut self.alerts);
            self.got_close_notify |= self
                .alerts
                .iter()
                .any(|(_, alert)| *alert == AlertDescription::CloseNotify);
            return;
        }
        if self.tls.is_none()
            && let Some(config) = self.tls_config.clone()
        {
            self.tls = ServerConnection::new(config).ok().map(|mut conn| {
                // Whatever the test sends must be sent, however much: no partial writes.
                conn.set_buffer_limit(None);
                conn
            });
        }
        let Some(conn) = self.tls.as_mut() else {
            return;
        };
        while !data.is_empty() && self.tls_error.is_none() {
            match conn.read_tls(&mut data) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            match conn.process_new_packets() {
                Ok(state) => {
                    let mut buf = vec![0; state.plaintext_bytes_to_read()];
                    let _ = conn.reader().read_exact(&mut buf);
                    self.decrypted.extend_from_slice(&buf);
                    if state.peer_has_closed() {
                        self.got_close_notify = true;
                    }
                }
                Err(e) => self.tls_error = Some(e),
            }
        }
        self.flush_tls();
    }

    /// Sends application bytes: encrypted once TLS has started, plaintext before.
    pub fn send(&mut self, data: &[u8]) {
        if let Some(sealer) = self.sealer.as_mut() {
            for chunk in data.chunks(16 * 1024) {
                sealer.seal(ContentType::ApplicationData, chunk, &mut self.outgoing);
            }
            return;
        }
        match self.tls.as_mut() {
            Some(conn) => {
                let _ = conn.writer().write_all(data);
                self.flush_tls();
            }
            None => self.outgoing.extend_from_slice(data),
        }
    }

    /// Sends bytes as they are, TLS or not: garbage, or an injected record.
    pub fn send_raw(&mut self, data: &[u8]) {
        self.outgoing.extend_from_slice(data);
    }

    /// Changes the server's sending keys (a TLS 1.3 KeyUpdate): what it sends next is
    /// encrypted with the new ones.
    pub fn update_keys(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            let _ = conn.refresh_traffic_keys();
            self.flush_tls();
        }
    }

    /// Sends the server's TLS `close_notify`.
    pub fn send_close_notify(&mut self) {
        if self.sealer.is_some() {
            self.send_alert(1, 0);
            return;
        }
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            self.flush_tls();
        }
    }

    /// Sends a TLS alert (`level`, `description`), encrypted as the server's records are.
    ///
    /// rustls will not send an alert other than `close_notify` on request, nor anything once
    /// the client's `close_notify` is in, which is exactly when a hostile server might. So the
    /// server takes its sending keys out of rustls (its config must set
    /// `enable_secret_extraction`) and seals this record, and every later
    /// [`Server::send`], itself. Without those keys nothing is sent.
    pub fn send_alert(&mut self, level: u8, description: u8) {
        self.send_sealed(ContentType::Alert, &[level, description]);
    }

    /// Seals `payload` as one record of `content_type` with the server's own keys, as
    /// [`Server::send_alert`] does: a handshake message rustls would not send, say.
    pub fn send_sealed(&mut self, content_type: ContentType, payload: &[u8]) {
        if self.sealer.is_none() {
            self.sealer = self.tls.take().and_then(Sealer::take_keys);
        }
        if let Some(sealer) = self.sealer.as_mut() {
            sealer.seal(content_type, payload, &mut self.outgoing);
        }
    }

    fn flush_tls(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                match conn.write_tls(&mut self.outgoing) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }

    /// The alert the client sent: as rustls reported it, or as the server read it with
    /// its own keys.
    pub fn alert_received(&self) -> Option<AlertDescription> {
        match &self.tls_error {
            Some(rustls::Error::AlertReceived(alert)) => Some(*alert),
            _ => self.alerts.last().map(|(_, alert)| *alert),
        }
    }

    /// Takes what the server has sent and the client has not received yet.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }

    /// Returns true while the server has bytes for the client.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }
}

/// A record writer with the server's sending keys, and a reader with its receiving keys.
struct Sealer {
    encrypter: Box<dyn MessageEncrypter>,
    seq: u64,
    decrypter: Box<dyn MessageDecrypter>,
    rx_seq: u64,
    /// A record that has only begun to arrive.
    incoming: Vec<u8>,
}

impl Sealer {
    fn take_keys(conn: ServerConnection) -> Option<Self> {
        let suite = conn.negotiated_cipher_suite()?;
        let secrets = conn.dangerous_extract_secrets().ok()?;
        let (rx_seq, rx) = secrets.rx;
        let (seq, secrets) = secrets.tx;
        let encrypter = encrypter(suite, secrets)?;
        let decrypter = decrypter(suite, rx)?;
        Some(Self {
            encrypter,
            seq,
            decrypter,
            rx_seq,
            incoming: Vec::new(),
        })
    }

    /// Opens the client's records: data goes to `decrypted`, alerts to `alerts`.
    fn open(
        &mut self,
        data: &[u8],
        decrypted: &mut Vec<u8>,
        alerts: &mut Vec<(u8, AlertDescription)>,
    ) {
        self.incoming.extend_from_slice(data);
        while let Some((typ, version, mut payload)) = take_record(&mut self.incoming) {
            let message = InboundOpaqueMessage::new(typ, version, &mut payload);
            let Ok(plain) = self.decrypter.decrypt(message, self.rx_seq) else {
                return;
            };
            self.rx_seq += 1;
            match (plain.typ, plain.payload) {
                (ContentType::ApplicationData, payload) => decrypted.extend_from_slice(payload),
                (ContentType::Alert, [level, description]) => {
                    alerts.push((*level, AlertDescription::from(*description)));
                }
                _ => {}
            }
        }
    }

    fn seal(&mut self, typ: ContentType, payload: &[u8], out: &mut Vec<u8>) {
        let plain = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        if let Ok(record) = self.encrypter.encrypt(plain, self.seq) {
            out.extend_from_slice(&record.encode());
            self.seq += 1;
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}
