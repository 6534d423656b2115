//! Where a client connects: apart from the policy ([`Config`](crate::Config)), so that one
//! configuration serves clients to any number of servers.

use std::net::{IpAddr, SocketAddr};

use rustls::pki_types::ServerName;

/// The server a [`Client`](crate::Client) connects to: host, port, and the name TLS verifies.
///
/// Kamaelia's `TCPClient(host, port)`. Everything else about a connection is policy, in a
/// [`Config`](crate::Config) that many clients share.
///
/// ```
/// use std::time::Instant;
/// use std::sync::Arc;
/// use tcpclient_core::{Client, Config, Destination};
/// use tcpclient_core::rustls::pki_types::ServerName;
///
/// let policy = Arc::new(Config::new());
/// let now = Instant::now();
/// // One policy, two servers; the second is reached by address, its certificate by name.
/// let mail = Client::new(Destination::new("mail.example.org", 25), policy.clone(), now);
/// let name = ServerName::try_from("db.internal")?;
/// let db = Destination::new("10.0.0.7", 5432).with_server_name(name);
/// let db = Client::new(db, policy, now);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "TCPClient")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Destination {
    /// Host name or IP address literal. An IP literal is used as is; a name is resolved by
    /// the driver ([`Output::Resolve`](crate::Output::Resolve)).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The name sent in SNI and checked against the server's certificate. Default: the host,
    /// when it is a DNS name or an IP address; `None` otherwise (TLS then fails to start).
    pub server_name: Option<ServerName<'static>>,
}

impl Destination {
    /// The server at `host:port`, its certificate checked against `host`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_owned()).ok();
        Self {
            host,
            port,
            server_name,
        }
    }

    /// Checks the server's certificate against `name` instead of the host (a server reached
    /// by address, or through another name).
    pub fn with_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = Some(name);
        self
    }
}

impl From<SocketAddr> for Destination {
    /// The server at `addr`, its certificate checked against the address.
    fn from(addr: SocketAddr) -> Self {
        // The name is the address itself: no need to parse it back from the host's text.
        Self {
            host: address_text(addr.ip()),
            port: addr.port(),
            server_name: Some(ServerName::from(addr.ip())),
        }
    }
}

/// `ip` as text, as `to_string` writes it. IPv4 is written digit by digit: the formatting
/// machinery costs about 1,300 instructions, 8 % of what the polling driver spends on a
/// whole connection to a local server, and a program connecting by address pays it per
/// client.
fn address_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

impl<H: Into<String>> From<(H, u16)> for Destination {
    /// The server at `(host, port)`, as [`Destination::new`].
    fn from((host, port): (H, u16)) -> Self {
        Self::new(host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_address_names_the_server_as_its_text_would() {
        for addr in ["127.0.0.1:80", "[::1]:443", "[fe80::1]:8080"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let by_text = Destination::new(addr.ip().to_string(), addr.port());
            assert_eq!(Destination::from(addr), by_text);
            assert!(matches!(
                by_text.server_name,
                Some(ServerName::IpAddress(_))
            ));
        }
    }

    #[test]
    fn an_ipv4_address_is_written_as_to_string_writes_it() {
        let octets = [0, 1, 9, 10, 42, 99, 100, 109, 110, 199, 200, 250, 255];
        for a in octets {
            for b in octets {
                let ip = IpAddr::from([a, b, 255 - b, 255 - a]);
                assert_eq!(address_text(ip), ip.to_string());
            }
        }
        let ip: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(address_text(ip), "fe80::1");
    }
}
