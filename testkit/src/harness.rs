//! A client with a hand-advanced clock: feed an input, get the exact outputs back.

use std::time::{Duration, Instant};

use std::net::SocketAddr;

use tcpclient_core::{
    AttemptId, Client, Config, Destination, Event, Input, InvalidInput, Output, Request,
    SocketOptions, Unacknowledged,
};

/// Time zero for a hand-advanced clock: the one place tests read the real clock.
pub fn epoch() -> Instant {
    Instant::now()
}

/// One [`Client`] and the clock it lives by. Nothing sleeps: time jumps.
///
/// It answers the client's [`Output::QueryUnacknowledged`] itself, as [`Harness::kernel`]
/// says (by default as a loopback connection's kernel would: everything written is
/// acknowledged at once), and leaves the question out of what [`Harness::outputs`] returns;
/// with [`Kernel::ByHand`] the question is returned for the test to answer.
pub struct Harness {
    /// The client under test.
    pub client: Client,
    /// Time zero of the test.
    pub start: Instant,
    /// The current instant.
    pub now: Instant,
    /// How the client's questions about acknowledgements are answered.
    pub kernel: Kernel,
    /// A `ShutdownWrite` was handed out (the FIN is in the answers from then on).
    fin_sent: bool,
}

/// How a [`Harness`] answers [`Output::QueryUnacknowledged`]: the kernel it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Everything written is acknowledged at once, the FIN too once sent: loopback.
    Loopback,
    /// This many bytes written are never acknowledged, nor the FIN: a peer gone silent.
    Unacknowledged(u64),
    /// The platform cannot tell ([`Unacknowledged::Unknown`]).
    CannotTell,
    /// Not answered: [`Harness::outputs`] returns the question.
    ByHand,
}

impl Harness {
    /// Creates the client to `destination` at time zero.
    pub fn new(destination: impl Into<Destination>, config: Config) -> Self {
        let start = epoch();
        Self {
            client: Client::new(destination, config, start),
            start,
            now: start,
            kernel: Kernel::Loopback,
            fin_sent: false,
        }
    }

    /// Drains every pending output, answering the questions about acknowledgements as
    /// [`Harness::kernel`] says.
    pub fn outputs(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        while let Some(output) = self.client.poll_output() {
            self.fin_sent |= output == Output::ShutdownWrite;
            let answer = match (output == Output::QueryUnacknowledged, self.kernel) {
                (false, _) | (true, Kernel::ByHand) => {
                    outputs.push(output);
                    continue;
                }
                (true, Kernel::Loopback) => Unacknowledged::Known {
                    bytes: 0,
                    fin_acknowledged: self.fin_sent,
                },
                (true, Kernel::Unacknowledged(bytes)) => Unacknowledged::Known {
                    bytes,
                    fin_acknowledged: false,
                },
                (true, Kernel::CannotTell) => Unacknowledged::Unknown,
            };
            if let Err(e) = self
                .client
                .handle_input(self.now, Input::Unacknowledged(answer))
            {
                panic!("the answer {answer:?} was refused: {e}");
            }
        }
        outputs
    }

    /// Handles `input` now and returns the outputs; panics if the input is refused.
    pub fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        let name = input.name();
        match self.try_input(input) {
            Ok(outputs) => outputs,
            Err(e) => panic!("{name} refused at {:?}: {e}", self.elapsed()),
        }
    }

    /// Handles `input` now; returns the outputs, or the refusal.
    pub fn try_input(&mut self, input: Input<'_>) -> Result<Vec<Output>, InvalidInput> {
        self.client.handle_input(self.now, input)?;
        Ok(self.outputs())
    }

    /// Makes the application's request; returns the outputs it produced. Panics if refused.
    pub fn request(&mut self, request: Request) -> Vec<Output> {
        let name = request.name();
        match self.try_request(request) {
            Ok(outputs) => outputs,
            Err(e) => panic!("{name} refused at {:?}: {e}", self.elapsed()),
        }
    }

    /// Makes the application's request; returns the outputs, or the refusal.
    pub fn try_request(&mut self, request: Request) -> Result<Vec<Output>, InvalidInput> {
        request.apply(&mut self.client, self.now)?;
        Ok(self.outputs())
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The next deadline, as time since the start.
    pub fn deadline(&self) -> Option<Duration> {
        self.client.poll_timeout().map(|t| t - self.start)
    }

    /// Moves the clock forward without telling the client.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Jumps to the next deadline and hands the client the timeout. Panics without one.
    pub fn fire(&mut self) -> Vec<Output> {
        let deadline = self.client.poll_timeout().expect("a deadline is armed");
        self.now = self.now.max(deadline);
        self.input(Input::Timeout)
    }
}

/// The `Connect` output of attempt `attempt` to `addr`, with the default socket options.
pub fn connect(attempt: u32, addr: &str) -> Output {
    let addr: SocketAddr = addr.parse().expect("a socket address");
    Output::Connect {
        attempt: AttemptId(attempt),
        addr,
        options: Box::new(SocketOptions::default().for_attempt(&addr)),
    }
}

/// The application events among `outputs`.
pub fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The report of the `Closed` event that must end `outputs`.
pub fn closed(outputs: &[Output]) -> &tcpclient_core::CloseReport {
    match outputs.last() {
        Some(Output::Event(Event::Closed(report))) => report,
        other => panic!("expected Closed last, got {other:?} in {outputs:?}"),
    }
}
