//! How a client connects, how long it waits, and how much it buffers: the policy, which
//! any number of clients share, whatever server each connects to.

use std::sync::Arc;
use std::time::Duration;

use crate::{FamilyPreference, ReconnectPolicy, SocketOptions};

/// How a [`Client`](crate::Client) connects, waits, buffers and reconnects: everything but
/// where to ([`Destination`](crate::Destination)). One configuration, in an `Arc`, serves
/// any number of clients to any servers.
///
/// Kamaelia's `TCPClient(delay, connect_timeout)` constructor arguments, plus the limits the
/// original lacked. Start from [`Config::new`], which has sane defaults, and change what you
/// need:
///
/// ```
/// use std::time::Duration;
/// use tcpclient_core::{Config, OnPeerEof};
///
/// let config = Config::new()
///     .with_delay(Duration::from_millis(250))
///     .with_connect_timeout(Duration::from_secs(5))
///     .with_on_peer_eof(OnPeerEof::KeepWriting);
/// assert_eq!(config.send_limit, 1024 * 1024);
/// ```
#[doc(alias = "TCPClient")]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Time to wait before the first connect attempt (Kamaelia `delay`). Default: zero.
    pub delay: Duration,
    /// Time from the end of the delay until the connection must be up, resolution and every
    /// attempt included (Kamaelia `connect_timeout`). Default: 30 s.
    pub connect_timeout: Duration,
    /// Time one connect attempt may take while other addresses are still left to try; the
    /// last address gets whatever remains of `connect_timeout`. Default: 5 s.
    pub attempt_timeout: Duration,
    /// Time after starting one connect attempt before the next address is tried too, the
    /// earlier attempt staying alive (RFC 8305's connection attempt delay). A failed attempt
    /// starts the next one at once. Clamped to 10 ms – 2 s. Default: 250 ms.
    pub attempt_delay: Duration,
    /// When the other family's addresses resolve first, time to wait for the preferred
    /// family's before starting (RFC 8305's resolution delay). Default: 50 ms.
    pub resolution_delay: Duration,
    /// Which address families to use, and which first. Default:
    /// [`FamilyPreference::PreferIpv6`].
    pub family_preference: FamilyPreference,
    /// Socket options for every connect attempt. Default: [`SocketOptions::default`].
    pub socket_options: SocketOptions,
    /// Time the TLS handshake may take, from the ClientHello. Default: 10 s.
    pub tls_handshake_timeout: Duration,
    /// Time a graceful shutdown may take, from the request (or from the connection, if the
    /// request came first) until the peer's EOF: flushing, `close_notify`, FIN and draining.
    /// Default: 10 s.
    pub drain_timeout: Duration,
    /// Close with [`Error::IdleTimeout`](crate::Error::IdleTimeout) when an open connection
    /// neither receives nor writes anything for this long. Default: `None` (no limit).
    pub idle_timeout: Option<Duration>,
    /// Close with [`Error::Stalled`](crate::Error::Stalled) when bytes handed out for
    /// writing see no write progress for this long: the peer vanished, or stopped reading.
    /// Default: 30 s.
    ///
    /// With the default [`SocketOptions`] (keepalive, and `TCP_USER_TIMEOUT` on Linux) a
    /// vanished peer is found without touching the configuration: within 30 s while we have
    /// something to write (this deadline in the core, `TCP_USER_TIMEOUT` in the kernel for
    /// bytes it holds), and within about 45 s on a connection that only reads (the first
    /// keepalive probe after 15 s idle, dead once unanswered for 30 s).
    pub stall_timeout: Option<Duration>,
    /// Most bytes delivered as [`Event::Data`](crate::Event::Data) and not yet reported
    /// consumed ([`Client::consumed`](crate::Client::consumed)). At the window the client stops
    /// asking to read ([`Client::wants_read`](crate::Client::wants_read) turns false) until
    /// the application consumes, so the kernel's TCP window holds the server back instead of
    /// memory growing. One read can overshoot the window (under TLS, one read and one
    /// record). `None`: the application consumes each `Data` as it is delivered and never
    /// reports it. Default: 1 MiB.
    pub receive_window: Option<usize>,
    /// Most bytes accepted but not yet written to the socket; a `Send` beyond it is refused
    /// with [`InvalidInput::QueueFull`](crate::InvalidInput::QueueFull). A single `Send`
    /// larger than the limit is accepted when nothing else is queued. Default: 1 MiB.
    pub send_limit: usize,
    /// After a refused `Send`, [`Event::SendReady`](crate::Event::SendReady) is emitted once
    /// the undelivered bytes drop to this many. Default: half of `send_limit`.
    pub send_low_watermark: usize,
    /// Sends smaller than this are copied together into shared buffers of up to 64 KiB;
    /// larger ones leave as the very same `Bytes` (no copy). Gathering many tiny buffers
    /// into one `writev` costs more per buffer than copying them, so a stream of small
    /// messages is fastest coalesced. `0` turns coalescing off. Default: 1024.
    pub coalesce_below: usize,
    /// What to do when the peer closes its side first. Default: [`OnPeerEof::Close`].
    pub on_peer_eof: OnPeerEof,
    /// TLS settings, needed for [`Client::start_tls`](crate::Client::start_tls). Default:
    /// `None`.
    pub tls: Option<TlsConfig>,
    /// Come back after a connection is lost, by this policy (see
    /// [`Client`](crate::Client#reconnecting)). Default: `None` (one connection).
    pub reconnect: Option<ReconnectPolicy>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// Returns a configuration with the defaults listed on each field.
    pub fn new() -> Self {
        const MIB: usize = 1024 * 1024;
        Self {
            delay: Duration::ZERO,
            connect_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(5),
            attempt_delay: Duration::from_millis(250),
            resolution_delay: Duration::from_millis(50),
            family_preference: FamilyPreference::PreferIpv6,
            socket_options: SocketOptions::default(),
            tls_handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
            idle_timeout: None,
            stall_timeout: Some(Duration::from_secs(30)),
            receive_window: Some(MIB),
            send_limit: MIB,
            send_low_watermark: MIB / 2,
            coalesce_below: 1024,
            on_peer_eof: OnPeerEof::Close,
            tls: None,
            reconnect: None,
        }
    }

    /// Sets [`Config::reconnect`].
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Sets [`Config::delay`].
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`Config::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Config::attempt_timeout`].
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Sets [`Config::attempt_delay`].
    pub fn with_attempt_delay(mut self, delay: Duration) -> Self {
        self.attempt_delay = delay;
        self
    }

    /// Sets [`Config::resolution_delay`].
    pub fn with_resolution_delay(mut self, delay: Duration) -> Self {
        self.resolution_delay = delay;
        self
    }

    /// Sets [`Config::family_preference`].
    pub fn with_family_preference(mut self, preference: FamilyPreference) -> Self {
        self.family_preference = preference;
        self
    }

    /// Sets [`Config::socket_options`].
    pub fn with_socket_options(mut self, options: SocketOptions) -> Self {
        self.socket_options = options;
        self
    }

    /// Sets [`Config::tls_handshake_timeout`].
    pub fn with_tls_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.tls_handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::drain_timeout`].
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Sets [`Config::idle_timeout`].
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`Config::stall_timeout`].
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Sets [`Config::receive_window`].
    pub fn with_receive_window(mut self, window: Option<usize>) -> Self {
        self.receive_window = window;
        self
    }

    /// Sets [`Config::send_limit`] and puts the low watermark at half of it.
    pub fn with_send_limit(mut self, limit: usize) -> Self {
        self.send_limit = limit;
        self.send_low_watermark = limit / 2;
        self
    }

    /// Sets [`Config::coalesce_below`].
    pub fn with_coalesce_below(mut self, bytes: usize) -> Self {
        self.coalesce_below = bytes;
        self
    }

    /// Sets [`Config::on_peer_eof`].
    pub fn with_on_peer_eof(mut self, policy: OnPeerEof) -> Self {
        self.on_peer_eof = policy;
        self
    }

    /// Sets [`Config::tls`].
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
}

/// What a client does when the peer closes its sending side (its FIN, or TLS `close_notify`).
///
/// Either way [`Event::PeerClosed`](crate::Event::PeerClosed) is emitted first. Kamaelia
/// always tore the whole connection down and dropped what was queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnPeerEof {
    /// Flush what is queued, then close our side too, as a graceful shutdown would; the close
    /// report ends with [`Ending::PeerClosed`](crate::Ending::PeerClosed).
    #[default]
    Close,
    /// Keep the connection half-open: sending goes on until the application calls
    /// [`Client::finish`](crate::Client::finish) or [`Client::abort`](crate::Client::abort).
    KeepWriting,
}

/// What TLS needs: a rustls configuration. The name to verify the server against is the
/// [`Destination`](crate::Destination)'s.
///
/// The core never builds a [`rustls::ClientConfig`] itself; use
/// [`tls::client_config`](crate::tls::client_config) for the common case.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub(crate) client_config: Arc<rustls::ClientConfig>,
}

impl TlsConfig {
    /// Wraps a rustls configuration.
    ///
    /// The configuration is used as given, with one setting turned on (in a copy, if it was
    /// off): `enable_secret_extraction`. rustls runs the handshake; then the core seals and
    /// opens the session's records itself with the session's keys, so that each sealed
    /// record goes to the socket without a copy, and so that bytes after our `close_notify`
    /// never reach rustls, which could panic on them in debug builds (rustls#959). The keys
    /// never leave the core.
    pub fn new(client_config: Arc<rustls::ClientConfig>) -> Self {
        let client_config = if client_config.enable_secret_extraction {
            client_config
        } else {
            let mut config = (*client_config).clone();
            config.enable_secret_extraction = true;
            Arc::new(config)
        };
        Self { client_config }
    }

    /// Returns the rustls client configuration (roots, verifier, ALPN, versions).
    pub fn client_config(&self) -> &Arc<rustls::ClientConfig> {
        &self.client_config
    }
}
