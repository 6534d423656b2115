//! What a client reports about itself: the close report and the negotiated TLS parameters.

use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use crate::{AttemptId, Error};

/// The final account of a connection, carried by [`Event::Closed`](crate::Event::Closed).
///
/// Written to the socket is not delivered: the kernel still has to get the bytes to the
/// peer. So every byte the application handed in is counted by how far it is known to have
/// got, however the connection ended:
///
/// - **confirmed**: the stream closed both ways, so the peer took every byte written: its
///   end (FIN, or TLS `close_notify`) came, and its TCP acknowledged our FIN, which follows
///   every byte (where the driver cannot tell what was acknowledged, its end came after our
///   FIN, answering it);
/// - **unconfirmed**: written, and not known to be lost, but without that close: the
///   peer's TCP acknowledged them (its application may never have read them), or the
///   driver cannot tell;
/// - **lost**: written, and never acknowledged by the peer's TCP when the connection
///   ended: they are handed back with the never-written ones;
/// - **undelivered**: never written, or lost.
///
/// `bytes_written == bytes_confirmed + bytes_unconfirmed + bytes_lost` and
/// `bytes_accepted == bytes_confirmed + bytes_unconfirmed + bytes_undelivered`, always.
/// [`is_clean`](Self::is_clean) holds only when every accepted byte is confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Application bytes accepted by [`Client::send`](crate::Client::send).
    pub bytes_accepted: u64,
    /// Application bytes that reached the socket (the kernel took them). Under TLS a byte
    /// counts once the whole record carrying it was written.
    pub bytes_written: u64,
    /// Written bytes the two-way close confirmed: all of them, or none.
    pub bytes_confirmed: u64,
    /// Written bytes neither confirmed nor known lost: acknowledged by the peer's TCP on a
    /// connection that did not close both ways, or, where the driver cannot tell what was
    /// acknowledged, not confirmed.
    pub bytes_unconfirmed: u64,
    /// Written bytes the peer's TCP had not acknowledged when the connection ended: lost
    /// with it, and handed back as [`Event::Undelivered`](crate::Event::Undelivered).
    pub bytes_lost: u64,
    /// Application bytes accepted that did not get through: never written (queued, or
    /// handed out and not written), or lost. Handed back, every one of them.
    pub bytes_undelivered: u64,
    /// Application bytes delivered as [`Event::Data`](crate::Event::Data).
    pub bytes_received: u64,
    /// Bytes written to the socket, TLS records and handshake included.
    pub wire_bytes_written: u64,
    /// Whether the peer closed its side (FIN, or TLS `close_notify`) before the end.
    pub peer_closed: bool,
    /// Whether the peer's TCP acknowledged our FIN, and with it every byte written: our end
    /// of the stream reached the peer. Known only where the driver can tell what was
    /// acknowledged; `false` otherwise.
    pub fin_acknowledged: bool,
    /// The fatal TLS alert written to the socket before the close, when the session failed
    /// on something the server sent (a record that does not decrypt, a message out of
    /// place, an untrusted certificate): what the server was told, if it reads it (written,
    /// like every byte the report counts, is not known to be read). `None` when the session
    /// did not fail that way, when its failure calls for no alert (the server's own fatal
    /// alert, a flood), after our `close_notify` (nothing may follow it), or when the
    /// alert could not be written in time.
    pub tls_alert_sent: Option<AlertSent>,
    /// Application bytes handed back as [`Event::Undelivered`](crate::Event::Undelivered)
    /// while a reconnecting [`Client`](crate::Client#reconnecting) went on (a connection lost them,
    /// and nothing replayed them): back with the application, which may have sent them
    /// again (and then they were accepted again). Zero for a single connection, and not in
    /// `bytes_undelivered`, which is what did not get through at the end.
    pub bytes_handed_back: u64,
    /// Every connect attempt, in the order they started: the one that won, those it beat,
    /// and, when no connection came up, how each one failed. A session's lists those of
    /// every connection, under the ids its `Connect` outputs used.
    pub attempts: Vec<Attempt>,
    /// A session's connections, one after another, each with what it wrote and how far
    /// that got: empty for a single connection.
    pub generations: Vec<GenerationReport>,
    /// How it ended: on purpose, or with an error.
    pub result: Result<Ending, Error>,
}

/// One connect attempt, as the close report lists it.
///
/// Its times are offsets from the start of the client (of the session, in a session's
/// report), so that the reports of two runs of the same simulated seed compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Which attempt (session-wide, in a session's report).
    pub id: AttemptId,
    /// The address it connected to.
    pub addr: SocketAddr,
    /// When it started, counted from the start.
    pub started: Duration,
    /// When it ended (won, failed, or was cancelled), counted from the start.
    pub ended: Duration,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// One connection of a reconnecting [`Client`](crate::Client#reconnecting), as its close report lists it: each
/// byte it wrote, and where what did not get through went.
///
/// ```
/// use std::io::ErrorKind;
/// use std::time::{Duration, Instant};
/// use tcpclient_core::{
///     AttemptId, Bytes, Client, Config, Input, Jitter, Output, ReconnectPolicy, Unacknowledged,
/// };
///
/// # fn run(start: Instant) -> Result<(), Box<dyn std::error::Error>> {
/// let policy = ReconnectPolicy::default().with_jitter(Jitter::None);
/// let mut session = Client::new(("127.0.0.1", 7), Config::new().with_reconnect(policy), start);
/// // The driver: outputs taken, and its kernel's answer (all acknowledged) to questions.
/// let mut fin_sent = false;
/// let mut drive = |session: &mut Client, now: Instant| {
///     let mut outputs = Vec::new();
///     while let Some(output) = session.poll_output() {
///         match output {
///             Output::QueryUnacknowledged => {
///                 let all = Unacknowledged::Known { bytes: 0, fin_acknowledged: fin_sent };
///                 session.handle_input(now, Input::Unacknowledged(all)).unwrap();
///             }
///             Output::ShutdownWrite => fin_sent = true,
///             other => outputs.push(other),
///         }
///     }
///     outputs
/// };
/// drive(&mut session, start);
/// session.handle_input(start, Input::Connected(AttemptId(0)))?;
/// session.send(start, Bytes::from_static(b"abcdef"))?;
/// drive(&mut session, start);
/// session.handle_input(start, Input::Written(2))?;
/// session.handle_input(start, Input::SocketError(ErrorKind::ConnectionReset))?;
/// drive(&mut session, start); // "cdef" comes back as `Undelivered`: the application sends it again.
/// session.send(start, Bytes::from_static(b"cdef"))?;
/// let later = start + Duration::from_secs(1);
/// session.handle_input(later, Input::Timeout)?;
/// drive(&mut session, later);
/// session.handle_input(later, Input::Connected(AttemptId(1)))?;
/// drive(&mut session, later);
/// session.handle_input(later, Input::Written(4))?;
/// session.finish(later)?;
/// drive(&mut session, later);
/// session.handle_input(later, Input::PeerEof)?;
///
/// let report = drive(&mut session, later)
///     .into_iter()
///     .find_map(|output| match output {
///         Output::Event(tcpclient_core::Event::Closed(report)) => Some(report),
///         _ => None,
///     })
///     .unwrap();
/// let first = &report.generations[0];
/// assert_eq!((first.bytes_written, first.bytes_handed_back), (2, 4));
/// // Every attempt under the id its `Connect` had, at offsets from the session's start.
/// assert_eq!(report.attempts[1].id, AttemptId(1));
/// assert_eq!(report.attempts[1].started, Duration::from_secs(1));
/// // Handed back on the way and sent again: not undelivered at the end.
/// assert_eq!((report.bytes_handed_back, report.bytes_undelivered), (4, 0));
/// # Ok(())
/// # }
/// # run(Instant::now()).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerationReport {
    /// Which connection: 0 for the first.
    pub generation: u32,
    /// How it ended.
    pub result: Result<Ending, Error>,
    /// When it was made (its start delay, the backoff, included), from the session's start.
    pub started: Duration,
    /// When it closed, from the session's start.
    pub ended: Duration,
    /// Application bytes it wrote (its preamble not counted).
    pub bytes_written: u64,
    /// Of those, confirmed by its close both ways.
    pub bytes_confirmed: u64,
    /// Of those, neither confirmed nor known lost.
    pub bytes_unconfirmed: u64,
    /// Of those, never acknowledged by the peer's TCP.
    pub bytes_lost: u64,
    /// What did not get through (lost, or never written), handed back to the application
    /// when it ended.
    pub bytes_handed_back: u64,
    /// What did not get through, or waited for the next connection, carried to it.
    pub bytes_carried: u64,
}

/// How a connect attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It connected first: the connection is this attempt.
    Won,
    /// The peer refused it (RST to the SYN: nothing listens).
    Refused,
    /// The network said the address cannot be reached.
    Unreachable,
    /// It took longer than [`Config::attempt_timeout`](crate::Config::attempt_timeout).
    TimedOut,
    /// It failed some other way.
    Failed(ErrorKind),
    /// It was still under way when another attempt won, or when the client gave up.
    Cancelled,
}

impl AttemptOutcome {
    /// The outcome of an attempt whose socket reported `kind`.
    pub(crate) fn from_error(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::ConnectionRefused => AttemptOutcome::Refused,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
                AttemptOutcome::Unreachable
            }
            ErrorKind::TimedOut => AttemptOutcome::TimedOut,
            other => AttemptOutcome::Failed(other),
        }
    }

    /// The outcome's name in traces: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptOutcome::Won => f.write_str("connected"),
            AttemptOutcome::Refused => f.write_str("refused"),
            AttemptOutcome::Unreachable => f.write_str("unreachable"),
            AttemptOutcome::TimedOut => f.write_str("timed out"),
            AttemptOutcome::Failed(kind) => write!(f, "failed: {kind}"),
            AttemptOutcome::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl CloseReport {
    /// The report for a connection whose driver stopped before the client could close it
    /// (its event loop failed or panicked): [`Error::DriverStopped`] with `reason`, every
    /// accepted byte not known to be written counted undelivered and every written one
    /// unconfirmed, so the accounting still adds up. A driver calls this only when the
    /// client itself is lost.
    pub fn driver_stopped(accepted: u64, written: u64, received: u64, reason: String) -> Self {
        let written = written.min(accepted);
        Self {
            bytes_accepted: accepted,
            bytes_written: written,
            bytes_confirmed: 0,
            bytes_unconfirmed: written,
            bytes_lost: 0,
            bytes_undelivered: accepted - written,
            bytes_received: received,
            wire_bytes_written: written,
            peer_closed: false,
            fin_acknowledged: false,
            tls_alert_sent: None,
            bytes_handed_back: 0,
            attempts: Vec::new(),
            generations: Vec::new(),
            result: Err(Error::DriverStopped { reason }),
        }
    }

    /// Every name [`outcome`](Self::outcome) can give: each [`Ending`]'s, then each
    /// [`Error`]'s. For tables and coverage checks that must list them all.
    pub const OUTCOMES: [&'static str; 15] = [
        "Finished",
        "PeerClosed",
        "Aborted",
        "Resolve",
        "NoAddresses",
        "Connect",
        "ConnectTimeout",
        "Socket",
        "TlsHandshakeTimeout",
        "Tls",
        "UnexpectedEof",
        "IdleTimeout",
        "DrainTimeout",
        "Stalled",
        "DriverStopped",
    ];

    /// How it ended, as one name: the [`Ending`]'s or the [`Error`]'s (`"Finished"`,
    /// `"ConnectTimeout"`, ...), one of [`OUTCOMES`](Self::OUTCOMES).
    pub fn outcome(&self) -> &'static str {
        match &self.result {
            Ok(ending) => ending.name(),
            Err(error) => error.name(),
        }
    }

    /// Returns true when the connection ended on purpose and every accepted byte is
    /// confirmed: written, and taken by the peer, as a close in both directions shows.
    ///
    /// An abort, an error, a single undelivered byte, or a single written byte that the
    /// close did not confirm (the peer never closed its side; it acknowledged our bytes and
    /// then the connection failed; the driver cannot tell what it acknowledged and the peer
    /// closed first) makes a close unclean. This is the rule `tcpclient` exits 0 by.
    pub fn is_clean(&self) -> bool {
        matches!(self.result, Ok(Ending::Finished | Ending::PeerClosed))
            && self.bytes_undelivered == 0
            && self.bytes_unconfirmed == 0
    }
}

impl fmt::Display for CloseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(ending) => write!(f, "{ending}")?,
            Err(error) => write!(f, "failed: {error}")?,
        }
        write!(
            f,
            "; sent {} of {} bytes (",
            self.bytes_written, self.bytes_accepted
        )?;
        for (count, what) in [
            (self.bytes_confirmed, "confirmed"),
            (self.bytes_unconfirmed, "unconfirmed"),
            (self.bytes_lost, "lost"),
        ] {
            if count > 0 {
                write!(f, "{count} {what}, ")?;
            }
        }
        write!(
            f,
            "{} undelivered), received {} bytes",
            self.bytes_undelivered, self.bytes_received
        )?;
        if let Some(alert) = self.tls_alert_sent {
            write!(f, "; sent the server the TLS alert {alert}")?;
        }
        // A connection that never came up after several attempts: say how each one ended.
        let won = self
            .attempts
            .iter()
            .any(|a| a.outcome == AttemptOutcome::Won);
        if !won && self.attempts.len() > 1 {
            let first = self.attempts.iter().map(|a| a.started).min();
            f.write_str("; attempts:")?;
            for (i, attempt) in self.attempts.iter().enumerate() {
                let at = first.map_or(0, |t| attempt.started.saturating_sub(t).as_millis());
                let sep = if i == 0 { " " } else { ", " };
                write!(
                    f,
                    "{sep}{} {} (started at +{at} ms)",
                    attempt.addr, attempt.outcome
                )?;
            }
        }
        Ok(())
    }
}

/// The fatal alert a client wrote to its socket before closing on a TLS failure
/// ([`CloseReport::tls_alert_sent`]), as RFC 8446 section 6.2 asks: the server learns why,
/// and can tell an attack on the path from a dropped connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSent {
    /// This alert, for example `BadRecordMac` for a record that failed to decrypt.
    Named(rustls::AlertDescription),
    /// An alert rustls sealed under the handshake's keys (TLS 1.3, after the server's
    /// hello) for a failure its error does not name the alert of: one went, and only the
    /// server can read which.
    Unnamed,
}

impl AlertSent {
    /// The alert's name as traces write it (`"BadRecordMac"`), or `"Unnamed"`.
    pub fn name(&self) -> String {
        match self {
            AlertSent::Named(alert) => format!("{alert:?}"),
            AlertSent::Unnamed => "Unnamed".into(),
        }
    }
}

impl fmt::Display for AlertSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertSent::Named(alert) => write!(f, "{alert:?}"),
            AlertSent::Unnamed => f.write_str("(sealed under the handshake's keys)"),
        }
    }
}

/// How a connection ended when it ended on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Ending {
    /// A graceful shutdown ([`Client::finish`](crate::Client::finish)) completed: everything was
    /// delivered and our side closed. [`CloseReport::peer_closed`] tells whether the peer
    /// closed its side before the drain deadline.
    #[doc(alias = "producerFinished")]
    Finished,
    /// The peer closed first, and we flushed and closed too
    /// ([`OnPeerEof::Close`](crate::OnPeerEof::Close)).
    PeerClosed,
    /// The application aborted ([`Client::abort`](crate::Client::abort)).
    #[doc(alias = "shutdownMicroprocess")]
    Aborted,
}

impl Ending {
    /// The ending's name in traces and tables: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ending::Finished => "finished gracefully",
            Ending::PeerClosed => "closed by the peer",
            Ending::Aborted => "aborted",
        })
    }
}

/// What a TLS handshake negotiated, carried by
/// [`Event::TlsEstablished`](crate::Event::TlsEstablished).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version, for example `TLSv1_3`.
    pub protocol_version: Option<rustls::ProtocolVersion>,
    /// The cipher suite, for example `TLS13_AES_128_GCM_SHA256`.
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The key exchange group, for example `X25519MLKEM768` (the post-quantum hybrid the
    /// default provider offers first) or `X25519`. `None` for a resumed TLS 1.2 session,
    /// which exchanges no key.
    pub key_exchange_group: Option<rustls::NamedGroup>,
    /// The ALPN protocol the server chose, if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The session resumed an earlier one (a ticket kept by the same
    /// [`rustls::ClientConfig`]): no certificate was presented or verified this time.
    pub resumed: bool,
    /// The certificate chain the server presented and the client verified, leaf first (for
    /// a resumed session, the chain of the session it resumed).
    pub peer_certificates: PeerCertificates,
}

/// The server's certificates (DER), leaf first. Its `Debug` says how many there are rather
/// than printing them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PeerCertificates(pub Vec<rustls::pki_types::CertificateDer<'static>>);

impl fmt::Debug for PeerCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerCertificates({} DER)", self.0.len())
    }
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol_version {
            Some(version) => write!(f, "{version:?}")?,
            None => f.write_str("unknown version")?,
        }
        if let Some(suite) = self.cipher_suite {
            write!(f, ", {suite:?}")?;
        }
        if let Some(alpn) = &self.alpn_protocol {
            write!(f, ", ALPN {}", String::from_utf8_lossy(alpn))?;
        }
        if self.resumed {
            f.write_str(", resumed")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;
    use crate::TlsError;

    #[test]
    fn the_one_line_summary_names_each_count_that_is_not_zero() {
        let mut report = CloseReport::driver_stopped(10, 9, 0, "gone".into());
        report.result = Err(Error::Socket(ErrorKind::ConnectionReset));
        (
            report.bytes_confirmed,
            report.bytes_unconfirmed,
            report.bytes_lost,
        ) = (0, 6, 3);
        report.bytes_undelivered = 4;

        let line = report.to_string();

        assert!(
            line.contains("; sent 9 of 10 bytes (6 unconfirmed, 3 lost, 4 undelivered)"),
            "{line}"
        );
    }

    #[test]
    fn every_ending_and_every_error_is_named_in_outcomes() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 7));
        let host = String::from("h");
        let names: Vec<&str> = [Ending::Finished, Ending::PeerClosed, Ending::Aborted]
            .iter()
            .map(Ending::name)
            .chain(
                [
                    Error::Resolve {
                        host: host.clone(),
                        kind: ErrorKind::NotFound,
                    },
                    Error::NoAddresses { host },
                    Error::Connect {
                        addr,
                        kind: ErrorKind::ConnectionRefused,
                    },
                    Error::ConnectTimeout,
                    Error::Socket(ErrorKind::ConnectionReset),
                    Error::TlsHandshakeTimeout,
                    Error::Tls(TlsError::CertificateIsCa),
                    Error::UnexpectedEof,
                    Error::IdleTimeout,
                    Error::DrainTimeout,
                    Error::Stalled,
                    Error::DriverStopped {
                        reason: String::new(),
                    },
                ]
                .iter()
                .map(Error::name),
            )
            .collect();

        assert_eq!(names, CloseReport::OUTCOMES);
    }
}
