//! Loopback benchmarks: the polling driver side by side with the peers users would pick
//! (blocking std sockets, tokio, rustls on std, tokio-rustls), in one run, interleaved.
//!
//! ```sh
//! cargo bench -p tcpclient-polling --bench loopback             # the full run (a few minutes)
//! cargo bench -p tcpclient-polling --bench loopback -- --reps 3 --only bulk
//! cargo test  -p tcpclient-polling --bench loopback -- --smoke  # tiny sizes, for CI
//! driver-polling/benches/instructions.sh                        # instructions per unit of work
//! ```
//!
//! Every section prints a Markdown table: the median of the runs, their range, and how ours
//! compares with each peer. BENCHMARKS.md holds the latest full run.

// A benchmark is a driver: it reads the clock and opens sockets.
#![allow(clippy::disallowed_methods, missing_docs)]

mod clients;
mod concurrent;
mod connections;
mod eyeballs;
mod idle;
mod pinning;
mod pipeline;
mod report;
mod servers;
mod tokio_driver;

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use report::{
    BYTES_PER_CONNECTION, COMPLETIONS_PER_SECOND, GBPS, MILLISECONDS, PER_SECOND, Variant, section,
};
use tcpclient_testkit::Pki;

/// How big each job is.
struct Sizes {
    bulk: usize,
    small: usize,
    connections: usize,
    tls_connections: usize,
    idle: usize,
    /// Clients in flight at once, and the bytes each has echoed.
    concurrent: (usize, usize),
    file: u64,
}

const FULL: Sizes = Sizes {
    bulk: 1 << 30,
    small: 64 << 20,
    connections: 4000,
    tls_connections: 1000,
    idle: 10_000,
    concurrent: (1000, 64 << 10),
    file: 512 << 20,
};

const SMOKE: Sizes = Sizes {
    bulk: 1 << 20,
    small: 64 << 10,
    connections: 20,
    tls_connections: 10,
    idle: 100,
    concurrent: (20, 4 << 10),
    file: 1 << 20,
};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(n) = arg("--idle-server") {
        return idle::server_child(n.parse().map_err(io::Error::other)?);
    }
    if let Some(contender) = arg("--idle-client") {
        let rest: Vec<&String> = args
            .iter()
            .skip_while(|a| *a != "--idle-client")
            .skip(2)
            .collect();
        let (port, n) = (
            rest[0].parse().map_err(io::Error::other)?,
            rest[1].parse().map_err(io::Error::other)?,
        );
        return idle::client_child(&contender, port, n);
    }
    // Every client below runs on one core and every server thread on the other.
    pinning::client();
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut sizes = if smoke { SMOKE } else { FULL };
    // The sizes of the jobs, for profiling and for `instructions.sh`, which counts each
    // variant's instructions at two sizes: `--bulk-mib N` (both bulk rows), `--small-kib N`,
    // `--connections N`, `--tls-connections N`.
    let size = |name: &str| arg(name).and_then(|n| n.parse::<usize>().ok());
    if let Some(mib) = size("--bulk-mib") {
        sizes.bulk = mib << 20;
    }
    if let Some(kib) = size("--small-kib") {
        sizes.small = kib << 10;
    }
    if let Some(n) = size("--connections") {
        sizes.connections = n;
    }
    if let Some(n) = size("--tls-connections") {
        sizes.tls_connections = n;
    }
    let sizes = &sizes;
    let reps = arg("--reps")
        .and_then(|r| r.parse().ok())
        .unwrap_or(if smoke { 1 } else { 5 });
    let only = arg("--only");
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|o| o == name))
    };

    println!(
        "## tcpclient loopback benchmarks{}",
        if smoke { " (smoke sizes)" } else { "" }
    );
    let started = Instant::now();
    let pki = Pki::new();
    let server_tls = pki.server_config_with_suites(vec![
        rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ]);
    let client_tls = pki.client_tls();
    let rustls_config = client_tls.client_config().clone();
    // The key exchange before post-quantum: what the hybrid costs a handshake.
    let classic_tls = {
        let mut provider = (*tcpclient_core::tls::default_provider()).clone();
        provider
            .kx_groups
            .retain(|g| g.name() == rustls::NamedGroup::X25519);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(pki.roots())
            .with_no_client_auth();
        tcpclient_core::TlsConfig::new(Arc::new(config))
    };
    let rt = clients::runtime()?;

    if wanted("bulk") {
        let addr = servers::sink(None);
        let size = 16 * 1024;
        let (message, count) = (Bytes::from(vec![7u8; size]), sizes.bulk / size);
        let limit_message = vec![7u8; 256 * 1024];
        let gbps = |start: Instant| sizes.bulk as f64 / start.elapsed().as_secs_f64() / 1e9;
        section(
            &format!("Bulk send, plain: {} in 16 KiB messages", human(sizes.bulk)),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: one Send per message", || {
                    let start = Instant::now();
                    clients::ours_send(addr, None, &message, count).map(|()| gbps(start))
                }),
                Variant::ours("ours on tokio: send_all per message", || {
                    let start = Instant::now();
                    tokio_driver::send(&rt, addr, None, &message, count).map(|()| gbps(start))
                }),
                Variant::peer("std TcpStream, write_all per message", || {
                    let start = Instant::now();
                    clients::std_send(addr, &message, count, None).map(|()| gbps(start))
                }),
                Variant::peer("tokio TcpStream, write_all per message", || {
                    let start = Instant::now();
                    clients::tokio_send(&rt, addr, &message, count, None).map(|()| gbps(start))
                }),
                Variant::peer("std, 256 KiB writes: the loopback limit", || {
                    let start = Instant::now();
                    clients::std_send(addr, &limit_message, sizes.bulk / limit_message.len(), None)
                        .map(|()| gbps(start))
                }),
            ],
        )?;
    }

    if wanted("tls") {
        let addr = servers::sink(Some(server_tls.clone()));
        let size = 16 * 1024;
        let (message, count) = (Bytes::from(vec![7u8; size]), sizes.bulk / size);
        let gbps = |start: Instant| sizes.bulk as f64 / start.elapsed().as_secs_f64() / 1e9;
        section(
            &format!(
                "Bulk send, TLS 1.3 AES-128-GCM: {} in 16 KiB messages",
                human(sizes.bulk)
            ),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: one Send per message", || {
                    let start = Instant::now();
                    clients::ours_send(addr, Some(&client_tls), &message, count)
                        .map(|()| gbps(start))
                }),
                Variant::ours("ours on tokio: send_all per message", || {
                    let start = Instant::now();
                    tokio_driver::send(&rt, addr, Some(&client_tls), &message, count)
                        .map(|()| gbps(start))
                }),
                Variant::peer("tokio-rustls, write_all per message", || {
                    let start = Instant::now();
                    clients::tokio_rustls_send(&rt, addr, &rustls_config, &message, count)
                        .map(|()| gbps(start))
                }),
                Variant::peer("rustls StreamOwned on std, write_all per message", || {
                    let start = Instant::now();
                    clients::rustls_std_send(addr, &rustls_config, &message, count)
                        .map(|()| gbps(start))
                }),
            ],
        )?;
    }

    if wanted("small") {
        let addr = servers::sink(None);
        static MESSAGE: [u8; 64] = [b'm'; 64];
        let count = sizes.small / MESSAGE.len();
        let gbps = |start: Instant| sizes.small as f64 / start.elapsed().as_secs_f64() / 1e9;
        let buffer = Some(64 * 1024);
        section(
            &format!("64-byte messages, plain: {} in all", human(sizes.small)),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: one Send per message, no caller buffering", || {
                    let start = Instant::now();
                    clients::ours_send(addr, None, &Bytes::from_static(&MESSAGE), count)
                        .map(|()| gbps(start))
                }),
                Variant::ours(
                    "ours, send_slice: one copied send per message (no Bytes)",
                    || {
                        let start = Instant::now();
                        clients::ours_send_slice(addr, &MESSAGE, count).map(|()| gbps(start))
                    },
                ),
                Variant::peer("std, one write per message", || {
                    let start = Instant::now();
                    clients::std_send(addr, &MESSAGE, count, None).map(|()| gbps(start))
                }),
                Variant::peer("std through a 64 KiB BufWriter", || {
                    let start = Instant::now();
                    clients::std_send(addr, &MESSAGE, count, buffer).map(|()| gbps(start))
                }),
                Variant::peer("tokio, write_all per message", || {
                    let start = Instant::now();
                    clients::tokio_send(&rt, addr, &MESSAGE, count, None).map(|()| gbps(start))
                }),
                Variant::peer(
                    "std writev of 1024 gathered 64-byte buffers per call",
                    || {
                        let start = Instant::now();
                        clients::std_writev(addr, &MESSAGE, count, 1024).map(|()| gbps(start))
                    },
                ),
                Variant::peer("tokio through a 64 KiB BufWriter", || {
                    let start = Instant::now();
                    clients::tokio_send(&rt, addr, &MESSAGE, count, buffer).map(|()| gbps(start))
                }),
            ],
        )?;
    }

    if wanted("receive") {
        let addr = servers::source(sizes.bulk);
        let expected = (sizes.bulk / (16 * 1024) * 16 * 1024) as u64;
        let gbps = |start: Instant, received: u64| {
            if received == expected {
                Ok(received as f64 / start.elapsed().as_secs_f64() / 1e9)
            } else {
                Err(io::Error::other(format!(
                    "received {received} of {expected}"
                )))
            }
        };
        section(
            &format!(
                "Bulk receive, plain: {} from the server in 16 KiB writes, 64 KiB reads",
                human(sizes.bulk)
            ),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: EventLoop, each Data consumed as it comes", || {
                    let start = Instant::now();
                    clients::ours_receive(addr).and_then(|n| gbps(start, n))
                }),
                Variant::peer("std TcpStream, read loop", || {
                    let start = Instant::now();
                    clients::std_receive(addr).and_then(|n| gbps(start, n))
                }),
                Variant::peer("tokio TcpStream, read loop", || {
                    let start = Instant::now();
                    clients::tokio_receive(&rt, addr).and_then(|n| gbps(start, n))
                }),
            ],
        )?;
    }

    if wanted("echo") {
        let addr = servers::echo();
        let size = 16 * 1024;
        let (message, count) = (Bytes::from(vec![7u8; size]), sizes.bulk / size);
        let gbps = |start: Instant| sizes.bulk as f64 / start.elapsed().as_secs_f64() / 1e9;
        section(
            &format!(
                "Echo round trip, plain: {} out and back, 16 KiB messages",
                human(sizes.bulk)
            ),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: one loop sends and receives", || {
                    let start = Instant::now();
                    clients::ours_echo(addr, &message, count).map(|()| gbps(start))
                }),
                Variant::ours("ours on tokio: a sender and the stream's reads", || {
                    let start = Instant::now();
                    tokio_driver::echo(&rt, addr, &message, count).map(|()| gbps(start))
                }),
                Variant::peer("std: a writer thread and a reader", || {
                    let start = Instant::now();
                    clients::std_echo(addr, &message, count).map(|()| gbps(start))
                }),
                Variant::peer("tokio: split halves joined on one task", || {
                    let start = Instant::now();
                    clients::tokio_echo(&rt, addr, &message, count).map(|()| gbps(start))
                }),
            ],
        )?;
    }

    if wanted("concurrent") {
        let addr = servers::echo_with_backlog(4096)?;
        let (n, size) = sizes.concurrent;
        let multi = concurrent::multi_thread_runtime()?;
        section(
            &format!(
                "{n} concurrent clients, plain: each connects, has {} echoed, closes; all in flight at once",
                human(size)
            ),
            COMPLETIONS_PER_SECOND,
            reps,
            vec![
                Variant::ours("ours: one EventLoop", || concurrent::ours(addr, n, size)),
                Variant::ours(
                    "ours on tokio: a task per connection (current-thread runtime)",
                    || concurrent::ours_on_tokio(&rt, addr, n, size),
                ),
                Variant::peer(
                    "tokio: a task per connection, current-thread runtime",
                    || concurrent::tokio(&rt, addr, n, size),
                ),
                Variant::peer("tokio: a task per connection, multi-thread runtime", || {
                    concurrent::tokio(&multi, addr, n, size)
                }),
            ],
        )?;
    }

    if wanted("connections") {
        let plain = servers::request_response(None);
        let n = sizes.connections;
        // A size of 0 (instructions.sh counts the two rows apart) leaves its table out.
        if n > 0 {
            section(
                &format!(
                    "Connections per second, plain: {n} × (connect, 16-byte request, response, close)"
                ),
                PER_SECOND,
                reps,
                vec![
                    Variant::ours("ours: one loop, one connection after another", || {
                        connections::ours(plain, None, n)
                    }),
                    Variant::ours("ours on tokio: one task", || {
                        tokio_driver::connections(&rt, plain, None, n)
                    }),
                    Variant::peer("std, blocking", || connections::std(plain, None, n)),
                    Variant::peer("tokio, one task", || {
                        connections::tokio(&rt, plain, None, n)
                    }),
                ],
            )?;
        }
        let tls = servers::request_response(Some(server_tls.clone()));
        let n = sizes.tls_connections;
        if n > 0 {
            section(
                &format!(
                    "Connections per second, TLS 1.3: {n} × (connect, handshake, request, response, close)"
                ),
                PER_SECOND,
                reps,
                vec![
                    Variant::ours("ours: one loop, one connection after another", || {
                        connections::ours(tls, Some(&client_tls), n)
                    }),
                    Variant::ours("ours on tokio: one task", || {
                        tokio_driver::connections(&rt, tls, Some(&client_tls), n)
                    }),
                    Variant::peer("rustls StreamOwned on std", || {
                        connections::std(tls, Some(&rustls_config), n)
                    }),
                    Variant::peer("tokio-rustls, one task", || {
                        connections::tokio(&rt, tls, Some(&rustls_config), n)
                    }),
                    Variant::peer(
                        "ours with X25519 alone, no post-quantum hybrid (its cost)",
                        || connections::ours(tls, Some(&classic_tls), n),
                    ),
                ],
            )?;
        }
    }

    if wanted("idle") {
        let n = sizes.idle;
        section(
            &format!("Resident memory per idle plain connection, {n} connections in one loop"),
            BYTES_PER_CONNECTION,
            reps,
            vec![
                Variant::ours("ours: EventLoop", || idle::measure("ours", n)),
                Variant::ours("ours on tokio: a driver task per connection", || {
                    idle::measure("ours-tokio", n)
                }),
                Variant::peer(
                    "tokio: a task per connection (current-thread runtime)",
                    || idle::measure("tokio", n),
                ),
            ],
        )?;
    }

    if wanted("eyeballs") {
        let net = eyeballs::DualStack::new(servers::echo())?;
        section(
            "Happy Eyeballs: first address black-holed ([::1], SYNs dropped), second answers (127.0.0.1)",
            MILLISECONDS,
            reps,
            vec![
                Variant::ours("ours: EventLoop, 250 ms attempt delay", || {
                    eyeballs::ours(&net)
                }),
                Variant::peer(
                    "hyper-util HttpConnector, 300 ms happy eyeballs timeout",
                    || eyeballs::hyper_util(&rt, &net),
                ),
                Variant::peer(
                    "tokio TcpStream::connect, one address after the other (capped at 3 s each)",
                    || eyeballs::tokio_sequential(&rt, &net),
                ),
            ],
        )?;
    }

    if wanted("pipeline") {
        let addr = servers::sink(None);
        let path = std::env::temp_dir().join(format!("tcpclient-bench-{}.bin", std::process::id()));
        pipeline::make_file(&path, sizes.file)?;
        let file = Arc::new(path);
        let program = pipeline::build_cli()?;
        section(
            &format!(
                "Kamaelia pipeline: a {} file at full rate",
                human(sizes.file as usize)
            ),
            GBPS,
            reps,
            vec![
                Variant::ours("ours: tcpclient --send-file (the CLI, a process)", || {
                    pipeline::cli(&program, &file, addr, sizes.file)
                }),
                Variant::peer("std::io::copy from the file to a socket", || {
                    pipeline::std_copy(&file, addr, sizes.file)
                }),
            ],
        )?;
        let _ = std::fs::remove_file(&*file);
    }

    println!("\n(all sections: {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    }
}
