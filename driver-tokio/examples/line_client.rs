//! A request/response client on a line protocol that rides out server restarts, on a
//! reconnecting session:
//!
//! - every connection begins with a `HELLO` dialogue ([`Preamble::Dialogue`]): the session
//!   holds the requests, new and replayed, until the client says the greeting is done;
//! - each request is kept until its answer comes, then acknowledged
//!   ([`ReconnectPolicy::replay_unacknowledged`]); after a reconnect the session sends the
//!   unanswered ones again, in order: every request is processed at least once (exactly
//!   once would need request ids the server remembers).
//!
//! The protocol: the client sends `HELLO <name>` and waits for `+HELLO`; then each request
//! is one line, answered in order by `+OK <request>`.
//!
//! ```sh
//! cargo run -p tcpclient-tokio --example line_client -- 127.0.0.1 7000 100
//! ```
//!
//! (`tests/examples.rs` runs it against a server process it kills and restarts twice.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{CloseReport, Config, Event, Jitter, Preamble, ReconnectPolicy};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// Every answer, in the order of the requests.
    pub answers: Vec<String>,
    /// Connections made (each began with its greeting).
    pub connections: u32,
    /// The session's report.
    pub report: CloseReport,
}

/// The client's books: the requests sent, where each is in the stream, and how far the
/// answers have come.
#[derive(Default)]
struct Books {
    /// Requests sent and not yet answered, with their stream offsets.
    requests: VecDeque<(u64, String)>,
    /// Bytes sent so far: the next request's offset.
    sent: u64,
    /// The offset of the request the next answer on this connection is for.
    cursor: u64,
    /// Everything before this offset is answered and acknowledged.
    acknowledged: u64,
    answers: Vec<String>,
    connections: u32,
    /// The greeting on this connection is not yet answered.
    greeting: bool,
    /// An incomplete line.
    partial: Vec<u8>,
}

/// Sends each of `requests` (one line each, without the newline), `pace` apart, to
/// `host:port`, and waits for every answer; `progress` hears the number answered so far.
pub async fn run(
    host: &str,
    port: u16,
    requests: Vec<String>,
    pace: Duration,
    progress: impl Fn(usize),
) -> Result<Summary, Error> {
    let policy = ReconnectPolicy::default()
        .with_preamble(Preamble::Dialogue)
        .with_replay_unacknowledged(true)
        .with_jitter(Jitter::None)
        .with_initial_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1));
    let mut conn =
        tcpclient_tokio::connect((host, port), Config::new().with_reconnect(policy)).await?;
    let books = RefCell::new(Books::default());
    let total = requests.len();
    let sender = conn.sender();

    let producer = async {
        for request in requests {
            let line = Bytes::from(format!("{request}\n"));
            let len = line.len() as u64;
            sender.send_all(line).await?;
            {
                let mut books = books.borrow_mut();
                let at = books.sent;
                books.requests.push_back((at, request));
                books.sent += len;
            }
            tokio::time::sleep(pace).await;
        }
        Ok::<(), Error>(())
    };
    let consumer = async {
        loop {
            let Some(event) = conn.recv().await else {
                return Err::<CloseReport, Error>("the driver stopped".into());
            };
            match event {
                Event::Connected(_) | Event::Reconnected { .. } => {
                    let mut books = books.borrow_mut();
                    books.connections += 1;
                    books.greeting = true;
                    books.partial.clear();
                    // Refused only by a connection already on its way out: the next one
                    // greets again.
                    let _ = conn.send_preamble(Bytes::from_static(b"HELLO example\n"));
                }
                Event::Data(data) => {
                    let mut books = books.borrow_mut();
                    books.partial.extend_from_slice(&data);
                    while let Some(end) = books.partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = books.partial.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&line[..end]).into_owned();
                        answered(&conn, &mut books, line)?;
                    }
                    progress(books.answers.len());
                    if books.answers.len() == total {
                        // Refused only if already finishing.
                        let _ = conn.finish();
                    }
                }
                Event::Closed(report) => return Ok(*report),
                _ => {}
            }
        }
    };
    let (produced, report) = tokio::join!(producer, consumer);
    produced?;
    let report = report?;
    let books = books.into_inner();
    Ok(Summary {
        answers: books.answers,
        connections: books.connections,
        report,
    })
}

/// One line from the server: the greeting's answer, or the next request's.
fn answered(
    conn: &tcpclient_tokio::Connection,
    books: &mut Books,
    line: String,
) -> Result<(), Error> {
    if books.greeting {
        if line != "+HELLO" {
            return Err(format!("expected +HELLO, got {line:?}").into());
        }
        books.greeting = false;
        // From here on, this connection sends the requests not yet acknowledged, in order:
        // the next answer is to the first of them. (Refused only by a connection on its way
        // out; what waits goes on the next one.)
        books.cursor = books.acknowledged;
        let _ = conn.preamble_done();
        return Ok(());
    }
    let cursor = books.cursor;
    let Some((_, request)) = books.requests.iter().find(|(at, _)| *at == cursor) else {
        return Err(format!("an answer ({line:?}) to no request").into());
    };
    if line != format!("+OK {request}") {
        return Err(format!("{line:?} does not answer {request:?}").into());
    }
    let next = cursor + request.len() as u64 + 1;
    conn.acknowledged((next - books.acknowledged) as usize)?;
    books.cursor = next;
    books.acknowledged = next;
    books.answers.push(line);
    // Acknowledged, a request goes on no later connection.
    books.requests.pop_front();
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
#[allow(dead_code)]
async fn main() -> Result<(), Error> {
    let usage = "usage: line_client HOST PORT [REQUESTS]";
    let mut args = std::env::args().skip(1);
    let host = args.next().ok_or(usage)?;
    let port = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().map_or(Ok(10), |n| n.parse())?;
    let requests = (0..count).map(|i| format!("SET key{i} {i}")).collect();
    let summary = run(&host, port, requests, Duration::from_millis(10), |_| {}).await?;
    for answer in &summary.answers {
        println!("{answer}");
    }
    println!(
        "{} answers over {} connections; {}",
        summary.answers.len(),
        summary.connections,
        summary.report
    );
    Ok(())
}
