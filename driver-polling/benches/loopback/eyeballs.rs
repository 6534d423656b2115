//! Time to the first echoed byte when the first address a name resolves to is black-holed
//! (an IPv6 route that swallows SYNs) and the second answers: Happy Eyeballs at work, against
//! a sequential connect and hyper-util's `HttpConnector`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{Config, Event};
use tcpclient_polling::{EventLoop, FixedResolver};
use tcpclient_testkit::loopback::{BlackHole, black_hole};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the sequential connect waits for the black-holed address before it moves on:
/// without a cap, the kernel's SYN retries take about two minutes.
pub const SEQUENTIAL_CAP: Duration = Duration::from_secs(3);

/// A black-holed `[::1]` port and an echo server on 127.0.0.1.
pub struct DualStack {
    pub v6: SocketAddr,
    pub v4: SocketAddr,
    /// It must outlive the measurements.
    _hole: BlackHole,
}

impl DualStack {
    /// The hole takes the echo server's port number on `[::1]`: hyper-util puts the URI's
    /// port on every address its resolver gives.
    pub fn new(v4_echo: SocketAddr) -> io::Result<Self> {
        let hole = black_hole(SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], v4_echo.port())))?;
        Ok(Self {
            v6: hole.addr,
            v4: v4_echo,
            _hole: hole,
        })
    }
}

/// Milliseconds from the start of the connect to the first echoed byte.
fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Ours: an `EventLoop` whose resolver answers both families; the default attempt delay
/// (250 ms).
pub fn ours(net: &DualStack) -> io::Result<f64> {
    let mut event_loop = EventLoop::with_resolver(FixedResolver {
        v6: vec![net.v6],
        v4: vec![net.v4],
    })?;
    let start = Instant::now();
    let id = event_loop.connect(("dual.test", 80), Config::new());
    event_loop
        .send(id, Bytes::from_static(b"x"))
        .map_err(io::Error::other)?;
    loop {
        event_loop.turn(Some(Duration::from_secs(5)))?;
        while let Some((_, event)) = event_loop.poll_event() {
            match event {
                Event::Data(_) => {
                    let took = millis(start);
                    let _ = event_loop.abort(id);
                    return Ok(took);
                }
                Event::Closed(report) => return Err(io::Error::other(report.to_string())),
                _ => {}
            }
        }
    }
}

/// tokio's `TcpStream::connect` over the two addresses in order, each capped at
/// [`SEQUENTIAL_CAP`]: what a client without Happy Eyeballs does.
pub fn tokio_sequential(rt: &tokio::runtime::Runtime, net: &DualStack) -> io::Result<f64> {
    rt.block_on(async {
        let start = Instant::now();
        for addr in [net.v6, net.v4] {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(mut stream)) = tokio::time::timeout(SEQUENTIAL_CAP, connect).await {
                stream.write_all(b"x").await?;
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).await?;
                return Ok(millis(start));
            }
        }
        Err(io::Error::other("no address answered"))
    })
}

/// hyper-util's `HttpConnector` with its default Happy Eyeballs timeout (300 ms), given the
/// same two addresses by its resolver.
pub fn hyper_util(rt: &tokio::runtime::Runtime, net: &DualStack) -> io::Result<f64> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::connect::dns::Name;
    use tower_service::Service;

    #[derive(Clone)]
    struct Addrs(Vec<SocketAddr>);

    impl Service<Name> for Addrs {
        type Response = std::vec::IntoIter<SocketAddr>;
        type Error = io::Error;
        type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Name) -> Self::Future {
            let addrs = self.0.clone();
            Box::pin(async move { Ok(addrs.into_iter()) })
        }
    }

    rt.block_on(async {
        let mut connector = HttpConnector::new_with_resolver(Addrs(vec![net.v6, net.v4]));
        connector.set_happy_eyeballs_timeout(Some(Duration::from_millis(300)));
        let uri: hyper::Uri = format!("http://dual.test:{}/", net.v4.port())
            .parse()
            .map_err(io::Error::other)?;
        let start = Instant::now();
        let stream = connector.call(uri).await.map_err(io::Error::other)?;
        let mut stream = stream.into_inner();
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        Ok(millis(start))
    })
}
