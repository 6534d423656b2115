//! Where a client connects: apart from the policy ([`Config`](crate::Config)), so that one
//! configuration serves clients to any number of servers.

use std::net::SocketAddr;

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
        Self::new(addr.ip().to_string(), addr.port())
    }
}

impl<H: Into<String>> From<(H, u16)> for Destination {
    /// The server at `(host, port)`, as [`Destination::new`].
    fn from((host, port): (H, u16)) -> Self {
        Self::new(host, port)
    }
}
