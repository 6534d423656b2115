//! A client and an in-memory server joined by a perfect wire, in the manner of quinn's `Pair`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{AttemptId, Config, Destination, Event, Input, Output, Request};

use crate::{Harness, Server};

/// A [`Harness`] client wired to a [`Server`].
///
/// [`Pair::drive`] plays the driver: it writes transmits to the server (all of them, or
/// [`Pair::write_budget`] bytes per call, for a slow reader), hands the server's bytes to the
/// client, and delivers FINs — until nothing moves. Every client output lands in [`Pair::log`].
pub struct Pair {
    /// The client and its clock.
    pub h: Harness,
    /// The other end.
    pub server: Server,
    /// Every output of the client, in order.
    pub log: Vec<Output>,
    /// Bytes the socket accepts per [`Pair::drive`]; `None` is unlimited.
    pub write_budget: Option<usize>,
    /// The driver holds the connection's socket (between the winning attempt's `Connected`
    /// and `Close` or `Reset`).
    pub socket_open: bool,
    /// Connect attempts under way (between `Connect` and `Cancel` or a win).
    pub attempts: VecDeque<AttemptId>,
    pending: VecDeque<Bytes>,
    server_fin: bool,
    server_fin_delivered: bool,
    events_taken: usize,
}

impl Pair {
    /// A client for `config` to [`local`](crate::local) (127.0.0.1:7, its certificate
    /// checked for `localhost`) and a plaintext server.
    pub fn new(config: Config) -> Self {
        Self::to(crate::local(), config)
    }

    /// A client for `config` to `destination` (an IP literal host, so that no resolution is
    /// needed) and a plaintext server.
    pub fn to(destination: Destination, config: Config) -> Self {
        Self {
            h: Harness::new(destination, config),
            server: Server::new(),
            log: Vec::new(),
            write_budget: None,
            socket_open: false,
            attempts: VecDeque::new(),
            pending: VecDeque::new(),
            server_fin: false,
            server_fin_delivered: false,
            events_taken: 0,
        }
    }

    /// A client for `config` to [`local`](crate::local), connected.
    pub fn connected(config: Config) -> Self {
        let mut pair = Self::new(config);
        pair.connect();
        pair
    }

    /// Answers the oldest attempt under way with `Connected` and drives.
    pub fn connect(&mut self) {
        self.drive();
        let attempt = *self
            .attempts
            .front()
            .expect("the client asked for no connection");
        self.attempts.pop_front();
        self.socket_open = true;
        self.input(Input::Connected(attempt));
    }

    /// Hands the client an input, then drives.
    pub fn input(&mut self, input: Input<'_>) {
        let name = input.name();
        if let Err(e) = self.h.client.handle_input(self.h.now, input) {
            panic!("{name} refused: {e}");
        }
        self.drive();
    }

    /// Makes the application's request of the client, then drives.
    pub fn request(&mut self, request: Request) {
        let name = request.name();
        if let Err(e) = request.apply(&mut self.h.client, self.h.now) {
            panic!("{name} refused: {e}");
        }
        self.drive();
    }

    /// Sends `data` from the application.
    pub fn send(&mut self, data: &'static [u8]) {
        self.request(Request::Send(Bytes::from_static(data)));
    }

    /// Jumps to the next deadline, fires it, and drives.
    pub fn fire(&mut self) {
        let outputs = self.h.fire();
        self.act(outputs);
        self.drive();
    }

    /// Moves the clock forward without firing anything.
    pub fn advance(&mut self, by: Duration) {
        self.h.advance(by);
    }

    /// The server half-closes once its pending bytes are delivered.
    pub fn server_fin(&mut self) {
        self.server_fin = true;
        self.drive();
    }

    /// Every application event so far.
    pub fn events(&self) -> Vec<Event> {
        crate::events(&self.log)
    }

    /// The application events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        let all = self.events();
        let new = all[self.events_taken.min(all.len())..].to_vec();
        self.events_taken = all.len();
        new
    }

    /// Bytes the client has handed out that the wire has not taken yet.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(Bytes::len).sum()
    }

    /// Plays the driver until nothing moves.
    pub fn drive(&mut self) {
        let mut budget = self.write_budget;
        for _ in 0..100_000 {
            let outputs = self.h.outputs();
            let mut moved = !outputs.is_empty();
            self.act(outputs);
            moved |= self.write(&mut budget);
            moved |= self.deliver();
            if !moved {
                return;
            }
        }
        panic!("the pair did not settle");
    }

    fn act(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match &output {
                Output::Connect { attempt, .. } => self.attempts.push_back(*attempt),
                Output::Cancel(attempt) => self.attempts.retain(|a| a != attempt),
                Output::Transmit(bytes) => self.pending.push_back(bytes.clone()),
                Output::ShutdownWrite => {
                    assert!(
                        self.pending.is_empty(),
                        "FIN before every transmit was written"
                    );
                    self.server.got_fin = true;
                }
                Output::Close | Output::Reset => {
                    self.socket_open = false;
                    self.pending.clear();
                }
                _ => {}
            }
            self.log.push(output);
        }
    }

    fn write(&mut self, budget: &mut Option<usize>) -> bool {
        if !self.socket_open {
            return false;
        }
        let mut written = 0;
        while let Some(front) = self.pending.front_mut() {
            let room = budget.map_or(usize::MAX, |b| b - written.min(b));
            if room == 0 {
                break;
            }
            let n = front.len().min(room);
            let chunk = front.split_to(n);
            if front.is_empty() {
                self.pending.pop_front();
            }
            self.server.receive(&chunk);
            written += n;
        }
        if let Some(b) = budget.as_mut() {
            *b -= written.min(*b);
        }
        if written == 0 {
            return false;
        }
        let outputs = self
            .h
            .try_input(Input::Written(written))
            .expect("Written accepted");
        self.act(outputs);
        true
    }

    fn deliver(&mut self) -> bool {
        if !self.socket_open || !self.h.client.wants_read() {
            return false;
        }
        if self.server.has_outgoing() {
            let data = self.server.take_outgoing();
            let outputs = self
                .h
                .try_input(Input::Received(&data))
                .expect("Received accepted");
            self.act(outputs);
            return true;
        }
        if self.server_fin && !self.server_fin_delivered {
            self.server_fin_delivered = true;
            let outputs = self.h.try_input(Input::PeerEof).expect("PeerEof accepted");
            self.act(outputs);
            return true;
        }
        false
    }
}
