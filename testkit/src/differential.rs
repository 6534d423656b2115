//! The `tls_records` fuzz target: the same correctly encrypted records, fed to the core and
//! to rustls's own buffered client, which hold the very same keys.
//!
//! Bytes that do not decrypt never reach what the record layer does after decryption, so
//! the other targets cannot test it. Here every random choice of the handshake is fixed (a
//! counter for rustls's random source, one X25519 key on both sides, an Ed25519 server key, whose
//! signatures have no randomness): two handshakes with the same server are byte for byte the
//! same, and so are their keys. One is the core's, one rustls's `ClientConnection`'s. The
//! fuzzer's bytes say which plaintext records the server then seals with those keys (any
//! content type and length, handshake messages whole or split, alerts, key updates, garbage),
//! where the stream is cut into reads, and when the application sends (so that key update
//! answers and warnings meet the client's own records). The two clients must deliver the
//! same bytes, end the same way (still open, closed by `close_notify`, failed), send the
//! same alerts back, and get the same bytes to the server, unless the difference is one of
//! [`ALLOWED`].
//!
//! The core's client runs under the [`Monitor`], as in every other target.

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use rustls::client::Resumption;
use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks, OutboundPlainMessage,
};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::kernel::KernelConnection;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, UnbufferedStatus};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, ContentType, HandshakeType, NamedGroup,
    ProtocolVersion, ServerConfig, SupportedCipherSuite,
};
use tcpclient_core::{
    AlertSent, Client, Config, Destination, Event, Input, OnPeerEof, Output, Request, TlsConfig,
    Unacknowledged,
};

use crate::keys::{decrypter, encrypter, take_record};
use crate::{Monitor, Pki, server_name};

/// What both clients did with one input: the bytes they delivered and how the session stood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Application bytes both delivered.
    pub delivered: usize,
    /// How the session ended for both (or that it did not).
    pub ending: Ending,
    /// A deliberate difference that was let through, by its name in [`ALLOWED`].
    pub allowed: Option<&'static str>,
}

/// How a session stood once every byte was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Still open.
    Open,
    /// The server's `close_notify` ended its stream.
    PeerClosed,
    /// The session failed, answering with this fatal alert (if any).
    Failed(Option<AlertDescription>),
}

/// The two clients disagreed, or the core broke an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference(pub String);

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The deliberate differences, each with the reason it is kept.
pub const ALLOWED: [(&str, &str); 2] = [
    (
        "key updates without data",
        "the core counts every key update towards its flood limit until application data \
         with bytes in it comes; rustls counts only the ones that ask for an answer, so \
         unrequested ones, or requests with empty records between, run forever there: \
         tighter on purpose",
    ),
    (
        "a message refused unparsed",
        "a handshake message of a type that may not come after the handshake is refused with \
         unexpected_message as it is; rustls first decodes its body by its type, and answers \
         decode_error where that fails. Both are the alerts RFC 8446 section 6.2 names; the \
         core keeps no parser for messages it refuses anyway",
    ),
];

/// Runs one input through both clients and compares them.
pub fn tls_records(data: &[u8]) -> Result<Comparison, Difference> {
    let (&choice, ops) = data.split_first().unwrap_or((&0, &[]));
    let suite = SUITES[usize::from(choice) % SUITES.len()];
    let (mut reference, mut reference_end) = ReferenceClient::start(suite)?;
    let (mut core, mut core_end) = CoreSession::start(suite)?;
    if reference_end.probe() != core_end.probe() {
        return Err(Difference(
            "the two handshakes made different keys: some randomness is not fixed".into(),
        ));
    }
    let Script {
        stream,
        cuts,
        sends,
    } = reference_end.script(ops);
    let mut stops: Vec<usize> = cuts
        .iter()
        .chain(sends.iter().map(|(at, _)| at))
        .copied()
        .collect();
    stops.push(stream.len());
    stops.sort_unstable();
    let mut start = 0;
    for end in stops {
        let end = end.clamp(start, stream.len());
        reference.receive(&stream[start..end], &mut reference_end);
        core.receive(&stream[start..end], &mut core_end);
        start = end;
        for (_, len) in sends.iter().filter(|(at, _)| *at == end) {
            reference.send(&pattern(*len), &mut reference_end);
            core.send(&pattern(*len), &mut core_end);
        }
    }
    core.finish(&mut core_end);
    reference.sent = reference_end.received;
    core.sent = core_end.received;
    compare(&reference, &core)
}

/// What the server sends, where reads are cut, and where (after how many of the server's
/// bytes) the application sends how many bytes.
struct Script {
    stream: Vec<u8>,
    cuts: Vec<usize>,
    sends: Vec<(usize, usize)>,
}

/// The cipher suites a run picks from: both versions, both AEAD families.
const SUITES: [SupportedCipherSuite; 4] = [
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The two accounts side by side.
fn compare(reference: &ReferenceClient, core: &CoreSession) -> Result<Comparison, Difference> {
    if let Some(violation) = core.violations.first() {
        return Err(Difference(format!("invariant violated: {violation}")));
    }
    let same = reference.delivered == core.delivered
        && reference.ending == core.ending
        && reference.alerts == core.alerts
        && reference.sent == core.sent;
    let allowed = match same {
        true => None,
        false => Some(allowed(reference, core).ok_or_else(|| {
            Difference(format!(
                "rustls delivered {} bytes, got {} to the server, sent the alerts {:?} and \
                 {:?} ({}); the core delivered {} bytes, got {} to the server, sent {:?} and \
                 {:?} ({})",
                reference.delivered.len(),
                reference.sent.len(),
                reference.alerts,
                reference.ending,
                reference.error.as_deref().unwrap_or("no error"),
                core.delivered.len(),
                core.sent.len(),
                core.alerts,
                core.ending,
                core.error.as_deref().unwrap_or("no error"),
            ))
        })?),
    };
    Ok(Comparison {
        delivered: core.delivered.len(),
        ending: core.ending.clone(),
        allowed,
    })
}

/// Which deliberate difference this is, if any.
fn allowed(reference: &ReferenceClient, core: &CoreSession) -> Option<&'static str> {
    let core_error = core.error.as_deref().unwrap_or("");
    let same_bytes = reference.delivered == core.delivered;
    // The core ended on a flood of key updates, having delivered what rustls delivered up
    // to there, and rustls went on (to whatever came next).
    let key_update_flood = core_error.contains("key updates")
        && reference.delivered.starts_with(&core.delivered)
        && reference.sent.starts_with(&core.sent)
        && reference.alerts.starts_with(&core.alerts);
    // A handshake message that may not come after the handshake, malformed for its type.
    let refused_unparsed = same_bytes
        && reference.sent == core.sent
        && core_error.contains("an unexpected handshake message after the handshake")
        && core.ending == Ending::Failed(Some(AlertDescription::UnexpectedMessage))
        && reference.ending == Ending::Failed(Some(AlertDescription::DecodeError))
        && reference
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("received corrupt message"));
    match (key_update_flood, refused_unparsed) {
        (true, _) => Some(ALLOWED[0].0),
        (_, true) => Some(ALLOWED[1].0),
        _ => None,
    }
}

// ---- fixed randomness ----

thread_local! {
    /// The counter behind every "random" byte of a handshake, restarted before each one.
    static DRAWN: Cell<u64> = const { Cell::new(0) };
}

fn reset_randomness() {
    DRAWN.with(|drawn| drawn.set(0));
}

/// rustls's random source, made a counter.
#[derive(Debug)]
struct Counter;

impl SecureRandom for Counter {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        for byte in buf {
            *byte = DRAWN.with(|drawn| {
                let n = drawn.get();
                drawn.set(n + 1);
                (n % 251) as u8
            });
        }
        Ok(())
    }
}

/// X25519 with one fixed key, on both sides.
#[derive(Debug)]
struct FixedX25519;

impl SupportedKxGroup for FixedX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let private = PrivateKey::from_private_key(&X25519, &[7; 32])
            .map_err(|_| rustls::Error::General("fixed X25519 key".into()))?;
        let public = private
            .compute_public_key()
            .map_err(|_| rustls::Error::General("fixed X25519 public key".into()))?
            .as_ref()
            .to_vec();
        Ok(Box::new(FixedShare { private, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct FixedShare {
    private: PrivateKey,
    public: Vec<u8>,
}

impl ActiveKeyExchange for FixedShare {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        agreement::agree(
            &self.private,
            UnparsedPublicKey::new(&X25519, peer),
            rustls::Error::General("X25519 agreement".into()),
            |secret| Ok(SharedSecret::from(secret)),
        )
    }

    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

static FIXED_X25519: FixedX25519 = FixedX25519;
static COUNTER: Counter = Counter;

/// The core's default provider with `suite` alone, and nothing random left.
fn provider(suite: SupportedCipherSuite) -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![suite],
        kx_groups: vec![&FIXED_X25519],
        secure_random: &COUNTER,
        ..(*tcpclient_core::tls::default_provider()).clone()
    })
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::new)
}

fn client_config(suite: SupportedCipherSuite) -> Result<ClientConfig, Difference> {
    let mut config = ClientConfig::builder_with_provider(provider(suite))
        .with_safe_default_protocol_versions()
        .map_err(|e| Difference(format!("client config: {e}")))?
        .with_root_certificates(pki().roots())
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(config)
}

fn server_config(suite: SupportedCipherSuite) -> Arc<ServerConfig> {
    let mut config = (*pki().server_config_with_provider(provider(suite))).clone();
    config.enable_secret_extraction = true;
    Arc::new(config)
}

// ---- the server ----

/// rustls's unbuffered server through its handshake: the kind that can become a kernel
/// connection, for key updates both ways.
struct Handshaking {
    conn: UnbufferedServerConnection,
    incoming: Vec<u8>,
}

impl Handshaking {
    fn new(suite: SupportedCipherSuite) -> Result<Self, Difference> {
        let conn = UnbufferedServerConnection::new(server_config(suite))
            .map_err(|e| Difference(format!("server: {e}")))?;
        Ok(Self {
            conn,
            incoming: Vec::new(),
        })
    }

    /// Takes the client's bytes; appends the server's answer to `out`.
    fn receive(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Difference> {
        self.incoming.extend_from_slice(data);
        for _ in 0..64 {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let again = match state.map_err(|e| Difference(format!("server: {e}")))? {
                ConnectionState::EncodeTlsData(mut encode) => {
                    let start = out.len();
                    out.resize(start + 16 * 1024, 0);
                    let written = encode
                        .encode(&mut out[start..])
                        .map_err(|e: EncodeError| Difference(format!("server: {e}")))?;
                    out.truncate(start + written);
                    true
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    true
                }
                _ => false,
            };
            self.incoming.drain(..discard);
            if !again {
                break;
            }
        }
        Ok(())
    }

    /// The server after its handshake, ready to seal and to read.
    fn finish(self, suite: SupportedCipherSuite) -> Result<ServerEnd, Difference> {
        if self.conn.is_handshaking() {
            return Err(Difference("the handshake did not finish".into()));
        }
        let (secrets, kernel) = self
            .conn
            .dangerous_into_kernel_connection()
            .map_err(|e| Difference(format!("server keys: {e}")))?;
        let (tx_seq, tx) = secrets.tx;
        let (rx_seq, rx) = secrets.rx;
        let missing = || Difference("a suite without keys".into());
        Ok(ServerEnd {
            encrypter: encrypter(suite, tx).ok_or_else(missing)?,
            decrypter: decrypter(suite, rx).ok_or_else(missing)?,
            kernel,
            suite,
            tx_seq,
            rx_seq,
            incoming: Vec::new(),
            received: Vec::new(),
        })
    }
}

/// The server after the handshake: it seals the fuzzer's records, and reads what the
/// client sends back (its alert, its key updates).
struct ServerEnd {
    kernel: KernelConnection<ServerConnectionData>,
    suite: SupportedCipherSuite,
    encrypter: Box<dyn MessageEncrypter>,
    tx_seq: u64,
    decrypter: Box<dyn MessageDecrypter>,
    rx_seq: u64,
    incoming: Vec<u8>,
    /// The application data the client sent, as the server read it.
    received: Vec<u8>,
}

impl ServerEnd {
    /// A record sealed with the next sequence number and not sent: equal for equal keys.
    fn probe(&mut self) -> Vec<u8> {
        let message = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(b"probe"),
        };
        self.encrypter
            .encrypt(message, self.tx_seq)
            .map(|sealed| sealed.encode())
            .unwrap_or_default()
    }

    /// Reads what the client sent; returns the alerts among it (level, description). A
    /// record the server cannot open counts as an alert of level 0, which no alert has.
    fn open(&mut self, data: &[u8]) -> Vec<(u8, AlertDescription)> {
        self.incoming.extend_from_slice(data);
        let mut alerts = Vec::new();
        while let Some((typ, version, mut payload)) = take_record(&mut self.incoming) {
            let message = InboundOpaqueMessage::new(typ, version, &mut payload);
            let Ok(plain) = self.decrypter.decrypt(message, self.rx_seq) else {
                alerts.push((0, AlertDescription::Unknown(255)));
                continue;
            };
            self.rx_seq += 1;
            match (plain.typ, plain.payload) {
                (ContentType::ApplicationData, data) => self.received.extend_from_slice(data),
                (ContentType::Alert, [level, description]) => {
                    alerts.push((*level, AlertDescription::from(*description)));
                }
                (ContentType::Handshake, [24, ..]) => {
                    if let Ok((seq, secrets)) = self.kernel.update_rx_secret()
                        && let Some(decrypter) = decrypter(self.suite, secrets)
                    {
                        self.decrypter = decrypter;
                        self.rx_seq = seq;
                    }
                }
                _ => {}
            }
        }
        alerts
    }

    /// Turns the fuzzer's ops into the server's ciphertext, and the offsets where reads are
    /// cut.
    fn script(&mut self, mut ops: &[u8]) -> Script {
        let mut out = Vec::new();
        let mut cuts = Vec::new();
        let mut sends = Vec::new();
        let take = |n: usize, ops: &mut &[u8]| -> Vec<u8> {
            let n = n.min(ops.len());
            let (head, tail) = ops.split_at(n);
            *ops = tail;
            head.to_vec()
        };
        for _ in 0..MAX_OPS {
            let Some((&op, rest)) = ops.split_first() else {
                break;
            };
            ops = rest;
            let arg = take(1, &mut ops).first().copied().unwrap_or(0);
            match op % 12 {
                // Application data of `arg` bytes (0 is an empty record).
                0 => self.seal(
                    ContentType::ApplicationData,
                    &pattern(usize::from(arg)),
                    &mut out,
                ),
                // An alert: level from `arg`, description next.
                1 => {
                    let description = take(1, &mut ops).first().copied().unwrap_or(0);
                    self.seal(ContentType::Alert, &[arg % 4, description], &mut out);
                }
                // A handshake message of type `arg` with a body from the input.
                2 => {
                    let len = usize::from(take(1, &mut ops).first().copied().unwrap_or(0));
                    let body = take(len, &mut ops);
                    self.seal(ContentType::Handshake, &message(arg, &body), &mut out);
                }
                // A handshake message split over two records at `arg`.
                3 => {
                    let body = take(usize::from(arg % 16), &mut ops);
                    let whole = message(HandshakeType::NewSessionTicket.into(), &body);
                    let at = usize::from(arg / 16).min(whole.len());
                    self.seal(ContentType::Handshake, &whole[..at], &mut out);
                    self.seal(ContentType::Handshake, &whole[at..], &mut out);
                }
                // A key update (asking for ours when `arg` is odd), then the next key.
                4 => self.key_update(arg & 1, &mut out),
                // A record of any content type with `arg` bytes.
                5 => {
                    let typ = take(1, &mut ops).first().copied().unwrap_or(0);
                    self.seal(ContentType::from(typ), &pattern(usize::from(arg)), &mut out);
                }
                // The server's close_notify.
                6 => self.seal(ContentType::Alert, &[1, 0], &mut out),
                // The application sends 64 times the low bits' bytes once the server's
                // bytes so far are read.
                7 if arg >= 128 => sends.push((out.len(), 64 * usize::from(arg & 0x7f))),
                // A cut: the stream is read in pieces.
                7 => cuts.push(out.len().saturating_sub(usize::from(arg % 8))),
                // Bytes on the wire that no key sealed.
                8 => out.extend(take(usize::from(arg % 32), &mut ops)),
                // A plaintext longer than a record may carry.
                9 => self.seal(
                    ContentType::ApplicationData,
                    &pattern(16 * 1024 + usize::from(arg % 2)),
                    &mut out,
                ),
                // Several empty records in a row (floods).
                10 => {
                    for _ in 0..arg % 40 {
                        self.seal(ContentType::ApplicationData, &[], &mut out);
                    }
                }
                // Several warning alerts, or key updates, in a row.
                _ => {
                    for _ in 0..arg % 40 {
                        match arg & 1 {
                            0 => self.seal(ContentType::Alert, &[1, 90], &mut out),
                            _ => self.key_update(0, &mut out),
                        }
                    }
                }
            }
        }
        Script {
            stream: out,
            cuts,
            sends,
        }
    }

    fn seal(&mut self, typ: ContentType, payload: &[u8], out: &mut Vec<u8>) {
        let message = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        if let Ok(record) = self.encrypter.encrypt(message, self.tx_seq) {
            out.extend_from_slice(&record.encode());
            self.tx_seq += 1;
        }
    }

    /// Seals a KeyUpdate under the current key and moves to the next (TLS 1.3; under TLS
    /// 1.2 the message goes, and the key stays).
    fn key_update(&mut self, request: u8, out: &mut Vec<u8>) {
        self.seal(
            ContentType::Handshake,
            &message(HandshakeType::KeyUpdate.into(), &[request]),
            out,
        );
        if let Ok((seq, secrets)) = self.kernel.update_tx_secret()
            && let Some(encrypter) = encrypter(self.suite, secrets)
        {
            self.encrypter = encrypter;
            self.tx_seq = seq;
        }
    }
}

/// The last fatal alert among `alerts` (a `close_notify` closing a TLS 1.2 session at its
/// confidentiality limit counts).
fn fatal(alerts: &[(u8, AlertDescription)]) -> Option<AlertDescription> {
    alerts
        .iter()
        .rev()
        .find(|(level, description)| *level == 2 || *description == AlertDescription::CloseNotify)
        .map(|(_, description)| *description)
}

/// Byte `i` of the server's data: order mistakes change the bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A handshake message: type, 24-bit length, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = body.len();
    let mut bytes = vec![kind, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    bytes.extend_from_slice(body);
    bytes
}

/// The most ops one input runs.
const MAX_OPS: usize = 256;

// ---- the two clients ----

/// rustls's buffered client, and what it did.
struct ReferenceClient {
    conn: ClientConnection,
    delivered: Vec<u8>,
    ending: Ending,
    error: Option<String>,
    /// Every alert it sent after the handshake, as the server read them.
    alerts: Vec<(u8, AlertDescription)>,
    /// The application data the server got from it.
    sent: Vec<u8>,
}

impl ReferenceClient {
    /// Shakes hands with a fixed server.
    fn start(suite: SupportedCipherSuite) -> Result<(Self, ServerEnd), Difference> {
        reset_randomness();
        let config = Arc::new(client_config(suite)?);
        let mut conn = ClientConnection::new(config, server_name("localhost"))
            .map_err(|e| Difference(format!("client: {e}")))?;
        let mut server = Handshaking::new(suite)?;
        for _ in 0..16 {
            let mut to_server = Vec::new();
            while conn.wants_write() {
                if !matches!(conn.write_tls(&mut to_server), Ok(n) if n > 0) {
                    break;
                }
            }
            let mut to_client = Vec::new();
            server.receive(&to_server, &mut to_client)?;
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
            let mut rd = &to_client[..];
            while !rd.is_empty() {
                if !matches!(conn.read_tls(&mut rd), Ok(n) if n > 0) {
                    break;
                }
                conn.process_new_packets()
                    .map_err(|e| Difference(format!("client: {e}")))?;
            }
        }
        let end = server.finish(suite)?;
        let client = Self {
            conn,
            delivered: Vec::new(),
            ending: Ending::Open,
            error: None,
            alerts: Vec::new(),
            sent: Vec::new(),
        };
        Ok((client, end))
    }

    /// The application sends `data`, if the session still takes it.
    fn send(&mut self, data: &[u8], end: &mut ServerEnd) {
        if matches!(self.ending, Ending::Failed(_)) || self.conn.writer().write_all(data).is_err() {
            return;
        }
        let mut sent = Vec::new();
        while self.conn.wants_write() {
            if !matches!(self.conn.write_tls(&mut sent), Ok(n) if n > 0) {
                break;
            }
        }
        self.alerts.extend(end.open(&sent));
    }

    fn receive(&mut self, mut data: &[u8], end: &mut ServerEnd) {
        while !data.is_empty() && self.ending == Ending::Open {
            if !matches!(self.conn.read_tls(&mut data), Ok(n) if n > 0) {
                return;
            }
            let processed = self.conn.process_new_packets();
            let mut buf = [0u8; 4096];
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => {
                        self.ending = Ending::PeerClosed;
                        break;
                    }
                    Ok(n) => self.delivered.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
            let mut sent = Vec::new();
            while self.conn.wants_write() {
                if !matches!(self.conn.write_tls(&mut sent), Ok(n) if n > 0) {
                    break;
                }
            }
            self.alerts.extend(end.open(&sent));
            if let Err(error) = processed {
                self.ending = Ending::Failed(fatal(&self.alerts));
                self.error = Some(error.to_string());
            }
        }
    }
}

/// The core's client under the monitor, and what it did.
struct CoreSession {
    client: Client,
    monitor: Monitor,
    now: Instant,
    delivered: Vec<u8>,
    ending: Ending,
    error: Option<String>,
    /// Every alert it sent after the handshake, as the server read them.
    alerts: Vec<(u8, AlertDescription)>,
    /// The alert the close report says went.
    alert_reported: Option<AlertSent>,
    /// The application data the server got from it.
    sent: Vec<u8>,
    violations: Vec<String>,
}

impl CoreSession {
    /// Connects the core's client and shakes hands with a fixed server.
    fn start(suite: SupportedCipherSuite) -> Result<(Self, ServerEnd), Difference> {
        reset_randomness();
        let tls = TlsConfig::new(Arc::new(client_config(suite)?));
        let now = crate::epoch();
        // Half-open after the server's close_notify, as rustls's client stays: the core's
        // own close_notify would be a difference of policy, not of the records.
        let config = Config::new()
            .with_tls(tls)
            .with_on_peer_eof(OnPeerEof::KeepWriting);
        let destination =
            Destination::new("127.0.0.1", 443).with_server_name(server_name("localhost"));
        let client = Client::new(destination, config, now);
        let monitor = Monitor::new(&client);
        let mut server = Handshaking::new(suite)?;
        let mut session = Self {
            client,
            monitor,
            now,
            delivered: Vec::new(),
            ending: Ending::Open,
            error: None,
            alerts: Vec::new(),
            alert_reported: None,
            sent: Vec::new(),
            violations: Vec::new(),
        };
        let _ = session
            .monitor
            .request(&mut session.client, now, Request::StartTls);
        for _ in 0..16 {
            let to_server = session.drain(None);
            let mut to_client = Vec::new();
            server.receive(&to_server, &mut to_client)?;
            if to_client.is_empty() && to_server.is_empty() {
                break;
            }
            session.input(Input::Received(&to_client));
        }
        let end = server.finish(suite)?;
        Ok((session, end))
    }

    fn input(&mut self, input: Input<'_>) {
        let _ = self.monitor.input(&mut self.client, self.now, input);
    }

    /// The application sends `data`; a client that takes no more refuses it.
    fn send(&mut self, data: &[u8], end: &mut ServerEnd) {
        if self.client.is_closed() || data.is_empty() {
            return;
        }
        let data = bytes::Bytes::copy_from_slice(data);
        let _ = self
            .monitor
            .request(&mut self.client, self.now, Request::Send(data));
        self.drain(Some(end));
    }

    fn receive(&mut self, data: &[u8], end: &mut ServerEnd) {
        if self.client.is_closed() || data.is_empty() {
            return;
        }
        self.input(Input::Received(data));
        self.drain(Some(end));
    }

    /// Takes the client's outputs, writing every transmit at once, until it has none;
    /// returns what it transmitted (read by `end` once the handshake is over).
    fn drain(&mut self, mut end: Option<&mut ServerEnd>) -> Vec<u8> {
        let mut sent = Vec::new();
        for _ in 0..64 {
            let before = sent.len();
            let mut answer = None;
            while let Some(output) = self.monitor.poll_output(&mut self.client) {
                match output {
                    Output::Connect { attempt, .. } => self.input(Input::Connected(attempt)),
                    Output::Transmit(bytes) => sent.extend_from_slice(&bytes),
                    Output::QueryUnacknowledged => {
                        answer = Some(Unacknowledged::Known {
                            bytes: 0,
                            fin_acknowledged: false,
                        });
                    }
                    Output::Event(Event::Data(data)) => self.delivered.extend_from_slice(&data),
                    Output::Event(Event::PeerClosed) => self.ending = Ending::PeerClosed,
                    Output::Event(Event::Closed(report)) => {
                        if let Err(error) = &report.result {
                            self.ending = Ending::Failed(None);
                            self.error = Some(error.to_string());
                        }
                        self.alert_reported = report.tls_alert_sent;
                    }
                    _ => {}
                }
            }
            let written = sent.len() - before;
            if written > 0 {
                if let Some(end) = end.as_deref_mut() {
                    self.alerts.extend(end.open(&sent[before..]));
                }
                self.input(Input::Written(written));
            }
            if let Some(answer) = answer {
                self.input(Input::Unacknowledged(answer));
            }
            if written == 0 && answer.is_none() {
                break;
            }
        }
        self.violations.extend(self.monitor.take_violations());
        sent
    }

    /// The failure's alert is the one the server read, and the report names it.
    fn finish(&mut self, end: &mut ServerEnd) {
        self.drain(Some(end));
        if let Ending::Failed(_) = self.ending {
            let read = fatal(&self.alerts);
            self.ending = Ending::Failed(read);
            let reported = match self.alert_reported {
                Some(AlertSent::Named(alert)) => Some(alert),
                _ => None,
            };
            if reported != read {
                self.violations.push(format!(
                    "the report says the alert {:?} went, and the server read {read:?}",
                    self.alert_reported
                ));
            }
        }
    }
}
