//! The core alone, no sockets: the cost of one `Send`, one `Received`, one TLS record and
//! one whole lifecycle. `cargo bench -p tcpclient-core --bench core`.

// A benchmark is a driver: it reads the clock (once, for the client's time zero).
#![allow(clippy::disallowed_methods, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tcpclient_core::{Client, Config, Destination, Event, Input, Output, Request, Unacknowledged};
use tcpclient_testkit::{Pair, Pki};

/// A connected plaintext client whose outputs so far are drained.
fn connected(destination: (&str, u16), config: Config, now: Instant) -> Client {
    let mut client = Client::new(destination, config, now);
    while client.poll_output().is_some() {}
    client
        .handle_input(now, Input::Connected(tcpclient_core::AttemptId(0)))
        .expect("connected");
    while client.poll_output().is_some() {}
    client
}

/// Sends `messages`, takes the transmits, reports them written: the whole send path.
fn send_path(client: &mut Client, now: Instant, messages: &[Bytes]) {
    for message in messages {
        client
            .send(now, message.clone())
            .expect("room in the queue");
    }
    let mut written = 0;
    while let Some(output) = client.poll_output() {
        if let Output::Transmit(bytes) = output {
            written += bytes.len();
        }
    }
    client
        .handle_input(now, Input::Written(written))
        .expect("written");
}

fn send(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("send");
    for size in [64usize, 1024, 16 * 1024] {
        let batch: Vec<Bytes> = (0..64).map(|_| Bytes::from(vec![1u8; size])).collect();
        group.throughput(Throughput::Elements(batch.len() as u64));
        let mut client = connected(("127.0.0.1", 7), Config::new(), now);
        group.bench_function(format!("{size} B, per Send"), |b| {
            b.iter(|| send_path(&mut client, now, black_box(&batch)))
        });
    }
    group.finish();
}

fn received(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("received");
    let data = vec![2u8; 16 * 1024];
    group.throughput(Throughput::Bytes(data.len() as u64));
    let mut client = connected(("127.0.0.1", 7), Config::new(), now);
    group.bench_function("16 KiB plaintext, per Received", |b| {
        b.iter(|| {
            client
                .handle_input(now, Input::Received(black_box(&data)))
                .expect("received");
            while let Some(output) = client.poll_output() {
                black_box(output);
            }
        })
    });
    group.finish();
}

fn tls_record(c: &mut Criterion) {
    let pki = Pki::new();
    let mut pair = Pair::new(Config::new().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();
    assert!(matches!(pair.events()[1], Event::TlsEstablished(_)));
    let now = pair.h.now;
    let record = vec![Bytes::from(vec![3u8; 16 * 1024])];
    let mut group = c.benchmark_group("tls");
    group.throughput(Throughput::Bytes(16 * 1024));
    group.bench_function("16 KiB, per record (encrypt, hand out, written)", |b| {
        b.iter(|| send_path(&mut pair.h.client, now, black_box(&record)))
    });
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    let now = Instant::now();
    let destination = Destination::new("127.0.0.1", 7);
    let config = Config::new();
    let message = Bytes::from_static(b"one request, one response");
    c.bench_function("lifecycle: connect, send, receive, finish, close", |b| {
        b.iter_batched(
            || (destination.clone(), config.clone()),
            |(destination, config)| {
                let mut client = Client::new(destination, config, now);
                let mut wire = Loopback::default();
                while client.poll_output().is_some() {}
                wire.step(
                    &mut client,
                    now,
                    Input::Connected(tcpclient_core::AttemptId(0)),
                );
                client.send(now, message.clone()).expect("send");
                client.finish(now).expect("finish");
                wire.drain(&mut client, now);
                let written = std::mem::take(&mut wire.handed_out);
                wire.step(&mut client, now, Input::Written(written));
                wire.step(&mut client, now, Input::Received(b"the response"));
                wire.step(&mut client, now, Input::PeerEof);
                assert!(wire.closed, "the lifecycle ended");
            },
            BatchSize::SmallInput,
        )
    });
}

/// The driver of a loopback connection: its kernel says the peer acknowledged everything
/// written, and the FIN once it was sent.
#[derive(Default)]
struct Loopback {
    handed_out: usize,
    fin_sent: bool,
    closed: bool,
}

impl Loopback {
    fn step(&mut self, client: &mut Client, now: Instant, input: Input<'_>) {
        client.handle_input(now, input).expect("accepted");
        self.drain(client, now);
    }

    fn drain(&mut self, client: &mut Client, now: Instant) {
        while let Some(output) = client.poll_output() {
            match output {
                Output::Transmit(bytes) => self.handed_out += bytes.len(),
                Output::ShutdownWrite => self.fin_sent = true,
                Output::QueryUnacknowledged => {
                    let answer = Unacknowledged::Known {
                        bytes: 0,
                        fin_acknowledged: self.fin_sent,
                    };
                    client
                        .handle_input(now, Input::Unacknowledged(answer))
                        .expect("answer");
                }
                Output::Event(Event::Closed(_)) => self.closed = true,
                _ => {}
            }
        }
    }
}

criterion_group!(benches, send, received, tls_record, lifecycle);
criterion_main!(benches);
