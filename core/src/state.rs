//! Where a client is in its lifecycle: the public [`Phase`] and the internal state it summarises.

use std::fmt;
use std::net::SocketAddr;

/// The lifecycle phase of a client, from [`Client::phase`](crate::Client::phase).
///
/// `Delay → Resolving → Connecting → Connected ⇄ TlsHandshaking → Draining → Closed`, with
/// every phase able to jump to `Closed` on an error or an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for [`Config::delay`](crate::Config::delay) to pass.
    Delay,
    /// Waiting for the driver to resolve the host name.
    Resolving,
    /// A connect attempt is under way.
    Connecting,
    /// Connected; data flows.
    Connected,
    /// Connected, and the TLS handshake is under way.
    TlsHandshaking,
    /// Shutting down gracefully: flushing, half-closed, or reading until the peer's EOF.
    Draining,
    /// Closed; [`Event::Closed`](crate::Event::Closed) has been emitted.
    Closed,
}

impl Phase {
    /// The phase's name in traces and tables: its variant's name.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Delay => "Delay",
            Phase::Resolving => "Resolving",
            Phase::Connecting => "Connecting",
            Phase::Connected => "Connected",
            Phase::TlsHandshaking => "TlsHandshaking",
            Phase::Draining => "Draining",
            Phase::Closed => "Closed",
        }
    }

    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 7] = [
        Phase::Delay,
        Phase::Resolving,
        Phase::Connecting,
        Phase::Connected,
        Phase::TlsHandshaking,
        Phase::Draining,
        Phase::Closed,
    ];
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Delay => "waiting for the start delay",
            Phase::Resolving => "resolving",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::TlsHandshaking => "in the TLS handshake",
            Phase::Draining => "shutting down",
            Phase::Closed => "closed",
        })
    }
}

/// The socket-level state. Data that only makes sense in one state lives in its variant.
#[derive(Debug)]
pub(crate) enum State {
    Delay,
    Resolving,
    Connecting(Connecting),
    Open(Open),
    Closed,
}

/// Attempts over the resolved addresses, one at a time.
#[derive(Debug)]
pub(crate) struct Connecting {
    pub(crate) addrs: Vec<SocketAddr>,
    /// Index of the attempt under way.
    pub(crate) current: usize,
    /// The driver holds a socket for the current attempt (until the next `Close`).
    pub(crate) socket: bool,
}

impl Connecting {
    pub(crate) fn new(addrs: Vec<SocketAddr>) -> Self {
        Self {
            addrs: interleave_families(addrs),
            current: 0,
            socket: false,
        }
    }

    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addrs.get(self.current).copied()
    }

    pub(crate) fn is_last(&self) -> bool {
        self.current + 1 >= self.addrs.len()
    }
}

/// A connected socket.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) peer: SocketAddr,
    /// The peer's stream has ended (FIN, or TLS `close_notify`).
    pub(crate) peer_closed: bool,
    /// The TCP read side saw EOF.
    pub(crate) tcp_eof: bool,
    /// We sent our FIN.
    pub(crate) fin_sent: bool,
}

/// Orders addresses as RFC 8305 section 4 suggests: alternate the families, starting with
/// the family of the first address, keeping the resolver's order within each family and
/// dropping duplicates. A broken IPv6 route then costs one attempt, not all of them.
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut unique = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    let Some(first) = unique.first() else {
        return unique;
    };
    let first_is_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut ordered = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return ordered,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_starting_with_the_resolvers_first_choice() {
        let input = vec![
            addr("[::1]:1"),
            addr("[::2]:1"),
            addr("[::3]:1"),
            addr("10.0.0.1:1"),
            addr("[::1]:1"),
        ];
        assert_eq!(
            interleave_families(input),
            [
                addr("[::1]:1"),
                addr("10.0.0.1:1"),
                addr("[::2]:1"),
                addr("[::3]:1")
            ]
        );
    }
}
