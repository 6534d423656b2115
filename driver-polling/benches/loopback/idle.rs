//! Resident memory per idle connection: the bench runs itself as a child process holding the
//! server ends (the open-file limit is per process), and as a child client per contender, so
//! each measurement starts from a clean heap.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tcpclient_core::{Config, Event};
use tcpclient_polling::EventLoop;

/// The child that holds `n` server ends: prints its port, then accepts and keeps everything
/// until its standard input closes.
pub fn server_child(n: usize) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    let listener: std::net::TcpListener = socket.into();
    println!("{}", listener.local_addr()?.port());
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::with_capacity(n);
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut rest = Vec::new();
    io::stdin().read_to_end(&mut rest)?;
    Ok(())
}

/// The child client: `n` idle connections with `contender`; prints bytes per connection.
pub fn client_child(contender: &str, port: u16, n: usize) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let per_connection = match contender {
        "ours" => ours(addr, n)?,
        "tokio" => tokio(addr, n)?,
        "ours-tokio" => crate::tokio_driver::idle(addr, n, resident_bytes)?,
        other => return Err(io::Error::other(format!("unknown contender {other}"))),
    };
    println!("{per_connection}");
    Ok(())
}

fn ours(addr: SocketAddr, n: usize) -> io::Result<f64> {
    let mut event_loop = EventLoop::new()?;
    // One configuration shared by every connection, as a program with many connections to
    // one server would.
    let config = Arc::new(Config::new());
    event_loop.turn(Some(Duration::ZERO))?;
    let before = resident_bytes();
    for _ in 0..n {
        event_loop.connect(addr, config.clone());
    }
    let mut connected = 0;
    while connected < n {
        event_loop.turn(Some(Duration::from_millis(100)))?;
        while let Some((_, event)) = event_loop.poll_event() {
            match event {
                Event::Connected(_) => connected += 1,
                Event::Closed(report) => return Err(io::Error::other(report.to_string())),
                _ => {}
            }
        }
    }
    Ok((resident_bytes() - before) as f64 / n as f64)
}

fn tokio(addr: SocketAddr, n: usize) -> io::Result<f64> {
    use tokio::io::AsyncReadExt;
    let rt = crate::clients::runtime()?;
    rt.block_on(async {
        tokio::task::yield_now().await;
        let before = resident_bytes();
        let connected = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let connected = connected.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                connected.fetch_add(1, Ordering::Relaxed);
                let mut buf = [0u8; 16];
                stream.read(&mut buf).await
            });
        }
        while connected.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((resident_bytes() - before) as f64 / n as f64)
    })
}

/// Resident set size of this process, in bytes.
fn resident_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// One measurement: a fresh server child, a fresh client child, the client's figure.
pub fn measure(contender: &str, n: usize) -> io::Result<f64> {
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .args(["--idle-server", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut port = String::new();
    BufReader::new(
        server
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?,
    )
    .read_line(&mut port)?;
    let output = Command::new(&exe)
        .args(["--idle-client", contender, port.trim(), &n.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    drop(server.stdin.take());
    let _ = server.wait();
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map_err(|_| io::Error::other(format!("the {contender} child said {text:?}")))
}
