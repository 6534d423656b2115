//! Name resolution, one address family at a time: the system's resolver, a fixed table, or
//! any [`Resolve`] a program brings.

use std::io;
use std::net::SocketAddr;

use tcpclient_core::Family;

/// Turns a host name into addresses: what a driver asks when a client needs a name
/// resolved ([`Output::Resolve`](tcpclient_core::Output::Resolve)).
///
/// Drivers ask for each address family on their own (the `AAAA` and the `A` lookup, RFC 8305
/// section 3), so that the client can start on whichever answers first. Lookups run off the
/// driver's loop (on `tcpclient-polling`'s helper threads, on tokio's blocking pool), so an
/// implementation may block. The default is [`SystemResolver`]; tests and programs with
/// their own name service plug theirs in (`EventLoop::with_resolver` in
/// `tcpclient-polling`, `Tokio::with_resolver` in `tcpclient-tokio`).
///
/// ```
/// use std::net::SocketAddr;
/// use tcpclient_core::Family;
/// use tcpclient_driver::Resolve;
///
/// /// Every name is the local host, over both families.
/// struct Local;
///
/// impl Resolve for Local {
///     fn resolve(&self, _host: &str, port: u16, family: Family) -> std::io::Result<Vec<SocketAddr>> {
///         let ip = match family {
///             Family::V6 => "::1".parse().unwrap(),
///             Family::V4 => "127.0.0.1".parse().unwrap(),
///         };
///         Ok(vec![SocketAddr::new(ip, port)])
///     }
/// }
///
/// let addrs = Local.resolve("anything", 7, Family::V4)?;
/// assert_eq!(addrs, ["127.0.0.1:7".parse::<SocketAddr>()?]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// Returns the addresses of `host` in `family`, each with `port`. A name with no
    /// address of that family may answer an empty list or an error of kind
    /// [`io::ErrorKind::NotFound`].
    fn resolve(&self, host: &str, port: u16, family: Family) -> io::Result<Vec<SocketAddr>>;
}

/// Answers every name from a fixed table, one list per family, ports as given: for tests,
/// and for programs that resolve names their own way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedResolver {
    /// The IPv6 addresses (the AAAA answer).
    pub v6: Vec<SocketAddr>,
    /// The IPv4 addresses (the A answer).
    pub v4: Vec<SocketAddr>,
}

impl Resolve for FixedResolver {
    fn resolve(&self, _host: &str, _port: u16, family: Family) -> io::Result<Vec<SocketAddr>> {
        Ok(match family {
            Family::V6 => self.v6.clone(),
            Family::V4 => self.v4.clone(),
        })
    }
}

/// The system's resolver (`getaddrinfo`), asked once per address family.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16, family: Family) -> io::Result<Vec<SocketAddr>> {
        let hints = dns_lookup::AddrInfoHints {
            socktype: dns_lookup::SockType::Stream.into(),
            address: match family {
                Family::V4 => libc::AF_INET,
                Family::V6 => libc::AF_INET6,
            },
            ..dns_lookup::AddrInfoHints::default()
        };
        let service = port.to_string();
        let found = dns_lookup::getaddrinfo(Some(host), Some(&service), Some(hints)).map_err(
            |e| match e.kind() {
                // "no such name", "no address of this family": all say the name is not
                // there, as far as this family goes.
                dns_lookup::LookupErrorKind::Again => io::Error::from(io::ErrorKind::TimedOut),
                _ => io::Error::new(io::ErrorKind::NotFound, io::Error::from(e)),
            },
        )?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for info in found {
            let addr = info?.sockaddr;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(addrs)
    }
}
