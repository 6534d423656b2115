//! What the peer got: the client asks the driver what the peer's TCP has not acknowledged
//! (`Output::QueryUnacknowledged`), counts what the answer says, confirms bytes only when
//! the stream closed both ways, and hands back what was lost with the connection. Exact
//! outputs and deadlines, with the kernel's answers given by hand.

use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, CloseReport, Config, Ending, Error, Event, Input, InvalidInput, Output, Phase,
    Request, Unacknowledged,
};
use tcpclient_testkit::{Harness, Kernel, Pair, Pki, closed, local};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The kernel's answer: `bytes` not acknowledged, our FIN `fin_acknowledged` or not.
fn answer(bytes: u64, fin_acknowledged: bool) -> Input<'static> {
    Input::Unacknowledged(Unacknowledged::Known {
        bytes,
        fin_acknowledged,
    })
}

/// A client connected to 127.0.0.1:7 whose questions the test answers, having written
/// `sent` (a numbered pattern) in full.
fn connected_and_written(sent: usize, config: Config) -> (Harness, Bytes) {
    let mut h = Harness::new(local(), config);
    h.kernel = Kernel::ByHand;
    h.outputs();
    h.input(Input::Connected(AttemptId(0)));
    let data: Bytes = (0..sent).map(|i| (i % 251) as u8).collect();
    if sent > 0 {
        h.request(Request::Send(data.clone()));
        h.input(Input::Written(sent));
    }
    (h, data)
}

fn base() -> Config {
    Config::new()
}

/// `(written, confirmed, unconfirmed, lost, undelivered)`.
fn counts(report: &CloseReport) -> (u64, u64, u64, u64, u64) {
    (
        report.bytes_written,
        report.bytes_confirmed,
        report.bytes_unconfirmed,
        report.bytes_lost,
        report.bytes_undelivered,
    )
}

/// The peer vanished before our bytes reached it: the drain deadline asks, the kernel still
/// holds all 50,000 bytes and our FIN, and they come back, the very bytes sent.
#[test]
fn a_peer_that_vanished_before_the_data_is_owed_all_of_it_at_the_drain_deadline() {
    let (mut h, data) = connected_and_written(50_000, base().with_drain_timeout(ms(2000)));
    assert_eq!(h.request(Request::Finish), [Output::ShutdownWrite]);

    assert_eq!(h.fire(), [Output::QueryUnacknowledged]);
    assert_eq!(h.elapsed(), ms(2000));
    assert_eq!(
        h.client.phase(),
        Phase::Draining,
        "asking before the report"
    );
    let outputs = h.input(answer(50_000, false));

    assert_eq!(
        outputs[0],
        Output::Reset,
        "handed back as lost, the bytes must not arrive after all"
    );
    assert_eq!(outputs[1], Output::Event(Event::Undelivered(data.clone())));
    let report = closed(&outputs);
    assert_eq!(report.result, Err(Error::DrainTimeout));
    assert_eq!(counts(report), (50_000, 0, 0, 50_000, 50_000));
    assert!(!report.fin_acknowledged && !report.is_clean());
    let Output::Event(Event::Undelivered(back)) = &outputs[1] else {
        unreachable!()
    };
    assert_eq!(back.as_ptr(), data.as_ptr(), "the very bytes, not a copy");
}

/// A middlebox dropped the segment that carried our FIN and the last bytes: those are lost,
/// the rest acknowledged but unconfirmed, since the peer never closed.
#[test]
fn a_dropped_fin_loses_the_bytes_it_carried_and_confirms_nothing() {
    let (mut h, data) = connected_and_written(4000, base());
    h.request(Request::Finish);

    assert_eq!(h.fire(), [Output::QueryUnacknowledged]);
    let outputs = h.input(answer(176, false));

    assert_eq!(
        outputs[1],
        Output::Event(Event::Undelivered(data.slice(3824..)))
    );
    let report = closed(&outputs);
    assert_eq!(counts(report), (4000, 0, 3824, 176, 176));
    assert!(!report.peer_closed);
}

/// The peer read to our end and closed: its FIN came, and the kernel says ours was
/// acknowledged: every byte is confirmed, and the close is clean.
#[test]
fn a_close_both_ways_confirms_every_byte() {
    let (mut h, _) = connected_and_written(1000, base());
    h.request(Request::Finish);

    assert_eq!(
        h.input(Input::PeerEof),
        [
            Output::Event(Event::PeerClosed),
            Output::QueryUnacknowledged
        ]
    );
    let outputs = h.input(answer(0, true));

    assert_eq!(outputs[0], Output::Close);
    let report = closed(&outputs);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(counts(report), (1000, 1000, 0, 0, 0));
    assert!(report.fin_acknowledged && report.is_clean());
}

/// The peer's FIN crossed ours: the client asks again after 1 ms, 2 ms, 4 ms, ... until our
/// FIN is acknowledged.
#[test]
fn a_fin_not_yet_acknowledged_is_asked_about_again_and_again() {
    let (mut h, _) = connected_and_written(10, base());
    h.request(Request::Finish);
    h.input(Input::PeerEof);

    assert_eq!(h.input(answer(1, false)), []);
    assert_eq!(h.deadline(), Some(ms(1)));
    for (then, next) in [(1, 3), (3, 7), (7, 15)] {
        assert_eq!(h.fire(), [Output::QueryUnacknowledged]);
        assert_eq!(h.elapsed(), ms(then));
        assert_eq!(h.input(answer(1, false)), []);
        assert_eq!(h.deadline(), Some(ms(next)));
    }
    assert_eq!(h.fire(), [Output::QueryUnacknowledged]);
    let outputs = h.input(answer(0, true));

    assert_eq!(closed(&outputs).result, Ok(Ending::Finished));
    assert!(closed(&outputs).is_clean());
}

/// The peer closed first (`OnPeerEof::Close`): our remaining bytes and FIN go out, and the
/// close completes once the peer's TCP acknowledges them.
#[test]
fn the_peer_closing_first_is_confirmed_once_our_fin_is_acknowledged() {
    let (mut h, _) = connected_and_written(0, base());
    assert_eq!(
        h.request(Request::Send(Bytes::from_static(b"last words"))),
        [Output::Transmit(Bytes::from_static(b"last words"))]
    );

    assert_eq!(h.input(Input::PeerEof), [Output::Event(Event::PeerClosed)]);
    assert_eq!(
        h.input(Input::Written(10)),
        [Output::ShutdownWrite, Output::QueryUnacknowledged]
    );
    let outputs = h.input(answer(0, true));

    let report = closed(&outputs);
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(counts(report), (10, 10, 0, 0, 0));
}

/// A reset: before saying how it ended, the client asks what the peer got; meanwhile it
/// takes no sends and no reads, and the answer decides the count.
#[test]
fn a_failed_connection_asks_what_the_peer_got_before_its_report() {
    let (mut h, data) = connected_and_written(3000, base());

    assert_eq!(
        h.input(Input::SocketError(ErrorKind::ConnectionReset)),
        [Output::QueryUnacknowledged]
    );
    assert_eq!(h.client.phase(), Phase::Draining);
    assert!(!h.client.wants_read());
    assert!(matches!(
        h.try_request(Request::Send(Bytes::from_static(b"more"))),
        Err(InvalidInput::SendAfterShutdown { .. })
    ));
    assert_eq!(
        h.input(Input::Received(b"late")),
        [],
        "a report about a connection whose end is decided"
    );
    assert_eq!(h.request(Request::Abort), [], "the end is under way");
    let outputs = h.input(answer(1000, false));

    assert_eq!(outputs[0], Output::Reset, "1000 bytes handed back as lost");
    assert_eq!(
        outputs[1],
        Output::Event(Event::Undelivered(data.slice(2000..)))
    );
    let report = closed(&outputs);
    assert_eq!(
        report.result,
        Err(Error::Socket(ErrorKind::ConnectionReset))
    );
    assert_eq!(counts(report), (3000, 0, 2000, 1000, 1000));
    assert_eq!(
        report.bytes_received, 0,
        "nothing read after the end was decided"
    );
}

/// A driver that does not answer is given 10 ms; then what it did not say is neither
/// acknowledged nor lost: unconfirmed, and not handed back.
#[test]
fn a_driver_that_never_answers_gets_10_ms_and_claims_nothing() {
    let (mut h, _) = connected_and_written(3000, base());
    h.input(Input::SocketError(ErrorKind::ConnectionReset));

    assert_eq!(h.deadline(), Some(ms(10)));
    let outputs = h.fire();

    assert_eq!(outputs[0], Output::Close);
    let report = closed(&outputs);
    assert_eq!(counts(report), (3000, 0, 3000, 0, 0));
    assert_eq!(outputs.len(), 2, "nothing handed back: {outputs:?}");
}

/// An answer nobody asked for, one that counts more than was written, a FIN acknowledged
/// before the bytes ahead of it or never sent: no socket says that. Refused, changing
/// nothing.
#[test]
fn answers_that_make_no_sense_are_refused() {
    let (mut h, _) = connected_and_written(100, base());
    let unasked = h.try_input(answer(0, false));
    assert!(
        matches!(
            unasked,
            Err(InvalidInput::Unexpected {
                input: "Unacknowledged",
                ..
            })
        ),
        "{unasked:?}"
    );

    h.input(Input::SocketError(ErrorKind::ConnectionReset));
    for nonsense in [answer(101, false), answer(5, true), answer(0, true)] {
        assert!(h.try_input(nonsense).is_err());
        assert_eq!(
            h.client.phase(),
            Phase::Draining,
            "still waiting for an answer"
        );
    }
    let outputs = h.input(answer(100, false));

    assert_eq!(counts(closed(&outputs)), (100, 0, 0, 100, 100));
}

/// Where the platform cannot tell: nothing written is called lost or acknowledged, what was
/// written is not kept (no acknowledgement would ever let it go), and a peer's end after
/// our FIN confirms the bytes.
#[test]
fn where_the_driver_cannot_tell_the_peers_end_after_ours_confirms() {
    let (mut h, _) = connected_and_written(500, base());
    h.request(Request::Finish);

    let outputs = h.input(Input::PeerEof);
    assert_eq!(outputs.last(), Some(&Output::QueryUnacknowledged));
    let outputs = h.input(Input::Unacknowledged(Unacknowledged::Unknown));

    let report = closed(&outputs);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(counts(report), (500, 500, 0, 0, 0));
    assert!(!report.fin_acknowledged);
}

/// ...but when its end came first, nothing answers our FIN: unconfirmed, not clean.
#[test]
fn where_the_driver_cannot_tell_a_peer_that_closed_first_confirms_nothing() {
    let (mut h, _) = connected_and_written(500, base());
    h.kernel = Kernel::CannotTell;

    let outputs = h.input(Input::PeerEof);

    let report = closed(&outputs);
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(counts(report), (500, 0, 500, 0, 0));
    assert!(!report.is_clean());
}

/// While data flows, the client asks every 256 KiB written, and never in between: what the
/// peer acknowledged is let go of.
#[test]
fn the_client_asks_every_256_kib_written() {
    let (mut h, _) = connected_and_written(0, base().with_send_limit(1 << 20));
    h.request(Request::Send(Bytes::from(vec![7u8; 600 * 1024])));

    let mut asked_at = Vec::new();
    let mut written = 0;
    while written < 600 * 1024 {
        let outputs = h.input(Input::Written(8 * 1024));
        written += 8 * 1024;
        if outputs.contains(&Output::QueryUnacknowledged) {
            asked_at.push(written / 1024);
            h.input(answer(64 * 1024, false));
            assert_eq!(h.client.bytes_acknowledged(), written as u64 - 64 * 1024);
        }
    }

    assert_eq!(asked_at, [256, 512]);
}

/// A driver that leaves the question made while data flows unanswered for another 256 KiB
/// is taken for one that cannot tell: the bytes kept for handing back are let go of, and it
/// is asked no more.
#[test]
fn a_driver_that_never_answers_while_data_flows_is_taken_for_one_that_cannot_tell() {
    let (mut h, _) = connected_and_written(0, base().with_send_limit(1 << 20));
    h.request(Request::Send(Bytes::from(vec![7u8; 800 * 1024])));

    let mut asked = 0;
    for _ in 0..100 {
        let outputs = h.input(Input::Written(8 * 1024));
        asked += outputs
            .iter()
            .filter(|o| **o == Output::QueryUnacknowledged)
            .count();
    }
    let outputs = h.input(Input::SocketError(ErrorKind::ConnectionReset));

    assert_eq!(asked, 1, "asked at 256 KiB, unanswered at 512 KiB");
    assert_eq!(outputs[0], Output::Close, "no question at the close either");
    let report = closed(&outputs);
    assert_eq!(counts(report), (800 * 1024, 0, 800 * 1024, 0, 0));
}

/// Several writes may be reported before one drain: a question the driver has not taken yet
/// is not an unanswered one, however far the writes go.
#[test]
fn a_question_not_yet_taken_is_not_unanswered() {
    let (mut h, _) = connected_and_written(0, base().with_send_limit(1 << 20));
    h.request(Request::Send(Bytes::from(vec![7u8; 800 * 1024])));

    for _ in 0..100 {
        let now = h.now;
        h.client
            .handle_input(now, Input::Written(8 * 1024))
            .expect("a write within what was handed out");
    }
    let outputs = h.outputs();
    assert_eq!(outputs, [Output::QueryUnacknowledged]);
    h.input(answer(0, false));

    assert_eq!(h.client.bytes_acknowledged(), 800 * 1024);
}

/// Under TLS a byte is acknowledged only with the whole record that carries it; a lost
/// record's bytes come back whole.
#[test]
fn under_tls_a_record_partly_acknowledged_is_lost_whole() {
    let pki = Pki::new();
    let mut pair = Pair::new(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();
    assert!(pair.h.client.tls_info().is_some(), "the handshake is done");
    pair.h.kernel = Kernel::Unacknowledged(10);

    pair.send(b"one record, its last ten wire bytes unacknowledged");
    pair.input(Input::SocketError(ErrorKind::ConnectionReset));

    let report = closed(&pair.log);
    assert_eq!(
        (report.bytes_unconfirmed, report.bytes_lost),
        (0, 50),
        "the record's plaintext is lost whole: {report:?}"
    );
}

// ---- while the client waits for the answer that decides its end ----

/// A client whose end is decided (a reset) with `sent` bytes handed out and `written` of
/// them reported written, waiting for the kernel's answer.
fn closing_after_a_reset(sent: usize, written: usize) -> Harness {
    let mut h = Harness::new(local(), base());
    h.kernel = Kernel::ByHand;
    h.outputs();
    h.input(Input::Connected(AttemptId(0)));
    h.input(Input::Received(b"hello"));
    let data: Bytes = (0..sent).map(|i| (i % 251) as u8).collect();
    h.request(Request::Send(data));
    if written > 0 {
        h.input(Input::Written(written));
    }
    assert_eq!(
        h.input(Input::SocketError(ErrorKind::ConnectionReset)),
        [Output::QueryUnacknowledged]
    );
    h
}

#[test]
fn a_write_reported_while_the_answer_is_awaited_still_counts_and_no_more_than_was_handed_out() {
    let mut h = closing_after_a_reset(100, 40);

    assert!(
        matches!(
            h.try_input(Input::Written(61)),
            Err(InvalidInput::Unexpected {
                input: "Written",
                ..
            })
        ),
        "60 are handed out and unwritten"
    );
    assert_eq!(h.input(Input::Written(60)), []);
    let outputs = h.input(answer(0, false));

    let report = closed(&outputs);
    assert_eq!(
        counts(report),
        (100, 0, 100, 0, 0),
        "all 100 written, none lost"
    );
}

#[test]
fn while_the_answer_is_awaited_consumption_counts_and_finish_and_starttls_are_refused() {
    let mut h = closing_after_a_reset(10, 10);

    assert!(matches!(
        h.try_request(Request::Consumed(6)),
        Err(InvalidInput::ConsumedTooMuch {
            consumed: 6,
            unconsumed: 5
        })
    ));
    assert_eq!(h.request(Request::Consumed(5)), []);
    assert_eq!(h.client.bytes_unconsumed(), 0);
    for request in [Request::Finish, Request::StartTls] {
        let name = request.name();
        assert!(
            matches!(
                h.try_request(request),
                Err(InvalidInput::Unexpected { input, .. }) if input == name
            ),
            "{name}"
        );
    }
    assert_eq!(
        h.client.peer_addr().map(|a| a.port()),
        Some(7),
        "still that peer's"
    );
}

#[test]
fn events_waiting_to_be_taken_survive_the_close_and_unsent_transmits_do_not() {
    let mut h = Harness::new(local(), base());
    h.kernel = Kernel::ByHand;
    h.outputs();
    h.input(Input::Connected(AttemptId(0)));
    // Neither taken before the reset: the data event and the transmit wait in the outputs.
    h.client
        .handle_input(h.now, Input::Received(b"late news"))
        .expect("taken");
    h.client
        .send(h.now, Bytes::from_static(b"unsent"))
        .expect("taken");
    h.client
        .handle_input(h.now, Input::SocketError(ErrorKind::ConnectionReset))
        .expect("taken");

    let outputs = h.outputs();

    assert!(
        outputs.contains(&Output::Event(Event::Data(Bytes::from_static(
            b"late news"
        )))),
        "{outputs:?}"
    );
    assert!(!outputs.iter().any(|o| matches!(o, Output::Transmit(_))));
}
