//! The two error types: [`Error`] ends a connection, [`InvalidInput`] refuses one input.

use std::io::ErrorKind;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::Phase;

/// Why a connection ended badly.
///
/// Delivered exactly once, inside the [`CloseReport`](crate::CloseReport) of the final
/// [`Event::Closed`](crate::Event::Closed), together with the byte accounting. This is what
/// Kamaelia's TCPClient should have put on its `signal` outbox; there, a refused connection
/// looked exactly like a clean end.
///
/// Socket errors are stored as [`ErrorKind`], not [`std::io::Error`], so that the type is
/// `Clone + PartialEq` and tests can compare whole reports.
#[doc(alias = "signal")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Error {
    /// The driver could not resolve the host name.
    #[error("could not resolve {host}: {}", resolve_reason(*kind))]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// What the resolver reported.
        kind: ErrorKind,
    },
    /// The host name resolved, but to no address the configuration allows (none at all, or
    /// none of the families [`Config::family_preference`](crate::Config::family_preference)
    /// permits).
    #[error("{host} has no usable address (none, or none of the address families allowed)")]
    NoAddresses {
        /// The name that was looked up.
        host: String,
    },
    /// Every address was tried and the last attempt failed (refused, unreachable, ...).
    #[error("connecting to {addr} failed: {kind}")]
    Connect {
        /// The address of the last attempt.
        addr: SocketAddr,
        /// Why it failed, for example [`ErrorKind::ConnectionRefused`].
        kind: ErrorKind,
    },
    /// No attempt succeeded before [`Config::connect_timeout`](crate::Config::connect_timeout).
    #[error("no connection within the connect timeout")]
    ConnectTimeout,
    /// The socket failed after the connection was up (reset, broken pipe, ...).
    #[error("socket error: {0}")]
    Socket(ErrorKind),
    /// The TLS handshake did not finish before
    /// [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout).
    #[error("the TLS handshake did not finish within its timeout")]
    TlsHandshakeTimeout,
    /// The TLS session failed: an untrusted certificate, an alert, garbage from the server.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// The peer closed TCP while TLS was on, without sending `close_notify` first.
    ///
    /// The data received so far may have been cut short by an attacker (a truncation attack),
    /// so this is an error even when every byte we sent was delivered.
    #[error("the peer closed the connection without a TLS close_notify: the data may be truncated")]
    UnexpectedEof,
    /// Nothing was received and nothing was written for
    /// [`Config::idle_timeout`](crate::Config::idle_timeout).
    #[error("the connection was idle for longer than the idle timeout")]
    IdleTimeout,
    /// Bytes waited to be written and none could be for
    /// [`Config::stall_timeout`](crate::Config::stall_timeout): the peer vanished (a
    /// partition, a dropped NAT mapping, a host that lost power) or stopped reading.
    ///
    /// The close report says how many bytes were not delivered.
    #[error("no write progress within the stall timeout: the peer vanished or stopped reading")]
    Stalled,
    /// A graceful shutdown did not complete before the drain deadline: the peer never closed
    /// its side (or never acknowledged our FIN), so nothing confirms that it took what we
    /// sent.
    ///
    /// The close report says what the peer's TCP acknowledged (unconfirmed), and what it
    /// never did or was never written (undelivered).
    #[error("the peer did not close its side of the connection before the drain deadline")]
    DrainTimeout,
    /// The driver running the connection stopped (its event loop failed or panicked), so the
    /// connection ended with it. Bytes not known to be written are counted undelivered.
    #[error("the driver stopped: {reason}")]
    DriverStopped {
        /// What stopped it.
        reason: String,
    },
}

impl Error {
    /// The error's name in traces and tables: its variant's name (`"ConnectTimeout"`,
    /// `"Tls"`, ...). With [`TlsError::name`] it says what went wrong as data, not text.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// Says why a resolution failed in words a user expects: resolvers report a missing name
/// as `NotFound` (or as an uncategorised error, which drivers pass on as `NotFound`).
fn resolve_reason(kind: ErrorKind) -> String {
    match kind {
        ErrorKind::NotFound => "no such host".into(),
        ErrorKind::TimedOut => "the resolver timed out".into(),
        other => other.to_string(),
    }
}

/// Why a TLS session failed, sorted into the cases a caller can act on.
///
/// The `reason` strings carry rustls's own description for logs; match on the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate chain does not lead to a trusted root (or is badly signed).
    #[error("the server certificate is not trusted ({reason})")]
    CertificateNotTrusted {
        /// rustls's description.
        reason: String,
    },
    /// The certificate is valid, but not for the server name we asked for.
    #[error("the server certificate is not valid for the requested name ({reason})")]
    CertificateNameMismatch {
        /// rustls's description.
        reason: String,
    },
    /// The certificate has expired, or is not valid yet.
    #[error("the server certificate is expired or not yet valid ({reason})")]
    CertificateExpired {
        /// rustls's description.
        reason: String,
    },
    /// The server presented a CA certificate (`basicConstraints: CA:TRUE`) as its own, as a
    /// self-signed certificate made with `openssl req -x509` is by default. Trust that very
    /// certificate ([`tls::client_config_from_pem`](crate::tls::client_config_from_pem)
    /// accepts a server certificate that is exactly one of the trusted ones).
    #[error(
        "the server presented a CA certificate as its own; if it is a self-signed certificate \
         you trust, trust that very certificate (not only its issuer)"
    )]
    CertificateIsCa,
    /// Some other certificate problem: bad encoding, revoked, unsupported extension, ...
    #[error("the server certificate is invalid ({reason})")]
    CertificateInvalid {
        /// rustls's description.
        reason: String,
    },
    /// The server sent a fatal alert, such as `handshake_failure` or `protocol_version`.
    #[error("the server sent the alert {alert}")]
    AlertReceived {
        /// The alert's name, for example `HandshakeFailure`.
        alert: String,
    },
    /// The server sent bytes that are not valid TLS: garbage, a plaintext reply, a bad record.
    #[error("the server sent data that is not valid TLS ({reason})")]
    CorruptMessage {
        /// rustls's description.
        reason: String,
    },
    /// The server and our configuration have nothing in common (versions, suites, ALPN).
    #[error("the server is incompatible with our TLS configuration ({reason})")]
    Incompatible {
        /// rustls's description.
        reason: String,
    },
    /// An ALPN protocol name is empty or longer than 255 bytes: TLS cannot carry it.
    #[error("ALPN protocol names must be 1 to 255 bytes long; `{}` is {} bytes", String::from_utf8_lossy(protocol), protocol.len())]
    InvalidAlpnProtocol {
        /// The name that cannot be used.
        protocol: Vec<u8>,
    },
    /// The server repeated something TLS allows without end (empty records, warning
    /// alerts, key updates, renegotiation requests) past a limit at least as tight
    /// as rustls's own: a flood, which would otherwise keep the session busy and its idle
    /// timer restarting without a byte of data.
    #[error("the server flooded the session with {0}")]
    Flood(Flood),
    /// Any other failure reported by rustls, including a configuration it could not use.
    #[error("{reason}")]
    Other {
        /// rustls's description.
        reason: String,
    },
}

impl TlsError {
    /// The error's name in traces and tables: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// What a TLS server repeated past its limit ([`TlsError::Flood`]).
///
/// Each is legal once or a few times, and free for the server to send, while each costs the
/// client work (a key derivation, an answer) or keeps its idle timer from firing. The limits
/// are rustls's (and BoringSSL's), except that only application data with bytes in it lets
/// the key updates start over: an empty record costs the server nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Flood {
    /// More than [`Flood::limit`] records in a row that carry nothing (TLS 1.3 padding only,
    /// or an empty application data record).
    EmptyRecords,
    /// More than [`Flood::limit`] warning alerts (`user_canceled`, the one TLS 1.3 allows)
    /// over the session.
    WarningAlerts,
    /// More than [`Flood::limit`] key updates (asking for ours in return or not) with no
    /// application data between.
    KeyUpdates,
    /// More than [`Flood::limit`] renegotiation requests (TLS 1.2 HelloRequests) over the
    /// session: the first is declined by passing it over, a second is an error.
    RenegotiationRequests,
}

impl Flood {
    /// How many the client takes before it refuses the next.
    pub const fn limit(self) -> u32 {
        match self {
            Flood::EmptyRecords | Flood::KeyUpdates => 32,
            Flood::WarningAlerts => 4,
            Flood::RenegotiationRequests => 1,
        }
    }

    /// The flood's name in traces and tables: its variant's name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for Flood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, rule) = match self {
            Flood::EmptyRecords => ("empty records", " in a row"),
            Flood::WarningAlerts => ("warning alerts", ""),
            Flood::KeyUpdates => ("key updates", " without data between"),
            Flood::RenegotiationRequests => ("renegotiation requests", ""),
        };
        write!(f, "{what}: more than {}{rule}", self.limit())
    }
}

/// Why [`Client::handle_input`](crate::Client::handle_input) refused an input.
///
/// A refused input changes nothing: the client is in the same state as before the call.
/// Inputs that carry data give it back, so no byte is lost by a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The send queue is full; the data is handed back.
    ///
    /// Try again after [`Event::SendReady`](crate::Event::SendReady): it comes once the
    /// queue has drained to [`Config::send_low_watermark`](crate::Config::send_low_watermark).
    #[error("the send queue is full ({queued} bytes queued, limit {limit})")]
    QueueFull {
        /// The refused data.
        data: Bytes,
        /// Bytes queued (accepted but not yet written) when the data was refused.
        queued: usize,
        /// [`Config::send_limit`](crate::Config::send_limit).
        limit: usize,
    },
    /// The connection is shutting down or closed, so nothing more can be sent; the data is
    /// handed back.
    #[error("cannot send {} bytes: the connection is {phase}", data.len())]
    SendAfterShutdown {
        /// The refused data.
        data: Bytes,
        /// The phase the client was in.
        phase: Phase,
    },
    /// [`Client::start_tls`](crate::Client::start_tls) needs [`Config::tls`](crate::Config::tls).
    #[error("StartTls needs a TLS configuration (Config::tls)")]
    NoTlsConfig,
    /// [`Client::consumed`](crate::Client::consumed) of more bytes than were delivered and not
    /// yet consumed.
    #[error("cannot consume {consumed} bytes: {unconsumed} delivered bytes are unconsumed")]
    ConsumedTooMuch {
        /// The bytes the input said were consumed.
        consumed: usize,
        /// The bytes delivered and not yet consumed.
        unconsumed: u64,
    },
    /// [`Client::acknowledged`](crate::Client::acknowledged) of more bytes than were sent
    /// and not yet acknowledged.
    #[error(
        "cannot acknowledge {acknowledged} bytes: {unacknowledged} sent bytes are unacknowledged"
    )]
    AcknowledgedTooMuch {
        /// The bytes the application said were acknowledged.
        acknowledged: usize,
        /// The bytes sent and not yet acknowledged.
        unacknowledged: u64,
    },
    /// The input makes no sense in the current phase, for example `Received` before
    /// `Connected`, a second `StartTls`, or `Written` of more bytes than were handed out.
    #[error("{input} is not expected while {phase}")]
    Unexpected {
        /// Which input, by [`Input::name`](crate::Input::name), or which request, by its
        /// method's name (`StartTls`, `Finish` and `Abort` as they were inputs once).
        input: &'static str,
        /// The phase the client was in.
        phase: Phase,
    },
}

impl InvalidInput {
    /// Returns the data of a refused [`Client::send`](crate::Client::send), if this refusal carried any.
    pub fn into_data(self) -> Option<Bytes> {
        match self {
            Self::QueueFull { data, .. } | Self::SendAfterShutdown { data, .. } => Some(data),
            _ => None,
        }
    }
}
