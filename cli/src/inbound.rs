//! Taking events from a connection: tracing them, and reading lines for dialogues.

use std::time::Instant;

use bytes::BytesMut;
use tcpclient_core::{Event, InvalidInput, TlsInfo};
use tcpclient_polling::Connection;

use super::Failure;
use super::output::warn;
use super::trace::Trace;

/// Longest reply line a dialogue takes, CRLF included: the core's, for every dialogue. SMTP
/// allows 512 octets (RFC 5321 4.5.3.1.5); this leaves room for servers that stretch it.
pub use tcpclient_core::starttls::MAX_LINE;

/// Events of one connection, traced as they are taken.
pub struct Inbound<'a> {
    pub conn: &'a Connection,
    pub trace: &'a Trace,
    pub verbose: bool,
    /// Received bytes not yet consumed as lines.
    buffered: BytesMut,
    /// How much of `buffered` is known to hold no line end: each byte is looked at once.
    scanned: usize,
    /// The address of the connection, once one is up.
    pub connected_to: Option<std::net::SocketAddr>,
    /// `--brief`: show the handshake's parameters once it is done.
    pub brief: bool,
    /// `--showcerts`: show the server's certificate chain once the handshake is done.
    pub showcerts: bool,
    /// What the TLS handshake negotiated, once it is done.
    pub tls: Option<TlsInfo>,
}

impl<'a> Inbound<'a> {
    pub fn new(conn: &'a Connection, trace: &'a Trace, verbose: bool) -> Self {
        Self {
            conn,
            trace,
            verbose,
            buffered: BytesMut::new(),
            scanned: 0,
            connected_to: None,
            brief: false,
            showcerts: false,
            tls: None,
        }
    }

    /// The next event, waiting at most until `deadline` (forever if `None`). A deadline
    /// that has passed ends the wait even while events keep coming:
    /// [`Failure::TimedOut`], which the caller words.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Event, Failure> {
        let event = match deadline {
            None => self.conn.recv().ok_or(Failure::Vanished)?,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Failure::TimedOut);
                }
                match self.conn.recv_timeout(left) {
                    Ok(Some(event)) => event,
                    Ok(None) => return Err(Failure::TimedOut),
                    Err(_) => return Err(Failure::Vanished),
                }
            }
        };
        if let Event::Connected(addr) = &event {
            self.connected_to = Some(*addr);
        }
        if let Event::TlsEstablished(info) = &event {
            if self.brief {
                eprint!("{}", super::certs::brief(info));
            }
            if self.showcerts {
                eprint!("{}", super::certs::chain(info));
            }
            self.tls = Some(info.clone());
        }
        self.trace.event(&event);
        if self.verbose {
            describe(&event);
        }
        Ok(event)
    }

    /// Says what a request was answered, if it was refused and `-v` asks for detail. (A
    /// refusal that matters shows in the events that follow, or do not.)
    pub fn answered(&self, answer: Result<(), InvalidInput>) {
        if let Err(refusal) = answer
            && self.verbose
        {
            warn(format_args!("refused: {refusal}"));
        }
    }

    /// Finishes the connection gracefully and takes its events until it has closed (or
    /// until `deadline`), whatever the ending.
    pub fn finish_and_wait(&mut self, deadline: Option<Instant>) {
        self.answered(self.conn.finish());
        while !matches!(self.next(deadline), Ok(Event::Closed(_)) | Err(_)) {}
    }

    /// The next line the server sends (without CRLF), for dialogues before TLS, by
    /// `deadline`. A line longer than [`MAX_LINE`] is an error.
    pub fn line(&mut self, deadline: Instant) -> Result<String, Failure> {
        loop {
            if Instant::now() >= deadline {
                return Err(Failure::TimedOut);
            }
            let unscanned = &self.buffered[self.scanned..];
            if let Some(at) = unscanned.iter().position(|&b| b == b'\n') {
                let line = self.buffered.split_to(self.scanned + at + 1);
                self.scanned = 0;
                if line.len() > MAX_LINE {
                    return Err(line_too_long());
                }
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            self.scanned = self.buffered.len();
            if self.buffered.len() > MAX_LINE {
                return Err(line_too_long());
            }
            self.receive_more(deadline)?;
        }
    }

    /// What the server sent that no dialogue has taken yet, waiting for some by `deadline`.
    pub fn data(&mut self, deadline: Instant) -> Result<bytes::Bytes, Failure> {
        while self.buffered.is_empty() {
            if Instant::now() >= deadline {
                return Err(Failure::TimedOut);
            }
            self.receive_more(deadline)?;
        }
        self.scanned = 0;
        Ok(self.buffered.split().freeze())
    }

    /// Takes the next event for a dialogue: data is buffered; the end of the connection
    /// during a dialogue is an error.
    fn receive_more(&mut self, deadline: Instant) -> Result<(), Failure> {
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
        Ok(())
    }
}

fn line_too_long() -> Failure {
    Failure::StartTls(format!(
        "the server sent a reply line longer than {MAX_LINE} bytes"
    ))
}

/// `--verbose`: one human line per event (data is not described, it goes to stdout).
pub fn describe(event: &Event) {
    match event {
        Event::Connected(peer) => warn(format_args!("connected to {peer}")),
        Event::TlsEstablished(info) => warn(format_args!("TLS established: {info}")),
        Event::PeerClosed => warn(format_args!("the server closed its side")),
        Event::Disconnected { generation, report } => {
            warn(format_args!("connection {} lost: {report}", generation + 1))
        }
        Event::Reconnecting {
            generation,
            attempt,
            delay,
        } => warn(format_args!(
            "reconnecting in {:.1} s (connection {}, reconnect {} in a row)",
            delay.as_secs_f64(),
            generation + 1,
            attempt + 1
        )),
        Event::Reconnected {
            generation, addr, ..
        } => warn(format_args!(
            "reconnected to {addr} (connection {})",
            generation + 1
        )),
        _ => {}
    }
}
