//! The reconnecting session on the hand-advanced clock: the exact delays, the cap, the
//! stable period, the limits, permanent errors, and every byte across generations.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, Client, CloseReport, Config, Destination, Ending, Error, Event, Input, InvalidInput,
    Jitter, Leave, Output, Preamble, ReconnectPolicy, Request, SplitMix, Unacknowledged,
};
use tcpclient_testkit::Pki;

fn secs(n: f64) -> Duration {
    Duration::from_secs_f64(n)
}

/// A session and its clock. Its driver answers the questions about acknowledgements as a
/// loopback connection's kernel would (everything written is acknowledged at once), and
/// leaves them out of the log.
struct Run {
    session: Client,
    start: Instant,
    now: Instant,
    log: Vec<Output>,
    /// The current connection's FIN was sent.
    fin_sent: bool,
    /// What the kernel leaves unacknowledged: the last this many bytes and the FIN; `None`
    /// acknowledges everything, as loopback does.
    unacknowledged: Option<u64>,
}

impl Run {
    /// A session to 127.0.0.1:7.
    fn new(config: Config, policy: ReconnectPolicy) -> Self {
        Self::to(tcpclient_testkit::local(), config, policy)
    }

    fn to(destination: impl Into<Destination>, config: Config, policy: ReconnectPolicy) -> Self {
        Self::starting_at(destination, config, policy, tcpclient_testkit::epoch())
    }

    fn starting_at(
        destination: impl Into<Destination>,
        config: Config,
        policy: ReconnectPolicy,
        start: Instant,
    ) -> Self {
        let mut run = Self {
            session: Client::new(destination, config.with_reconnect(policy), start),
            start,
            now: start,
            log: Vec::new(),
            fin_sent: false,
            unacknowledged: None,
        };
        run.drain();
        run
    }

    /// The application's dialogue preamble, `HI`, sent and done.
    fn say_hi(&mut self) {
        self.session
            .send_preamble(self.now, Bytes::from_static(b"HI\n"))
            .unwrap();
        self.session.preamble_done(self.now).unwrap();
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::QueryUnacknowledged => {
                    let answer = match self.unacknowledged {
                        None => Unacknowledged::Known {
                            bytes: 0,
                            fin_acknowledged: self.fin_sent,
                        },
                        Some(bytes) => Unacknowledged::Known {
                            bytes,
                            fin_acknowledged: false,
                        },
                    };
                    let answered = self
                        .session
                        .handle_input(self.now, Input::Unacknowledged(answer));
                    assert_eq!(answered, Ok(()));
                    continue;
                }
                Output::ShutdownWrite => self.fin_sent = true,
                Output::Close | Output::Reset => self.fin_sent = false,
                _ => {}
            }
            outputs.push(output);
        }
        self.log.extend(outputs.iter().cloned());
        outputs
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        let name = input.name();
        if let Err(e) = self.session.handle_input(self.now, input) {
            panic!("{name} refused: {e}");
        }
        self.drain()
    }

    fn request(&mut self, request: Request) -> Vec<Output> {
        let name = request.name();
        if let Err(e) = request.apply(&mut self.session, self.now) {
            panic!("{name} refused: {e}");
        }
        self.drain()
    }

    /// Jumps to the next deadline and fires it.
    fn fire(&mut self) -> Vec<Output> {
        let deadline = self.session.poll_timeout().expect("a deadline");
        self.now = self.now.max(deadline);
        self.input(Input::Timeout)
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The latest attempt started.
    fn last_attempt(&self) -> AttemptId {
        self.log
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Connect { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .expect("an attempt")
    }

    /// Waits out the backoff (if any), and answers the connect attempt with `Connected`.
    fn connect(&mut self) -> Vec<Output> {
        if !self
            .log
            .iter()
            .rev()
            .any(|o| matches!(o, Output::Connect { .. }))
            || self.session.phase() == tcpclient_core::Phase::Delay
        {
            self.fire();
        }
        let attempt = self.last_attempt();
        self.input(Input::Connected(attempt))
    }

    /// Waits out the backoff, and has the connect attempt refused.
    fn refuse(&mut self) -> Vec<Output> {
        if self.session.phase() == tcpclient_core::Phase::Delay {
            self.fire();
        }
        let attempt = self.last_attempt();
        self.input(Input::ConnectFailed(attempt, ErrorKind::ConnectionRefused))
    }

    fn delays(&self) -> Vec<Duration> {
        self.reconnects().map(|(_, delay)| delay).collect()
    }

    /// The attempt number of each `Reconnecting`: reconnects in a row without a stable
    /// connection.
    fn attempts(&self) -> Vec<u32> {
        self.reconnects().map(|(attempt, _)| attempt).collect()
    }

    /// Each `Reconnecting`'s attempt number and delay.
    fn reconnects(&self) -> impl Iterator<Item = (u32, Duration)> + '_ {
        self.log.iter().filter_map(|o| match o {
            Output::Event(Event::Reconnecting { attempt, delay, .. }) => Some((*attempt, *delay)),
            _ => None,
        })
    }

    fn events(&self) -> Vec<&Event> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn report(&self) -> &CloseReport {
        match self.log.last() {
            Some(Output::Event(Event::Closed(report))) => report,
            other => panic!("expected the session's Closed last, got {other:?}"),
        }
    }

    fn handed_back(&self) -> Vec<u8> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Event(Event::Undelivered(b)) => Some(b.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// The names of the events among `outputs`, in order.
fn event_names(outputs: &[Output]) -> Vec<&'static str> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.name()),
            _ => None,
        })
        .collect()
}

/// The bytes of every `Transmit` among `outputs`, in order.
fn transmitted(outputs: &[Output]) -> Vec<u8> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn base() -> Config {
    Config::new()
}

fn flat() -> ReconnectPolicy {
    ReconnectPolicy::default().with_jitter(Jitter::None)
}

#[test]
fn the_delays_for_a_seed_are_the_backoff_times_draws_from_that_seed() {
    let policy = ReconnectPolicy::default().with_seed(1);
    let mut run = Run::new(base(), policy.clone());

    for _ in 0..8 {
        run.refuse();
    }

    let mut draws = SplitMix::new(1);
    let expected: Vec<Duration> = (0..8)
        .map(|n| policy.backoff(n).mul_f64(draws.unit()))
        .collect();
    let delays = run.delays();
    assert_eq!(delays, expected);
    for (n, delay) in delays.iter().enumerate() {
        assert!(*delay <= policy.backoff(n as u32));
    }
    let millis: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    eprintln!("seed 1, default policy: delays in ms {millis:?}");
    let again = {
        let mut run = Run::new(base(), policy);
        for _ in 0..8 {
            run.refuse();
        }
        run.delays()
    };
    assert_eq!(again, delays, "the same seed, the same delays");
}

#[test]
fn without_jitter_the_delays_grow_by_the_multiplier_and_stop_at_the_cap() {
    let policy = flat()
        .with_multiplier(2.0)
        .with_max_delay(Duration::from_secs(8));
    let mut run = Run::new(base(), policy);

    for _ in 0..6 {
        run.refuse();
    }

    assert_eq!(
        run.delays(),
        [1.0, 2.0, 4.0, 8.0, 8.0, 8.0].map(secs),
        "doubling, capped at 8 s"
    );
    // Each reconnect came exactly when its wait ran out.
    assert_eq!(run.elapsed(), secs(1.0 + 2.0 + 4.0 + 8.0 + 8.0));
}

#[test]
fn a_server_that_accepts_and_closes_at_once_makes_the_delay_grow() {
    let mut run = Run::new(base(), flat());

    for _ in 0..3 {
        run.connect();
        run.input(Input::PeerEof);
    }

    assert_eq!(run.delays(), [1.0, 1.6, 2.56].map(secs));
    let generations: Vec<u32> = run
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Reconnected { generation, .. } => Some(*generation),
            _ => None,
        })
        .collect();
    assert_eq!(generations, [1, 2], "each new connection says which it is");
}

#[test]
fn a_connection_that_stays_up_past_stable_after_resets_the_backoff() {
    let mut run = Run::new(base(), flat());
    run.refuse();
    run.refuse();
    run.connect();

    run.now += Duration::from_secs(30);
    run.input(Input::SocketError(ErrorKind::ConnectionReset));

    assert_eq!(
        run.delays(),
        [1.0, 1.6, 1.0].map(secs),
        "stable for 30 s: back to the initial delay"
    );
}

#[test]
fn max_attempts_ends_the_session_with_its_report() {
    let mut run = Run::new(base(), flat().with_max_attempts(Some(2)));

    run.refuse();
    run.refuse();
    run.refuse();

    assert_eq!(run.delays().len(), 2);
    let report = run.report();
    assert!(matches!(report.result, Err(Error::Connect { .. })));
    assert!(run.session.is_closed());
    assert_eq!(run.session.poll_timeout(), None);
}

#[test]
fn max_elapsed_ends_the_session_once_the_time_since_the_loss_is_spent() {
    let mut run = Run::new(
        base(),
        flat().with_max_elapsed(Some(Duration::from_secs(3))),
    );

    run.refuse(); // lost at 0: wait 1 s
    run.refuse(); // 1 s: wait 1.6 s
    run.refuse(); // 2.6 s: wait 2.56 s
    run.refuse(); // 5.16 s: past 3 s

    assert_eq!(run.delays().len(), 3);
    assert_eq!(run.elapsed(), secs(5.16));
    assert!(matches!(run.report().result, Err(Error::Connect { .. })));
}

#[test]
fn a_permanent_error_ends_the_session_at_once() {
    let mut run = Run::to(("no-such-host.test", 7), Config::new(), flat());

    run.input(Input::Resolved {
        family: None,
        result: Err(ErrorKind::NotFound),
    });

    assert!(run.delays().is_empty(), "no reconnect");
    assert!(matches!(run.report().result, Err(Error::Resolve { .. })));
}

#[test]
fn the_caller_decides_what_is_permanent() {
    fn everything(_: &Error) -> bool {
        true
    }
    let mut run = Run::new(base(), flat().with_is_permanent(everything));

    run.refuse();

    assert!(run.delays().is_empty());
    assert!(run.session.is_closed());
}

#[test]
fn what_a_lost_connection_did_not_write_is_handed_back_in_order() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    run.input(Input::Written(4));

    let outputs = run.input(Input::SocketError(ErrorKind::ConnectionReset));

    let events = event_names(&outputs);
    assert_eq!(events, ["Undelivered", "Disconnected", "Reconnecting"]);
    assert_eq!(run.handed_back(), b"456789");
}

#[test]
fn with_replay_the_undelivered_bytes_go_first_on_the_next_connection() {
    let mut run = Run::new(base(), flat().with_replay_undelivered(true));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    run.input(Input::Written(4));
    run.input(Input::SocketError(ErrorKind::ConnectionReset));
    assert_eq!(run.handed_back(), b"", "kept for the next connection");
    run.request(Request::Send(Bytes::from_static(b"abc")));

    let outputs = run.connect();

    let sent = transmitted(&outputs);
    assert_eq!(sent, b"456789abc");
    run.input(Input::Written(9));
    run.request(Request::Finish);
    run.input(Input::PeerEof);
    let report = run.report();
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (13, 13, 0),
        "4 written by the first connection, 9 by the second: each byte once"
    );
}

#[test]
fn the_session_report_accounts_for_every_generation() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"first")));
    run.input(Input::Written(5));
    run.input(Input::Received(b"reply"));
    run.input(Input::SocketError(ErrorKind::ConnectionReset));
    run.request(Request::Send(Bytes::from_static(b"second")));
    run.connect();
    run.input(Input::Written(3));

    run.request(Request::Abort);

    let report = run.report();
    assert_eq!(report.result, Ok(Ending::Aborted));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered,
            report.bytes_received
        ),
        (11, 8, 3, 5)
    );
    assert_eq!(run.handed_back(), b"ond");
}

#[test]
fn a_report_about_an_earlier_generations_attempt_is_late_and_changes_nothing() {
    let mut run = Run::new(base(), flat());
    run.refuse();
    run.fire();
    assert_eq!(run.last_attempt(), AttemptId(1), "ids are never reused");

    let outputs = run.input(Input::Connected(AttemptId(0)));

    assert!(outputs.is_empty());
    assert_eq!(run.session.phase(), tcpclient_core::Phase::Connecting);
}

#[test]
fn finishing_while_waiting_with_nothing_to_send_ends_the_session_at_once() {
    let mut run = Run::new(base(), flat());
    run.refuse();

    run.request(Request::Finish);

    assert_eq!(run.report().result, Ok(Ending::Finished));
    assert_eq!(run.session.poll_timeout(), None);
}

#[test]
fn finishing_while_waiting_with_data_queued_connects_and_delivers_it() {
    let mut run = Run::new(base(), flat());
    run.refuse();
    run.request(Request::Send(Bytes::from_static(b"late")));
    run.request(Request::Finish);

    run.connect();
    run.input(Input::Written(4));
    run.input(Input::PeerEof);

    let report = run.report();
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(report.bytes_written, 4);
}

#[test]
fn tls_from_the_start_is_asked_for_again_on_every_connection() {
    let pki = Pki::new();
    let mut run = Run::new(base().with_tls(pki.client_tls()), flat());
    run.request(Request::StartTls);
    run.connect();
    run.input(Input::SocketError(ErrorKind::ConnectionReset));

    let outputs = run.connect();

    let first = outputs.iter().find_map(|o| match o {
        Output::Transmit(b) => Some(b.clone()),
        _ => None,
    });
    assert_eq!(
        first.as_deref().map(|b| &b[..1]),
        Some(&[0x16][..]),
        "the new connection starts with a ClientHello (a TLS handshake record)"
    );
}

#[test]
fn a_producer_refused_for_a_full_queue_hears_send_ready_after_a_reconnect() {
    let mut run = Run::new(base().with_send_limit(10), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    let refused = run.session.send(run.now, Bytes::from_static(b"more"));
    assert!(matches!(
        refused,
        Err(tcpclient_core::InvalidInput::QueueFull { .. })
    ));

    let outputs = run.input(Input::SocketError(ErrorKind::ConnectionReset));

    let events = event_names(&outputs);
    assert_eq!(
        events,
        ["Undelivered", "Disconnected", "Reconnecting", "SendReady"],
        "the bytes came back, so there is room: say so"
    );
}

#[test]
fn starttls_after_a_plaintext_preamble_is_not_tls_from_the_start() {
    let pki = Pki::new();
    let mut run = Run::new(base().with_tls(pki.client_tls()), flat());
    run.request(Request::Send(Bytes::from_static(b"EHLO me\r\n")));
    run.request(Request::StartTls);
    run.connect();
    run.input(Input::SocketError(ErrorKind::ConnectionReset));

    let outputs = run.connect();

    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Transmit(_))),
        "no ClientHello: the preamble is the application's to redo: {outputs:?}"
    );
    assert_eq!(
        run.handed_back(),
        b"EHLO me\r\n",
        "what the first connection did not send comes back"
    );
}

#[test]
fn consuming_before_the_outputs_are_drained_credits_the_connection_that_delivered() {
    let mut run = Run::new(base().with_receive_window(Some(10)), flat());
    run.connect();
    run.input(Input::Received(b"0123456789"));
    run.session
        .handle_input(run.now, Input::SocketError(ErrorKind::ConnectionReset))
        .unwrap();

    // Before draining: the client has closed, its report not yet taken.
    run.session.consumed(10).unwrap();
    run.drain();
    run.connect();

    assert_eq!(run.session.bytes_unconsumed(), 0);
    assert!(run.session.wants_read(), "the new connection reads");
}

#[test]
fn data_a_lost_connection_delivered_counts_against_the_next_ones_window() {
    let mut run = Run::new(base().with_receive_window(Some(10)), flat());
    run.connect();
    run.input(Input::Received(b"0123456789"));
    run.input(Input::SocketError(ErrorKind::ConnectionReset));

    run.connect();

    assert!(
        !run.session.wants_read(),
        "10 bytes are still held by the application: the window is full"
    );
    run.request(Request::Consumed(10));
    assert!(run.session.wants_read());
}

#[test]
fn sends_while_the_connection_flushes_after_the_peer_closed_go_on_the_next_one() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"first")));
    run.input(Input::PeerEof);

    // The connection is closing by itself, waiting for its last write; the session is not.
    run.request(Request::Send(Bytes::from_static(b"second")));
    run.input(Input::Written(5));
    let outputs = run.connect();

    let sent = transmitted(&outputs);
    assert_eq!(sent, b"second");
}

#[test]
fn a_connection_whose_tls_handshake_never_finishes_is_not_stable_however_long_it_lasts() {
    let pki = Pki::new();
    let config = base()
        .with_tls(pki.client_tls())
        .with_tls_handshake_timeout(Duration::from_secs(60));
    let mut run = Run::new(config, flat().with_stable_after(Duration::from_secs(30)));
    run.request(Request::StartTls);
    for _ in 0..3 {
        run.connect();
        // Up for 60 s, the handshake unanswered: its timeout ends it.
        run.fire();
    }

    assert_eq!(
        run.delays(),
        [1.0, 1.6, 2.56].map(secs),
        "the backoff grows: none of these was a usable connection"
    );
}

#[test]
fn each_policy_setter_sets_what_it_names() {
    let defaults = ReconnectPolicy::default();
    let policy = ReconnectPolicy::default()
        .with_initial_delay(secs(0.123))
        .with_multiplier(3.0)
        .with_max_delay(secs(4.5))
        .with_jitter(Jitter::None)
        .with_seed(9)
        .with_max_attempts(Some(4))
        .with_max_elapsed(Some(secs(60.0)))
        .with_stable_after(secs(0.789))
        .with_replay_undelivered(!defaults.replay_undelivered);

    assert_ne!(defaults.initial_delay, policy.initial_delay);
    assert_eq!(policy.initial_delay, secs(0.123));
    assert_eq!(policy.multiplier, 3.0);
    assert_eq!(policy.max_delay, secs(4.5));
    assert_eq!(policy.jitter, Jitter::None);
    assert_eq!(policy.seed, 9);
    assert_eq!(policy.max_attempts, Some(4));
    assert_eq!(policy.max_elapsed, Some(secs(60.0)));
    assert_eq!(policy.stable_after, secs(0.789));
    assert_ne!(policy.replay_undelivered, defaults.replay_undelivered);
    // The backoff the setters add up to: 123 ms, then three times as long each attempt,
    // up to the cap.
    assert_eq!(policy.backoff(0), secs(0.123));
    assert_eq!(policy.backoff(2), secs(0.123 * 9.0));
    assert_eq!(policy.backoff(5), secs(4.5));
}

#[test]
fn a_refused_producer_is_called_back_only_once_replayed_bytes_are_written() {
    let config = base().with_send_limit(10);
    let mut run = Run::new(config, flat().with_replay_undelivered(true));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    let refused = run.session.send(run.now, Bytes::from_static(b"x"));
    assert!(matches!(refused, Err(InvalidInput::QueueFull { .. })));

    // Lost with all ten bytes unwritten: the next connection starts full of them.
    let lost = run.input(Input::SocketError(ErrorKind::ConnectionReset));
    assert!(
        !lost
            .iter()
            .any(|o| matches!(o, Output::Event(Event::SendReady))),
        "no room yet: the replayed bytes fill the queue"
    );
    let connected = run.connect();
    let written = transmitted(&connected).len();
    assert_eq!(written, 10, "the replay leaves first");

    let after = run.input(Input::Written(written));
    assert!(
        after
            .iter()
            .any(|o| matches!(o, Output::Event(Event::SendReady)))
    );
}

#[test]
fn attempt_ids_are_never_reused_by_a_later_generation() {
    let v6: std::net::SocketAddr = "[::1]:7".parse().unwrap();
    let v4: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
    let mut run = Run::to(("example", 7), Config::new(), flat());
    run.input(Input::Resolved {
        family: None,
        result: Ok(&[v6, v4]),
    });
    run.fire(); // the attempt delay: the second address joins
    let first_generation: Vec<AttemptId> = connects(&run.log);
    assert_eq!(first_generation, [AttemptId(0), AttemptId(1)]);
    run.input(Input::ConnectFailed(
        AttemptId(0),
        ErrorKind::ConnectionRefused,
    ));
    run.input(Input::ConnectFailed(
        AttemptId(1),
        ErrorKind::ConnectionRefused,
    ));

    run.fire(); // the backoff
    run.input(Input::Resolved {
        family: None,
        result: Ok(&[v6, v4]),
    });

    assert_eq!(
        connects(&run.log),
        [AttemptId(0), AttemptId(1), AttemptId(2)]
    );
}

/// The ids of every `Connect` among `outputs`.
fn connects(outputs: &[Output]) -> Vec<AttemptId> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Connect { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect()
}

#[test]
fn a_second_report_about_a_connection_that_just_ended_is_late_not_the_next_ones() {
    let mut run = Run::new(base(), flat());
    run.connect();
    let now = run.now;
    run.session
        .handle_input(now, Input::SocketError(ErrorKind::ConnectionReset))
        .unwrap();

    // Before its outputs were taken: the driver's second word about the same socket.
    let again = run
        .session
        .handle_input(now, Input::SocketError(ErrorKind::BrokenPipe));

    assert_eq!(again, Ok(()));
    run.drain();
    assert!(matches!(
        run.events().last(),
        Some(Event::Reconnecting { .. })
    ));
}

#[test]
fn after_the_session_ends_sends_are_handed_back_and_requests_refused_reports_ignored() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Abort);
    assert!(run.session.is_closed());
    let now = run.now;

    let refused = run.session.send(run.now, Bytes::from_static(b"late"));
    assert!(
        matches!(&refused, Err(InvalidInput::SendAfterShutdown { data, .. }) if data == "late"),
        "{refused:?}"
    );
    assert!(run.session.finish(now).is_err());
    assert!(run.session.start_tls(now).is_err());
    assert_eq!(
        run.session
            .handle_input(now, Input::SocketError(ErrorKind::NotConnected)),
        Ok(())
    );
}

#[test]
fn a_send_after_finish_is_refused_while_the_session_drains() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Finish);
    assert!(!run.session.is_closed());

    let refused = run.session.send(run.now, Bytes::from_static(b"more"));

    assert!(matches!(
        refused,
        Err(InvalidInput::SendAfterShutdown { .. })
    ));
}

#[test]
fn a_late_answer_to_an_earlier_connections_lookup_is_ignored_and_a_repeated_one_refused() {
    let v6: std::net::SocketAddr = "[::1]:7".parse().unwrap();
    let mut run = Run::to(("example", 7), Config::new(), flat());
    run.input(Input::Resolved {
        family: Some(tcpclient_core::Family::V6),
        result: Ok(&[v6]),
    });
    assert!(
        run.session
            .handle_input(
                run.now,
                Input::Resolved {
                    family: Some(tcpclient_core::Family::V6),
                    result: Ok(&[v6])
                }
            )
            .is_err(),
        "the first connection's own lookup answered twice: the driver's mistake"
    );
    run.input(Input::Connected(AttemptId(0)));
    run.input(Input::SocketError(ErrorKind::ConnectionReset));
    assert_eq!(run.session.phase(), tcpclient_core::Phase::Delay);

    // The first lookup's IPv4 answer comes now, while the next connection waits.
    let late = run.session.handle_input(
        run.now,
        Input::Resolved {
            family: Some(tcpclient_core::Family::V4),
            result: Ok(&[]),
        },
    );

    assert_eq!(late, Ok(()));
}

#[test]
fn sends_while_the_peer_closes_are_held_for_the_next_connection_within_the_send_limit() {
    // The peer closed while our bytes wait to be written: the connection drains them
    // before it ends, and takes no new ones meanwhile.
    let closing = || {
        let mut run = Run::new(base().with_send_limit(10), flat());
        run.connect();
        run.request(Request::Send(Bytes::from_static(b"abc")));
        run.input(Input::PeerEof);
        assert!(
            run.session.phase() != tcpclient_core::Phase::Closed,
            "still draining"
        );
        run
    };
    let send =
        |run: &mut Run, data: &'static [u8]| run.session.send(run.now, Bytes::from_static(data));

    let mut run = closing();
    assert!(send(&mut run, b"012345").is_ok());
    assert!(
        send(&mut run, b"6789").is_ok(),
        "held at the limit, not past it"
    );
    assert!(matches!(
        send(&mut run, b"x"),
        Err(InvalidInput::QueueFull { .. })
    ));

    let mut run = closing();
    assert!(
        send(&mut run, b"0123456789ab").is_ok(),
        "with nothing held, one send of any size"
    );
    assert!(matches!(
        send(&mut run, b"x"),
        Err(InvalidInput::QueueFull { .. })
    ));
}

#[test]
fn a_session_counts_its_generations_and_keeps_its_policy() {
    let policy = flat().with_max_attempts(Some(7));
    let mut run = Run::new(base(), policy);
    assert_eq!(run.session.generation(), 0);
    assert_eq!(
        run.session
            .config()
            .reconnect
            .as_ref()
            .and_then(|p| p.max_attempts),
        Some(7)
    );
    run.connect();
    run.input(Input::SocketError(ErrorKind::ConnectionReset));
    assert_eq!(run.session.generation(), 1);
    run.connect();
    run.input(Input::SocketError(ErrorKind::ConnectionReset));
    assert_eq!(run.session.generation(), 2);
}

#[test]
fn a_finish_before_the_first_connection_connects_and_closes_as_a_client_does() {
    let mut run = Run::new(base().with_delay(secs(1.0)), flat());
    run.request(Request::Finish);
    assert!(!run.session.is_closed(), "the start delay runs on");

    run.fire();

    assert!(run.log.iter().any(|o| matches!(o, Output::Connect { .. })));
    // Once connected, it finishes: its side shut down, and the peer's end closes it.
    let connected = run.connect();
    assert!(
        connected.iter().any(|o| matches!(o, Output::ShutdownWrite)),
        "{connected:?}"
    );
    run.input(Input::PeerEof);
    assert_eq!(run.report().result, Ok(Ending::Finished));
}

#[test]
fn a_finish_right_after_a_loss_ends_the_session_instead_of_reaching_the_lost_connection() {
    let mut run = Run::new(base(), flat());
    run.connect();
    let now = run.now;
    run.session
        .handle_input(now, Input::SocketError(ErrorKind::ConnectionReset))
        .unwrap();

    // Before the lost connection's outputs were taken.
    let finished = run.session.finish(now);

    assert_eq!(finished, Ok(()));
    run.drain();
    assert_eq!(run.report().result, Ok(Ending::Finished));
}

#[test]
fn a_server_that_keeps_closing_at_once_ends_the_session_at_its_attempt_limit() {
    let mut run = Run::new(base(), flat().with_max_attempts(Some(2)));
    for _ in 0..5 {
        if run.session.is_closed() {
            break;
        }
        run.connect();
        run.input(Input::PeerEof);
    }

    assert!(run.session.is_closed());
    assert_eq!(run.delays().len(), 2, "two reconnects, then the limit");
    assert_eq!(run.report().result, Ok(Ending::PeerClosed));
}

/// A copied send (`Session::send_slice`) is a `Send` of the same bytes in every state of a
/// session: before the first connection, on one, between two (held, then refused when the
/// queue is full), and after `Finish`: the same answers, the same outputs, the same report.
#[test]
fn a_copied_send_is_a_send_of_the_same_bytes_in_every_state_of_a_session() {
    let config = base().with_send_limit(16);
    let policy = flat().with_replay_undelivered(true);
    let start = tcpclient_testkit::epoch();
    let (mut by_bytes, mut by_slice) = (
        Run::starting_at(
            tcpclient_testkit::local(),
            config.clone(),
            policy.clone(),
            start,
        ),
        Run::starting_at(tcpclient_testkit::local(), config, policy, start),
    );
    let send = |by_bytes: &mut Run, by_slice: &mut Run, data: &'static [u8]| {
        let a = by_bytes
            .session
            .send(by_bytes.now, Bytes::from_static(data));
        let b = by_slice.session.send_slice(by_slice.now, data);
        assert_eq!(a, b, "the same answer to {data:?}");
        assert_eq!(by_bytes.drain(), by_slice.drain());
        a
    };
    let both = |by_bytes: &mut Run, by_slice: &mut Run, step: &dyn Fn(&mut Run) -> Vec<Output>| {
        assert_eq!(step(by_bytes), step(by_slice));
    };

    send(&mut by_bytes, &mut by_slice, b"early").unwrap();
    both(&mut by_bytes, &mut by_slice, &|r| r.connect());
    send(&mut by_bytes, &mut by_slice, b"+on").unwrap();
    both(&mut by_bytes, &mut by_slice, &|r| {
        r.input(Input::Written(3))
    });
    both(&mut by_bytes, &mut by_slice, &|r| {
        r.input(Input::SocketError(ErrorKind::ConnectionReset))
    });
    send(&mut by_bytes, &mut by_slice, b"held").unwrap();
    let refused = send(&mut by_bytes, &mut by_slice, b"one too many");
    assert!(
        matches!(&refused, Err(InvalidInput::QueueFull { data, .. }) if data == "one too many"),
        "{refused:?}"
    );
    both(&mut by_bytes, &mut by_slice, &|r| r.connect());
    both(&mut by_bytes, &mut by_slice, &|r| {
        r.request(Request::Finish)
    });
    let late = send(&mut by_bytes, &mut by_slice, b"late");
    assert!(
        matches!(late, Err(InvalidInput::SendAfterShutdown { .. })),
        "{late:?}"
    );
    both(&mut by_bytes, &mut by_slice, &|r| {
        r.input(Input::Written(9))
    });
    both(&mut by_bytes, &mut by_slice, &|r| r.input(Input::PeerEof));

    assert_eq!(by_bytes.report(), by_slice.report());
    assert_eq!(by_slice.report().bytes_accepted, 12, "early, +on and held");
}

#[test]
fn with_replay_what_a_lost_connection_wrote_and_never_got_acknowledged_goes_first() {
    let mut run = Run::new(base(), flat().with_replay_undelivered(true));
    run.connect();
    let data: Bytes = (0..100u8).collect();
    run.request(Request::Send(data.clone()));
    run.input(Input::Written(100));

    run.unacknowledged = Some(40);
    let outputs = run.input(Input::SocketError(ErrorKind::ConnectionReset));
    let Some(Output::Event(Event::Disconnected { report, .. })) = outputs
        .iter()
        .find(|o| matches!(o, Output::Event(Event::Disconnected { .. })))
    else {
        panic!("{outputs:?}")
    };
    assert_eq!(
        (
            report.bytes_unconfirmed,
            report.bytes_lost,
            report.bytes_undelivered
        ),
        (60, 40, 40)
    );
    run.unacknowledged = None;
    let outputs = run.connect();

    assert_eq!(
        transmitted(&outputs),
        &data[60..],
        "the lost bytes, first, once"
    );
    run.input(Input::Written(40));
    run.request(Request::Finish);
    run.input(Input::PeerEof);
    let report = run.report();
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_confirmed,
            report.bytes_unconfirmed,
            report.bytes_undelivered
        ),
        (100, 100, 40, 60, 0),
        "what the first server's TCP took is unconfirmed: that connection failed"
    );
    assert!(!report.is_clean());
}

#[test]
fn a_connection_that_lost_everything_it_wrote_is_not_stable_however_long_it_lasted() {
    let mut run = Run::new(base(), flat().with_replay_undelivered(true));
    run.unacknowledged = Some(5);
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"never")));
    for _ in 0..3 {
        run.input(Input::Written(5));
        // Up for a minute, and the server read none of it.
        run.now += Duration::from_secs(60);
        run.input(Input::SocketError(ErrorKind::ConnectionReset));
        run.connect();
    }

    assert_eq!(
        run.delays(),
        [1.0, 1.6, 2.56].map(secs),
        "a server that accepts and never reads is retried ever more slowly"
    );
}

#[test]
fn a_finish_while_the_connection_closes_by_itself_delivers_what_waited_on_the_next() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.unacknowledged = Some(0);
    // The server closes first; our FIN goes out and is never acknowledged.
    run.input(Input::PeerEof);
    run.request(Request::Send(Bytes::from_static(b"after its close")));
    run.request(Request::Finish);

    // It asks, again and again, until its drain deadline.
    for _ in 0..100 {
        if run
            .events()
            .iter()
            .any(|e| matches!(e, Event::Reconnecting { .. }))
        {
            break;
        }
        run.fire();
    }
    assert_eq!(run.elapsed(), secs(10.0));
    run.unacknowledged = None;
    let outputs = run.connect();

    assert_eq!(transmitted(&outputs), b"after its close");
    run.input(Input::Written(15));
    run.input(Input::PeerEof);
    let report = run.report();
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!((report.bytes_accepted, report.bytes_confirmed), (15, 15));
}

// ---- the preamble, reconnects on demand, the application's acknowledgements ----

fn with_preamble(preamble: Preamble) -> ReconnectPolicy {
    flat().with_preamble(preamble)
}

/// Loses the current connection to a reset.
fn reset(run: &mut Run) -> Vec<Output> {
    run.input(Input::SocketError(ErrorKind::ConnectionReset))
}

#[test]
fn a_fixed_preamble_goes_first_on_every_connection_before_what_was_queued_or_replayed() {
    let login = Preamble::Fixed(Bytes::from_static(b"AUTH pw\n"));
    let mut run = Run::new(base(), with_preamble(login).with_replay_undelivered(true));
    run.request(Request::Send(Bytes::from_static(b"GET a\n")));
    assert_eq!(transmitted(&run.connect()), b"AUTH pw\nGET a\n");
    run.input(Input::Written(12));
    reset(&mut run);
    // Queued while waiting: it goes after the preamble and the replayed bytes.
    run.request(Request::Send(Bytes::from_static(b"GET b\n")));

    let sent = transmitted(&run.connect());

    assert_eq!(sent, b"AUTH pw\na\nGET b\n");
    run.input(Input::Written(sent.len()));
    run.request(Request::Finish);
    run.input(Input::PeerEof);
    let report = run.report();
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_confirmed
        ),
        (12, 12, 8),
        "the preamble is not the application's; the first connection's 4 are unconfirmed"
    );
    assert_eq!(report.generations[1].bytes_written, 8, "a\\nGET b\\n");
}

#[test]
fn a_dialogue_holds_every_send_until_the_application_says_its_preamble_is_done() {
    let mut run = Run::new(base(), with_preamble(Preamble::Dialogue));
    assert!(run.session.awaits_preamble());
    run.request(Request::Send(Bytes::from_static(b"GET a\n")));
    assert_eq!(transmitted(&run.connect()), b"", "held for the preamble");
    run.session
        .send_preamble(run.now, Bytes::from_static(b"HELLO 3\n"))
        .expect("a preamble is taken while it is awaited");
    let greeting = transmitted(&run.drain());
    run.request(Request::Send(Bytes::from_static(b"GET b\n")));
    assert_eq!(
        greeting, b"HELLO 3\n",
        "the preamble goes ahead of the sends"
    );
    assert_eq!(transmitted(&run.drain()), b"");

    run.session
        .preamble_done(run.now)
        .expect("the preamble ends once");

    assert!(!run.session.awaits_preamble());
    assert_eq!(transmitted(&run.drain()), b"GET a\nGET b\n");
    assert!(matches!(
        run.session
            .send_preamble(run.now, Bytes::from_static(b"late")),
        Err(InvalidInput::Unexpected {
            input: "send_preamble",
            ..
        })
    ));
    assert!(
        run.session.preamble_done(run.now).is_err(),
        "done once per connection"
    );
}

#[test]
fn after_a_reconnect_the_dialogue_is_awaited_again_and_the_replay_waits_with_the_sends() {
    let mut run = Run::new(
        base(),
        with_preamble(Preamble::Dialogue).with_replay_undelivered(true),
    );
    run.connect();
    run.say_hi();
    run.request(Request::Send(Bytes::from_static(b"one\n")));
    run.drain();
    reset(&mut run);
    run.request(Request::Send(Bytes::from_static(b"two\n")));
    let outputs = run.connect();
    assert!(
        event_names(&outputs).contains(&"Reconnected"),
        "{outputs:?}"
    );
    assert_eq!(transmitted(&outputs), b"");
    assert!(run.session.awaits_preamble());

    run.say_hi();

    assert_eq!(transmitted(&run.drain()), b"HI\none\ntwo\n");
}

#[test]
fn without_a_dialogue_the_preamble_requests_are_refused() {
    let mut run = Run::new(base(), flat());
    run.connect();
    assert!(!run.session.awaits_preamble());
    assert!(
        run.session
            .send_preamble(run.now, Bytes::from_static(b"x"))
            .is_err()
    );
    assert!(run.session.preamble_done(run.now).is_err());
}

#[test]
fn a_finish_before_the_preamble_is_done_hands_back_what_waited_for_it() {
    let mut run = Run::new(base(), with_preamble(Preamble::Dialogue));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"GET a\n")));

    run.request(Request::Finish);
    assert!(!run.session.awaits_preamble(), "no preamble once finishing");
    assert!(run.session.preamble_done(run.now).is_err());
    run.input(Input::PeerEof);

    assert_eq!(run.handed_back(), b"GET a\n");
    let report = run.report();
    assert_eq!(
        (
            report.bytes_undelivered,
            report.bytes_handed_back,
            report.is_clean()
        ),
        (6, 0, false)
    );
}

#[test]
fn a_reconnect_on_demand_resets_the_connection_and_goes_through_the_backoff() {
    let mut run = Run::new(base(), flat().with_initial_delay(secs(0.5)));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"PING\n")));
    run.drain();

    run.session
        .reconnect(run.now, Leave::Reset)
        .expect("a live connection can be dropped");
    let outputs = run.drain();

    assert_eq!(outputs[0], Output::Reset);
    assert_eq!(
        event_names(&outputs),
        ["Undelivered", "Disconnected", "Reconnecting"]
    );
    assert_eq!(run.handed_back(), b"PING\n", "never written: handed back");
    assert_eq!(run.delays(), [secs(0.5)]);
    assert!(
        run.session.reconnect(run.now, Leave::Reset).is_err(),
        "nothing to drop while waiting"
    );
    let reconnected = run.connect();
    assert!(event_names(&reconnected).contains(&"Reconnected"));
}

#[test]
fn a_graceful_reconnect_delivers_first_and_sends_made_meanwhile_go_on_the_next_connection() {
    let mut run = Run::new(base(), flat());
    run.connect();
    let sent = transmitted(&run.request(Request::Send(Bytes::from_static(b"QUIT\n"))));
    assert_eq!(sent, b"QUIT\n");

    run.session.reconnect(run.now, Leave::Finish).unwrap();
    run.drain();
    run.request(Request::Send(Bytes::from_static(b"NEXT\n")));
    let flushed = run.input(Input::Written(5));
    assert!(flushed.contains(&Output::ShutdownWrite), "{flushed:?}");
    run.input(Input::PeerEof);

    assert_eq!(run.handed_back(), b"");
    let disconnected = run.events().into_iter().find_map(|e| match e {
        Event::Disconnected { report, .. } => Some(report.clone()),
        _ => None,
    });
    assert_eq!(
        disconnected.map(|r| (r.result, r.bytes_confirmed)),
        Some((Ok(Ending::Finished), 5))
    );
    assert_eq!(transmitted(&run.connect()), b"NEXT\n");
}

#[test]
fn a_reconnect_on_demand_counts_against_the_attempt_limit() {
    let mut run = Run::new(base(), flat().with_max_attempts(Some(1)));
    run.connect();
    run.session.reconnect(run.now, Leave::Reset).unwrap();
    run.drain();
    run.connect();

    run.session.reconnect(run.now, Leave::Reset).unwrap();
    run.drain();

    assert_eq!(run.report().result, Ok(Ending::Aborted));
}

#[test]
fn acknowledged_replay_sends_again_everything_the_protocol_did_not_answer() {
    let policy = flat().with_replay_unacknowledged(true);
    let mut run = Run::new(base(), policy);
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"SET a\n")));
    run.request(Request::Send(Bytes::from_static(b"SET b\n")));
    run.input(Input::Written(12));
    // The server answered the first request only; the second was written and taken by its
    // TCP, and may never have been processed.
    run.session.acknowledged(6).unwrap();
    assert_eq!(run.session.bytes_unacknowledged(), 6);
    reset(&mut run);
    assert_eq!(run.handed_back(), b"");

    let outputs = run.connect();

    assert_eq!(
        transmitted(&outputs),
        b"SET b\n",
        "at least once: the unanswered request again"
    );
    let replays_from = outputs.iter().find_map(|o| match o {
        Output::Event(Event::Reconnected { replays_from, .. }) => Some(*replays_from),
        _ => None,
    });
    assert_eq!(
        replays_from,
        Some(6),
        "its answers are to the requests from byte 6 on"
    );
    run.input(Input::Written(6));
    run.session.acknowledged(6).unwrap();
    run.request(Request::Finish);
    run.input(Input::PeerEof);
    let report = run.report();
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_confirmed,
            report.bytes_unconfirmed,
            report.bytes_undelivered
        ),
        (12, 12, 0, 0)
    );
    assert!(report.is_clean());
}

#[test]
fn the_window_of_unacknowledged_bytes_is_the_send_limit_and_an_acknowledgement_reopens_it() {
    let config = base().with_send_limit(8);
    let mut run = Run::new(config, flat().with_replay_unacknowledged(true));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"12345678")));
    run.input(Input::Written(8));

    let refused = run.session.send(run.now, Bytes::from_static(b"9"));

    assert!(
        matches!(refused, Err(InvalidInput::QueueFull { queued: 8, .. })),
        "written but unacknowledged still fills the window: {refused:?}"
    );
    run.session.acknowledged(8).unwrap();
    assert!(event_names(&run.drain()).contains(&"SendReady"));
    assert_eq!(run.session.send(run.now, Bytes::from_static(b"9")), Ok(()));
    assert_eq!(
        run.session.acknowledged(5),
        Err(InvalidInput::AcknowledgedTooMuch {
            acknowledged: 5,
            unacknowledged: 1
        })
    );
}

#[test]
fn acknowledgements_need_the_policy_that_keeps_what_they_acknowledge() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"x")));
    assert!(matches!(
        run.session.acknowledged(1),
        Err(InvalidInput::Unexpected {
            input: "acknowledged",
            ..
        })
    ));
}

#[test]
fn the_session_report_lists_every_attempt_of_every_generation_under_the_ids_the_outputs_used() {
    let mut run = Run::new(base(), flat());
    run.refuse();
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"abcdef")));
    run.input(Input::Written(2));
    reset(&mut run);
    // Handed back on the way, and sent again by the application.
    run.request(Request::Send(Bytes::from_static(b"cdef")));
    run.connect();
    run.input(Input::Written(4));
    run.request(Request::Finish);
    run.input(Input::PeerEof);

    let report = run.report();
    let ids: Vec<u32> = report.attempts.iter().map(|a| a.id.0).collect();
    assert_eq!(
        ids,
        connects(&run.log).iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert_eq!(ids, [0, 1, 2]);
    // 1 s after the refusal, then 1.6 s after the reset: from the session's start.
    assert_eq!(report.attempts[2].started, secs(2.6));
    let generations: Vec<(u32, u64, u64)> = report
        .generations
        .iter()
        .map(|g| (g.generation, g.bytes_written, g.bytes_handed_back))
        .collect();
    assert_eq!(generations, [(0, 0, 0), (1, 2, 4), (2, 4, 0)]);
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_handed_back,
            report.bytes_undelivered
        ),
        (10, 4, 0),
        "handed back and sent again is not undelivered at the end"
    );
}

#[test]
fn two_runs_of_the_same_inputs_give_equal_reports_whenever_they_start() {
    let play = |start: Instant| {
        let mut run = Run::starting_at(tcpclient_testkit::local(), base(), flat(), start);
        run.connect();
        run.request(Request::Send(Bytes::from_static(b"abc")));
        run.input(Input::Written(3));
        reset(&mut run);
        run.connect();
        run.request(Request::Finish);
        run.input(Input::PeerEof);
        run.report().clone()
    };
    let epoch = tcpclient_testkit::epoch();
    assert_eq!(play(epoch), play(epoch + secs(1000.0)));
}

#[test]
fn a_connection_closing_by_itself_takes_no_preamble_and_what_waits_goes_on_the_next_one() {
    let mut run = Run::new(base(), with_preamble(Preamble::Dialogue));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"GET a\n")));
    run.session
        .send_preamble(run.now, Bytes::from_static(b"HI\n"))
        .unwrap();
    run.drain();
    // The server closes before the preamble is done; the connection flushes it.
    run.input(Input::PeerEof);

    assert!(!run.session.awaits_preamble());
    assert!(
        run.session
            .send_preamble(run.now, Bytes::from_static(b"more"))
            .is_err()
    );
    assert!(run.session.preamble_done(run.now).is_err());
    run.input(Input::Written(3));
    run.connect();
    run.say_hi();

    assert_eq!(transmitted(&run.drain()), b"HI\nGET a\n");
    assert_eq!(run.handed_back(), b"");
}

#[test]
fn with_a_dialogue_the_replay_begins_at_what_is_unacknowledged_when_the_preamble_is_done() {
    let policy = with_preamble(Preamble::Dialogue).with_replay_unacknowledged(true);
    let mut run = Run::new(base(), policy);
    run.connect();
    run.say_hi();
    run.request(Request::Send(Bytes::from_static(b"GET a\n")));
    run.request(Request::Send(Bytes::from_static(b"GET b\n")));
    run.input(Input::Written(15));
    reset(&mut run);
    let outputs = run.connect();
    let replays_from = outputs.iter().find_map(|o| match o {
        Output::Event(Event::Reconnected { replays_from, .. }) => Some(*replays_from),
        _ => None,
    });
    assert_eq!(replays_from, Some(0));

    // The answer to the first request, taken from the lost connection only now.
    run.session.acknowledged(6).unwrap();
    run.say_hi();

    assert_eq!(
        transmitted(&run.drain()),
        b"HI\nGET b\n",
        "answered, the first request does not go again"
    );
}

#[test]
fn a_finish_while_the_connection_makes_way_for_the_next_ends_the_session_with_it() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.session.reconnect(run.now, Leave::Finish).unwrap();
    run.drain();

    run.request(Request::Finish);
    run.input(Input::PeerEof);

    assert_eq!(run.report().result, Ok(Ending::Finished));
    assert!(
        !event_names(&run.log).contains(&"Reconnecting"),
        "no next connection once the application finished"
    );
}

// ---- the session's books and its stability, exactly ----

#[test]
fn bytes_lost_with_every_generation_are_in_the_sessions_report() {
    let mut run = Run::new(base(), flat().with_max_attempts(Some(1)));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    run.input(Input::Written(10));
    run.unacknowledged = Some(4);
    reset(&mut run);
    assert_eq!(run.session.bytes_written(), 10, "each byte written once");
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"abcdef")));
    run.input(Input::Written(6));
    run.unacknowledged = Some(2);

    reset(&mut run);

    let report = run.report();
    assert_eq!(
        report.bytes_lost, 6,
        "4 with the first connection, 2 with the second"
    );
    assert_eq!(run.handed_back(), b"6789ef");
}

#[test]
fn a_connection_that_got_some_of_its_bytes_through_is_stable_and_resets_the_backoff() {
    let mut run = Run::new(base(), flat().with_stable_after(secs(1.0)));
    for _ in 0..2 {
        run.connect();
        run.request(Request::Send(Bytes::from_static(b"0123456789")));
        run.input(Input::Written(10));
        run.now += secs(2.0);
        // 6 of the 10 reached the peer's TCP before the loss.
        run.unacknowledged = Some(4);
        reset(&mut run);
        run.unacknowledged = None;
    }

    assert_eq!(run.attempts(), [0, 0], "each connection made progress");
}

#[test]
fn an_abort_while_sends_wait_for_the_next_connection_ends_the_session() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"first")));
    run.input(Input::PeerEof);
    // The connection flushes "first" and closes by itself; this waits for the next one.
    run.request(Request::Send(Bytes::from_static(b"second")));

    run.request(Request::Abort);
    run.input(Input::Written(5));

    assert_eq!(run.report().result, Ok(Ending::Aborted));
    assert!(!event_names(&run.log).contains(&"Reconnecting"));
    assert_eq!(run.handed_back(), b"firstsecond", "the write came too late");
}

#[test]
fn an_answer_to_a_question_of_a_connection_that_ended_is_late_and_ignored() {
    let start = tcpclient_testkit::epoch();
    let mut session = Client::new(
        tcpclient_testkit::local(),
        base().with_reconnect(flat()),
        start,
    );
    while session.poll_output().is_some() {}
    session
        .handle_input(start, Input::Connected(AttemptId(0)))
        .unwrap();
    session
        .send(start, Bytes::from(vec![7u8; 300 * 1024]))
        .unwrap();
    while session.poll_output().is_some() {}
    session
        .handle_input(start, Input::Written(300 * 1024))
        .unwrap();
    // Past 256 KiB, a question: the test leaves it unanswered.
    let asked: Vec<Output> = std::iter::from_fn(|| session.poll_output()).collect();
    assert!(asked.contains(&Output::QueryUnacknowledged), "{asked:?}");
    session.reconnect(start, Leave::Reset).unwrap();
    // The driver never answers: the wait for it ends, and the connection with it.
    let later = session.poll_timeout().expect("the wait for the answer");
    session.handle_input(later, Input::Timeout).unwrap();
    while session.poll_output().is_some() {}
    assert_eq!(session.generation(), 1);

    let late = Input::Unacknowledged(Unacknowledged::Known {
        bytes: 0,
        fin_acknowledged: false,
    });

    assert_eq!(session.handle_input(later, late), Ok(()));
    assert_eq!(session.poll_output(), None, "and changes nothing");
}

#[test]
fn with_tls_from_the_first_byte_a_fixed_preamble_goes_after_the_handshake_on_every_connection() {
    let pki = Pki::new();
    let login = Preamble::Fixed(Bytes::from_static(b"AUTH pw\n"));
    let config = base().with_tls(pki.client_tls());
    let mut run = Run::new(config, with_preamble(login));
    run.request(Request::StartTls);

    for connection in 0..2 {
        let outputs = run.connect();
        let sent = transmitted(&outputs);
        assert_eq!(
            sent.first(),
            Some(&0x16),
            "connection {connection} begins with the ClientHello"
        );
        assert!(
            !sent.windows(8).any(|w| w == b"AUTH pw\n"),
            "connection {connection}: the preamble never leaves in plaintext"
        );
        reset(&mut run);
    }
}

#[test]
fn a_starttls_dialogue_as_the_preamble_keeps_the_replay_for_after_the_new_handshake() {
    let pki = Pki::new();
    let config = base().with_tls(pki.client_tls());
    let policy = with_preamble(Preamble::Dialogue).with_replay_undelivered(true);
    let mut run = Run::new(config, policy);
    // The dialogue: the STARTTLS line, (the server's go-ahead,) the handshake; what it
    // returns is everything transmitted meanwhile.
    let starttls = |run: &mut Run| {
        run.session
            .send_preamble(run.now, Bytes::from_static(b"STARTTLS\r\n"))
            .unwrap();
        let mut sent = transmitted(&run.drain());
        run.input(Input::Written(sent.len()));
        sent.extend(transmitted(&run.request(Request::StartTls)));
        run.session.preamble_done(run.now).unwrap();
        sent.extend(transmitted(&run.drain()));
        sent
    };
    run.connect();
    starttls(&mut run);
    run.request(Request::Send(Bytes::from_static(b"secret request")));
    reset(&mut run);
    assert_eq!(run.handed_back(), b"", "kept for after the next handshake");

    let outputs = run.connect();

    assert_eq!(transmitted(&outputs), b"", "nothing before the dialogue");
    let sent = starttls(&mut run);
    assert_eq!(&sent[..10], b"STARTTLS\r\n", "the dialogue first");
    assert_eq!(sent.get(10), Some(&0x16), "then the ClientHello");
    assert!(
        !sent.windows(6).any(|w| w == b"secret"),
        "the replay waits for the handshake, and goes encrypted"
    );
}

#[test]
fn copied_sends_wait_for_the_preamble_as_owned_ones_do() {
    let mut run = Run::new(base(), with_preamble(Preamble::Dialogue));
    run.connect();
    run.session.send_slice(run.now, b"GET a\n").unwrap();
    assert_eq!(transmitted(&run.drain()), b"", "held for the preamble");

    run.say_hi();

    assert_eq!(transmitted(&run.drain()), b"HI\nGET a\n");
}

#[test]
fn copied_sends_are_kept_for_acknowledgements_and_replayed_as_owned_ones_are() {
    let mut run = Run::new(base(), flat().with_replay_unacknowledged(true));
    run.connect();
    run.session.send_slice(run.now, b"GET a\n").unwrap();
    assert_eq!(transmitted(&run.drain()), b"GET a\n");
    run.input(Input::Written(6));
    assert_eq!(run.session.bytes_unacknowledged(), 6, "kept");

    reset(&mut run);
    let outputs = run.connect();

    assert_eq!(transmitted(&outputs), b"GET a\n", "replayed");
    assert_eq!(run.session.acknowledged(6), Ok(()));
}

#[test]
fn a_reconnect_asked_for_during_the_first_start_delay_starts_over_after_the_backoff() {
    let config = base().with_delay(secs(5.0));
    let mut run = Run::new(config, flat().with_initial_delay(secs(0.5)));

    run.session.reconnect(run.now, Leave::Reset).unwrap();
    let outputs = run.drain();

    assert_eq!(event_names(&outputs), ["Disconnected", "Reconnecting"]);
    assert_eq!(run.delays(), [secs(0.5)]);
}

#[test]
fn a_reconnect_is_refused_once_one_is_asked_for_and_once_the_session_ends_or_finishes() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.session.reconnect(run.now, Leave::Finish).unwrap();
    assert!(
        run.session.reconnect(run.now, Leave::Reset).is_err(),
        "one is on its way"
    );
    run.drain();
    run.input(Input::PeerEof);
    run.connect();

    run.request(Request::Finish);
    assert!(
        run.session.reconnect(run.now, Leave::Reset).is_err(),
        "finishing"
    );
    run.input(Input::PeerEof);
    assert!(run.session.is_closed());
    assert!(
        run.session.reconnect(run.now, Leave::Reset).is_err(),
        "over"
    );
}

#[test]
fn while_the_preamble_is_awaited_a_producer_waits_for_room_among_the_held_sends() {
    let config = base().with_send_limit(8);
    let policy = with_preamble(Preamble::Dialogue).with_replay_unacknowledged(true);
    let mut run = Run::new(config, policy);
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"12345678")));
    run.say_hi();
    run.drain();
    run.input(Input::Written(11));
    reset(&mut run);
    run.connect();
    assert!(matches!(
        run.session.send(run.now, Bytes::from_static(b"9")),
        Err(InvalidInput::QueueFull { .. })
    ));

    // The lost connection's answer, taken late: the window has room, but the 8 bytes
    // still wait for the preamble, to go again.
    run.session.acknowledged(8).unwrap();
    assert!(!event_names(&run.drain()).contains(&"SendReady"));
    run.say_hi();

    assert!(
        event_names(&run.drain()).contains(&"SendReady"),
        "acknowledged, they are not sent again: room"
    );
}

#[test]
fn with_acknowledgements_a_connection_is_stable_once_one_came_or_nothing_was_waiting() {
    let policy = flat()
        .with_stable_after(secs(1.0))
        .with_replay_unacknowledged(true);
    let mut run = Run::new(base(), policy);
    // Lost at once: not stable, so the next loss's attempt counts on from this one's.
    run.connect();
    reset(&mut run);
    // Some acknowledged while more still waits for an answer: stable.
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789")));
    run.input(Input::Written(10));
    run.session.acknowledged(4).unwrap();
    run.now += secs(2.0);
    reset(&mut run);
    // Long enough, but nothing acknowledged: the server took the bytes and answered none.
    run.connect();
    run.input(Input::Written(6));
    run.now += secs(2.0);
    reset(&mut run);
    run.connect();
    run.input(Input::Written(6));
    run.session.acknowledged(6).unwrap();
    run.now += secs(2.0);
    reset(&mut run);
    // Nothing waiting for an answer: nothing to make progress on.
    run.connect();
    run.now += secs(2.0);
    reset(&mut run);

    assert_eq!(run.attempts(), [0, 0, 1, 0, 0]);
}

#[test]
fn lost_bytes_handed_back_because_starttls_must_be_redone_count_as_lost() {
    let pki = Pki::new();
    let config = base().with_tls(pki.client_tls());
    let mut run = Run::new(config, flat().with_replay_undelivered(true));
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"STARTTLS\r\n")));
    run.input(Input::Written(10));
    run.request(Request::StartTls);
    run.unacknowledged = Some(4);
    reset(&mut run);
    run.unacknowledged = None;

    assert_eq!(run.handed_back(), b"LS\r\n", "not replayed in plaintext");
    run.connect();
    run.request(Request::Finish);
    run.input(Input::PeerEof);
    assert_eq!(run.report().bytes_lost, 4, "the ClientHello's loss aside");
}

/// A producer the connection refused for a full queue is told to send again as soon as a
/// reconnect asked for with `Leave::Finish` makes the connection finish: its sends now wait
/// for the next connection, where there is room, and the finishing connection, which takes
/// no more, would never say so. (Found by the proptest suite: the connection wrote all it
/// had and no `SendReady` came.)
#[test]
fn a_refused_producer_hears_send_ready_when_a_reconnect_makes_the_connection_finish() {
    let mut run = Run::new(base().with_send_limit(16), flat());
    run.connect();
    run.request(Request::Send(Bytes::from_static(b"0123456789abcdef")));
    let refused = run.session.send(run.now, Bytes::from_static(b"more"));
    assert!(
        matches!(refused, Err(InvalidInput::QueueFull { .. })),
        "{refused:?}"
    );

    run.session.reconnect(run.now, Leave::Finish).unwrap();

    assert!(
        event_names(&run.drain()).contains(&"SendReady"),
        "room among the sends for the next connection"
    );
    assert_eq!(
        run.session.send(run.now, Bytes::from_static(b"more")),
        Ok(()),
        "and the send is taken"
    );
}

/// A producer refused while sends waited for the next connection, whose room that
/// connection then owes, is told to send again once the peer closes it: its sends wait for
/// the connection after, and the closing one, which takes no more, would never say so.
/// (Found by the proptest suite: everything was written and no `SendReady` came.)
#[test]
fn a_refused_producer_hears_send_ready_when_the_peer_closes_the_connection_that_owed_it() {
    let mut run = Run::new(base().with_send_limit(16), flat());
    run.connect();
    reset(&mut run);
    run.request(Request::Send(Bytes::from_static(b"0123456789ab")));
    let refused = run.session.send(run.now, Bytes::from_static(b"12345678"));
    assert!(
        matches!(refused, Err(InvalidInput::QueueFull { .. })),
        "{refused:?}"
    );
    run.connect();

    let outputs = run.input(Input::PeerEof);

    assert_eq!(
        event_names(&outputs),
        ["PeerClosed", "SendReady"],
        "room among the sends for the next connection"
    );
}

#[test]
fn a_second_finish_is_refused_while_the_connection_makes_way_too() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.session.reconnect(run.now, Leave::Finish).unwrap();
    run.drain();

    assert_eq!(
        run.session.finish(run.now),
        Ok(()),
        "the session ends with the connection making way"
    );
    assert!(matches!(
        run.session.finish(run.now),
        Err(InvalidInput::Unexpected {
            input: "Finish",
            ..
        })
    ));
}

#[test]
fn a_second_finish_is_refused() {
    let mut run = Run::new(base(), flat());
    run.connect();
    run.request(Request::Finish);

    assert!(matches!(
        run.session.finish(run.now),
        Err(InvalidInput::Unexpected {
            input: "Finish",
            ..
        })
    ));
}
