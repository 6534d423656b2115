//! Taking notifications from a connection: tracing them, and reading lines for dialogues.

use std::time::Instant;

use tcpclient_core::{Event, InvalidInput};
use tcpclient_polling::{Connection, Notification};

use super::Failure;
use super::trace::Trace;

/// Events of one connection, traced as they are taken.
pub struct Inbound<'a> {
    pub conn: &'a Connection,
    pub trace: &'a Trace,
    pub verbose: bool,
    /// Received bytes not yet consumed as lines.
    buffered: Vec<u8>,
    /// Bytes of sends the connection refused (they crossed its shutdown).
    refused: u64,
}

impl<'a> Inbound<'a> {
    pub fn new(conn: &'a Connection, trace: &'a Trace, verbose: bool) -> Self {
        Self {
            conn,
            trace,
            verbose,
            buffered: Vec::new(),
            refused: 0,
        }
    }

    /// The next event, waiting at most until `deadline` (forever if `None`).
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Event, Failure> {
        loop {
            let notification = match deadline {
                None => self.conn.recv().ok_or(Failure::Vanished)?,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.conn.recv_timeout(left) {
                        Ok(Some(notification)) => notification,
                        Ok(None) => {
                            return Err(Failure::StartTls(
                                "the server did not answer in time".into(),
                            ));
                        }
                        Err(_) => return Err(Failure::Vanished),
                    }
                }
            };
            match notification {
                Notification::Event(event) => {
                    self.trace.event(&event);
                    if self.verbose {
                        describe(&event);
                    }
                    return Ok(event);
                }
                Notification::Refused(refusal) => {
                    if self.verbose {
                        eprintln!("tcpclient: refused: {refusal}");
                    }
                    self.refused += refused_bytes(refusal);
                }
                _ => {}
            }
        }
    }

    /// The next line the server sends (without CRLF), for dialogues before TLS.
    pub fn line(&mut self, deadline: Instant) -> Result<String, Failure> {
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            match self.next(Some(deadline))? {
                Event::Data(data) => self.buffered.extend_from_slice(&data),
                Event::Closed(report) => {
                    return Err(Failure::StartTls(format!(
                        "the connection closed during the dialogue: {report}"
                    )));
                }
                Event::PeerClosed => {
                    return Err(Failure::StartTls(
                        "the server closed the connection during the dialogue".into(),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Bytes of sends the connection refused, counting those still on their way after the
    /// close report (call it once the report is in).
    pub fn refused_after_close(&mut self) -> u64 {
        while let Some(notification) = self.conn.recv() {
            if let Notification::Refused(refusal) = notification {
                self.refused += refused_bytes(refusal);
            }
        }
        self.refused
    }

    /// Bytes received but not consumed as lines.
    pub fn leftover(&self) -> usize {
        self.buffered.len()
    }
}

/// `--verbose`: one human line per event (data is not described, it goes to stdout).
pub fn describe(event: &Event) {
    match event {
        Event::Connected(peer) => eprintln!("tcpclient: connected to {peer}"),
        Event::TlsEstablished(info) => eprintln!("tcpclient: TLS established: {info}"),
        Event::PeerClosed => eprintln!("tcpclient: the server closed its side"),
        _ => {}
    }
}

/// The bytes a refused send carried (other refusals carry none).
fn refused_bytes(refusal: InvalidInput) -> u64 {
    refusal.into_data().map_or(0, |data| data.len() as u64)
}
