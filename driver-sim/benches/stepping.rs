//! How fast the simulator runs on one core, side by side with turmoil stepping the same hosts
//! for the same simulated time with nothing to do: the part of a run that is turmoil's own
//! stepping, which no change of ours can take away.
//!
//! ```sh
//! cargo bench -p tcpclient-sim --bench stepping                # 2,000 seeds a row, 3 runs
//! cargo bench -p tcpclient-sim --bench stepping -- --seeds 500 --reps 1
//! cargo test  -p tcpclient-sim --bench stepping -- --smoke     # 10 seeds, for CI
//! ```
//!
//! Rows:
//! - **the project's sweep**: `Scenario::from_seed` and `run`, as `tcpclient-sim sweep
//!   --jobs 1` runs them, in lifecycles per second;
//! - **a user's protocol**: a request/response protocol on the [`Harness`], 100 requests 30 ms
//!   apart (about 3 s simulated), in seeds per second; next to the same protocol on turmoil's
//!   own sockets without the harness or the driver, and on the harness with a 5 ms tick;
//! - under each, **turmoil alone**: as many hosts, the same tick, stepped for the same
//!   simulated time, idle.

// A benchmark reads the clock.
#![allow(clippy::disallowed_methods, missing_docs)]

use std::time::{Duration, Instant};

use tcpclient_core::Config;
use tcpclient_sim::{Harness, Network, Scenario, run, turmoil};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const REQUESTS: u32 = 100;
const PAUSE: Duration = Duration::from_millis(30);
const PORT: u16 = 7000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let smoke = args.iter().any(|a| a == "--smoke");
    let count = arg("--seeds").unwrap_or(if smoke { 10 } else { 2000 });
    let reps = arg("--reps").unwrap_or(if smoke { 1 } else { 3 });
    let seeds: Vec<u64> = (0..count).collect();

    println!("one thread; {count} seeds a row; the median of {reps} runs (and their range)\n");
    println!("| row | per second | simulated per seed | ratio |");
    println!("|---|---|---|---|");

    // The project's sweep, and turmoil stepping the same hosts idle for as long.
    let sweep = measure(reps, &seeds, |seed| {
        let scenario = Scenario::from_seed(seed);
        let outcome = run(&scenario);
        Shape {
            simulated: outcome.simulated,
            tick: scenario.tick,
            servers: match scenario.network {
                Network::SingleStack => 1,
                Network::DualStack { .. } => 2,
            },
        }
    });
    let idle = idle_as_long(reps, &sweep.shapes);
    row("the project's sweep (lifecycles)", &sweep, None);
    row(
        "  turmoil alone: its hosts, ticks and time, idle",
        &idle,
        Some(&sweep),
    );

    // A user's protocol on the harness, on turmoil's sockets, and turmoil idle as long.
    let user = measure(reps, &seeds, on_harness(Duration::from_millis(1)));
    let coarse = measure(reps, &seeds, on_harness(Duration::from_millis(5)));
    let bare = measure(reps, &seeds, bare_protocol);
    let user_idle = idle_as_long(reps, &user.shapes);
    row("a user's protocol on the harness (seeds)", &user, None);
    row(
        "  the same protocol on turmoil's sockets, no harness",
        &bare,
        Some(&user),
    );
    row(
        "  turmoil alone: two hosts, as long, idle",
        &user_idle,
        Some(&user),
    );
    row(
        "  the same on the harness, with a 5 ms tick",
        &coarse,
        Some(&user),
    );
}

/// One seed of the user's protocol on the harness, at `tick` (1 ms is the harness's default).
fn on_harness(tick: Duration) -> impl FnMut(u64) -> Shape {
    move |seed| {
        let verdict = user_harness(seed).tick(tick).run();
        if !verdict.violations.is_empty() {
            eprintln!("seed {seed}: {:?}", verdict.violations);
        }
        Shape {
            simulated: verdict.simulated,
            tick,
            servers: 1,
        }
    }
}

/// What a run simulated: for how long, at which tick, with how many servers.
#[derive(Debug, Clone, Copy)]
struct Shape {
    simulated: Duration,
    tick: Duration,
    servers: usize,
}

/// Runs of one row: seeds per second of each, and what each seed simulated.
struct Measured {
    per_second: Vec<f64>,
    shapes: Vec<Shape>,
}

/// `one` over every item, `reps` times.
fn measure<T: Copy>(reps: u64, items: &[T], mut one: impl FnMut(T) -> Shape) -> Measured {
    let mut per_second = Vec::new();
    let mut shapes = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        shapes = items.iter().map(|item| one(*item)).collect();
        per_second.push(items.len() as f64 / started.elapsed().as_secs_f64());
    }
    per_second.sort_by(f64::total_cmp);
    Measured { per_second, shapes }
}

/// turmoil alone, for each of `shapes`.
fn idle_as_long(reps: u64, shapes: &[Shape]) -> Measured {
    measure(reps, shapes, |shape| {
        idle_turmoil(shape);
        shape
    })
}

fn median(m: &Measured) -> f64 {
    m.per_second
        .get(m.per_second.len() / 2)
        .copied()
        .unwrap_or(0.0)
}

fn row(name: &str, m: &Measured, against: Option<&Measured>) {
    let (low, high) = (
        m.per_second.first().copied().unwrap_or(0.0),
        m.per_second.last().copied().unwrap_or(0.0),
    );
    // How much of the row above's time this one takes: its rate over this one's.
    let ratio = against.map_or(String::new(), |above| {
        format!("{:.0} % of its time", 100.0 * median(above) / median(m))
    });
    let simulated: Duration = m.shapes.iter().map(|s| s.simulated).sum();
    let per_seed = simulated.as_secs_f64() / m.shapes.len().max(1) as f64;
    println!(
        "| {name} | {:.0} ({low:.0}–{high:.0}) | {per_seed:.2} s | {ratio} |",
        median(m),
    );
}

/// turmoil stepping a client and `shape.servers` hosts, all idle, for `shape.simulated`.
fn idle_turmoil(shape: Shape) {
    let mut sim = turmoil::Builder::new()
        .tick_duration(shape.tick)
        .simulation_duration(shape.simulated + Duration::from_secs(1))
        .build();
    for n in 0..shape.servers {
        sim.host(format!("server{n}"), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    let simulated = shape.simulated;
    sim.client("client", async move {
        tokio::time::sleep(simulated).await;
        Ok(())
    });
    if let Err(error) = sim.run() {
        eprintln!("turmoil alone: {error}");
    }
}

/// The user's protocol: one request a line, one answer a line, 30 ms between requests.
fn user_harness(seed: u64) -> Harness {
    Harness::new(seed)
        .host("server", |task| async move {
            let listener = tcpclient_sim::Listener::bind(("0.0.0.0", PORT), task.wire()).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::task::spawn_local(answer(stream));
            }
        })
        .client("client", |task| async move {
            let (conn, driver) = task.connect(("server", PORT), Config::new());
            let app = async {
                let (read, write) = tokio::io::split(conn);
                ask(read, write).await
            };
            let (asked, _) = tokio::join!(app, driver);
            asked?;
            Ok(())
        })
}

/// The same protocol with turmoil's own sockets: no harness, no driver, no monitor.
fn bare_protocol(seed: u64) -> Shape {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .simulation_duration(Duration::from_secs(60))
        .build();
    sim.host("server", || async {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::task::spawn_local(answer(stream));
        }
    });
    sim.client("client", async {
        let stream = turmoil::net::TcpStream::connect(("server", PORT)).await?;
        let (read, write) = tokio::io::split(stream);
        ask(read, write).await?;
        Ok(())
    });
    if let Err(error) = sim.run() {
        eprintln!("seed {seed}, on turmoil's sockets: {error}");
    }
    Shape {
        simulated: sim.elapsed(),
        tick: Duration::from_millis(1),
        servers: 1,
    }
}

async fn answer(stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = format!("OK {}\n", line.trim_start_matches("REQ "));
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn ask(
    read: impl tokio::io::AsyncRead + Unpin,
    mut write: impl tokio::io::AsyncWrite + Unpin,
) -> std::io::Result<()> {
    let mut lines = BufReader::new(read).lines();
    for n in 0..REQUESTS {
        write.write_all(format!("REQ {n}\n").as_bytes()).await?;
        let answer = lines.next_line().await?;
        if answer.as_deref() != Some(format!("OK {n}").as_str()) {
            return Err(std::io::Error::other(format!("request {n}: {answer:?}")));
        }
        tokio::time::sleep(PAUSE).await;
    }
    write.shutdown().await
}
