//! Connection establishment as data: address families, attempt ids, and the socket options
//! every connect carries to the driver.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
pub enum Family {
    /// IPv4 (DNS `A` records).
    V4,
    /// IPv6 (DNS `AAAA` records).
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// The family's name in traces: `"V4"` or `"V6"`.
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub(crate) fn other(self) -> Self {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }
}

/// Which address families to connect over, and which to try first (RFC 8305 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FamilyPreference {
    /// Both families, IPv6 first: the RFC's default.
    #[default]
    PreferIpv6,
    /// Both families, IPv4 first.
    PreferIpv4,
    /// IPv4 only (`nc -4`).
    Ipv4Only,
    /// IPv6 only (`nc -6`).
    Ipv6Only,
}

impl FamilyPreference {
    /// The family tried first.
    pub(crate) fn first(self) -> Family {
        match self {
            FamilyPreference::PreferIpv6 | FamilyPreference::Ipv6Only => Family::V6,
            FamilyPreference::PreferIpv4 | FamilyPreference::Ipv4Only => Family::V4,
        }
    }

    /// Whether addresses of `family` are tried at all.
    pub fn allows(self, family: Family) -> bool {
        match self {
            FamilyPreference::Ipv4Only => family == Family::V4,
            FamilyPreference::Ipv6Only => family == Family::V6,
            _ => true,
        }
    }
}

/// Identifies one connect attempt of a client: [`Output::Connect`](crate::Output::Connect)
/// starts it; reports about it name it ([`Input::Connected`](crate::Input::Connected),
/// [`Input::ConnectFailed`](crate::Input::ConnectFailed)); [`Output::Cancel`](crate::Output::Cancel)
/// or, for the attempt that won, [`Output::Close`](crate::Output::Close) ends its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u32);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// TCP keepalive probing: after `idle` without traffic, a probe every `interval`; after
/// `count` unanswered probes the kernel declares the connection dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time without traffic before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: u32,
}

impl Keepalive {
    /// Go's `net.Dialer` defaults: 15 s idle, 15 s between probes, 9 probes.
    pub const GO_DEFAULT: Keepalive = Keepalive {
        idle: Duration::from_secs(15),
        interval: Duration::from_secs(15),
        count: 9,
    };
}

/// Socket options for every connect attempt: [`Config::socket_options`](crate::Config::socket_options).
///
/// The core does not set them (it has no socket): each
/// [`Output::Connect`](crate::Output::Connect) carries them, resolved for that attempt's
/// address family, and the driver applies them (the simulator records and models them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// `TCP_NODELAY`: send small writes at once (the core coalesces small sends itself).
    /// Default: on.
    pub nodelay: bool,
    /// TCP keepalive. Default: [`Keepalive::GO_DEFAULT`], so that a peer that vanished is
    /// found even on a connection that only reads. While [`user_timeout`](Self::user_timeout)
    /// is set (the default, on Linux), it decides when: the kernel drops a peer whose probes
    /// go unanswered once that long has passed since its last acknowledgement, after at least
    /// one probe, not after [`Keepalive::count`] probes. With the defaults that is about 30 s
    /// after the last acknowledgement; without a user timeout, `idle + count × interval`
    /// (two and a half minutes).
    pub keepalive: Option<Keepalive>,
    /// `TCP_USER_TIMEOUT` (Linux): how long written data may stay unacknowledged, and how
    /// long keepalive probes may go unanswered since the peer's last acknowledgement, before
    /// the kernel drops the connection. Default: 30 s, as
    /// [`Config::stall_timeout`](crate::Config::stall_timeout); `None` leaves the kernel's
    /// own (about 15 minutes for written data).
    pub user_timeout: Option<Duration>,
    /// Local address for IPv4 attempts (`nc -s`). Default: `None` (any).
    pub local_v4: Option<Ipv4Addr>,
    /// Local address for IPv6 attempts. Default: `None` (any).
    pub local_v6: Option<Ipv6Addr>,
    /// `SO_SNDBUF`. Default: `None` (the system's).
    pub send_buffer: Option<usize>,
    /// `SO_RCVBUF`. Default: `None` (the system's).
    pub recv_buffer: Option<usize>,
    /// `TCP_NOTSENT_LOWAT` (Linux): how many written bytes the kernel may hold unsent before
    /// it takes no more and stops reporting the socket writable. Default: 64 KiB; `None`
    /// leaves the system's (no limit).
    ///
    /// Without it a bulk sender fills the socket's whole send buffer (4 MiB on loopback),
    /// sleeps until a third of it drains, then writes a megabyte at once. The bursts keep
    /// the peer's receive window small: on loopback, TLS bulk reached 0.76-0.83x the
    /// throughput of tokio-rustls, whose clients write one record at a time; with 64 KiB,
    /// 1.03-1.10x, and plain bulk gained too (BENCHMARKS.md). Unsent bytes in the kernel are not delivered
    /// anyway; what is kept back stays in the client's send queue, counted.
    #[doc(alias = "TCP_NOTSENT_LOWAT")]
    pub unsent_low_watermark: Option<u32>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            nodelay: true,
            keepalive: Some(Keepalive::GO_DEFAULT),
            user_timeout: Some(Duration::from_secs(30)),
            local_v4: None,
            local_v6: None,
            send_buffer: None,
            recv_buffer: None,
            unsent_low_watermark: Some(64 * 1024),
        }
    }
}

impl SocketOptions {
    /// The options an attempt to `addr` gets: these, with the local address of its family.
    pub fn for_attempt(&self, addr: &SocketAddr) -> ConnectOptions {
        let local = match addr {
            SocketAddr::V4(_) => self.local_v4.map(IpAddr::V4),
            SocketAddr::V6(_) => self.local_v6.map(IpAddr::V6),
        };
        ConnectOptions {
            nodelay: self.nodelay,
            keepalive: self.keepalive,
            user_timeout: self.user_timeout,
            local: local.map(|ip| SocketAddr::new(ip, 0)),
            send_buffer: self.send_buffer,
            recv_buffer: self.recv_buffer,
            unsent_low_watermark: self.unsent_low_watermark,
        }
    }
}

/// The socket options of one connect attempt, as [`Output::Connect`](crate::Output::Connect)
/// carries them: [`SocketOptions`] with the local address of the attempt's family chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Set `TCP_NODELAY`.
    pub nodelay: bool,
    /// Enable TCP keepalive with these timings.
    pub keepalive: Option<Keepalive>,
    /// Set `TCP_USER_TIMEOUT` (Linux; ignore elsewhere).
    pub user_timeout: Option<Duration>,
    /// Bind to this local address (port 0: any) before connecting.
    pub local: Option<SocketAddr>,
    /// Set `SO_SNDBUF`.
    pub send_buffer: Option<usize>,
    /// Set `SO_RCVBUF`.
    pub recv_buffer: Option<usize>,
    /// Set `TCP_NOTSENT_LOWAT` (Linux; ignore elsewhere).
    #[doc(alias = "TCP_NOTSENT_LOWAT")]
    pub unsent_low_watermark: Option<u32>,
}
