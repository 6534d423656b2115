//! The one trace schema: what each kind of line holds.

use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tcpclient_core::{
    AttemptId, Client, Config, Event, Family, Input, InvalidInput, Leave, Output, Request,
    Unacknowledged, trace,
};

const AT: Duration = Duration::from_micros(1500);

fn details(line: &Value) -> &Value {
    &line["details"]
}

#[test]
fn inputs_go_in_with_their_names_and_counts() {
    let line = trace::input(AT, &Input::Received(b"abc"));
    assert_eq!(line["t_us"], 1500);
    assert_eq!(line["kind"], "in");
    assert_eq!(line["input"], "Received");
    assert_eq!(details(&line)["bytes"], 3);

    let addrs = ["[::1]:7".parse().unwrap()];
    let line = trace::input(
        AT,
        &Input::Resolved {
            family: Some(Family::V6),
            result: Ok(&addrs),
        },
    );
    assert_eq!(
        details(&line),
        &json!({ "family": "V6", "addrs": ["[::1]:7"] })
    );
    let line = trace::input(
        AT,
        &Input::Resolved {
            family: None,
            result: Err(ErrorKind::NotFound),
        },
    );
    assert_eq!(
        details(&line),
        &json!({ "family": null, "kind": "NotFound" })
    );
    let line = trace::input(
        AT,
        &Input::ConnectFailed(AttemptId(2), ErrorKind::ConnectionRefused),
    );
    assert_eq!(
        details(&line),
        &json!({ "attempt": 2, "kind": "ConnectionRefused" })
    );
    let line = trace::input(AT, &Input::Connected(AttemptId(1)));
    assert_eq!(details(&line), &json!({ "attempt": 1 }));
    let line = trace::input(AT, &Input::SocketError(ErrorKind::BrokenPipe));
    assert_eq!(details(&line), &json!({ "kind": "BrokenPipe" }));
    let line = trace::input(AT, &Input::Written(9));
    assert_eq!(details(&line), &json!({ "bytes": 9 }));
    let known = Unacknowledged::Known {
        bytes: 4,
        fin_acknowledged: false,
    };
    let line = trace::input(AT, &Input::Unacknowledged(known));
    assert_eq!(
        details(&line),
        &json!({ "bytes": 4, "fin_acknowledged": false })
    );
    let line = trace::input(AT, &Input::Unacknowledged(Unacknowledged::Unknown));
    assert_eq!(details(&line), &json!({ "unknown": true }));
    assert_eq!(details(&trace::input(AT, &Input::Timeout)), &json!({}));
}

#[test]
fn requests_go_in_as_inputs_do() {
    let cases = [
        (
            Request::Send(Bytes::from_static(b"hello")),
            "Send",
            json!({ "bytes": 5 }),
        ),
        (Request::Consumed(3), "Consumed", json!({ "bytes": 3 })),
        (
            Request::Acknowledged(2),
            "Acknowledged",
            json!({ "bytes": 2 }),
        ),
        (
            Request::SendPreamble(Bytes::from_static(b"HI")),
            "SendPreamble",
            json!({ "bytes": 2 }),
        ),
        (
            Request::Reconnect(Leave::Reset),
            "Reconnect",
            json!({ "leave": "Reset" }),
        ),
        (Request::Finish, "Finish", json!({})),
    ];
    for (request, name, expected) in cases {
        let line = trace::request(AT, &request);
        assert_eq!(line["kind"], "in");
        assert_eq!(line["input"], name);
        assert_eq!(details(&line), &expected, "{name}");
    }
}

#[test]
fn outputs_and_events_come_out_with_their_details() {
    let now = tcpclient_testkit::epoch();
    let mut client = Client::new(("127.0.0.1", 7), Config::new(), now);
    let connect = client.poll_output().expect("a connect");
    let line = trace::output(AT, &connect);
    assert_eq!(line["kind"], "out");
    assert_eq!(line["output"], "Connect");
    assert_eq!(details(&line)["attempt"], 0);
    assert_eq!(details(&line)["addr"], "127.0.0.1:7");
    assert_eq!(details(&line)["nodelay"], true);

    let line = trace::output(AT, &Output::Transmit(Bytes::from_static(b"xy")));
    assert_eq!(details(&line), &json!({ "bytes": 2 }));
    let line = trace::output(AT, &Output::Cancel(AttemptId(4)));
    assert_eq!(details(&line), &json!({ "attempt": 4 }));
    let line = trace::output(
        AT,
        &Output::Resolve {
            host: "h".into(),
            port: 1,
        },
    );
    assert_eq!(details(&line), &json!({ "host": "h", "port": 1 }));

    let data = Output::Event(Event::Data(Bytes::from_static(b"abcd")));
    assert_eq!(trace::output(AT, &data)["output"], "Data");
    assert_eq!(
        trace::output(AT, &data),
        trace::event(AT, &Event::Data(Bytes::from_static(b"abcd")))
    );
    let reconnecting = Event::Reconnecting {
        generation: 2,
        attempt: 1,
        delay: Duration::from_millis(3),
    };
    assert_eq!(
        details(&trace::event(AT, &reconnecting)),
        &json!({ "generation": 2, "attempt": 1, "delay_us": 3000 })
    );

    // The close report: its outcome and every count.
    client.abort(now).expect("abort");
    let closed = std::iter::from_fn(|| client.poll_output())
        .find_map(|o| match o {
            Output::Event(event @ Event::Closed(_)) => Some(event),
            _ => None,
        })
        .expect("closed");
    let line = trace::event(AT, &closed);
    let details = details(&line);
    assert_eq!(details["outcome"], "Aborted");
    assert_eq!(details["error"], Value::Null);
    assert_eq!(details["bytes_accepted"], 0);
    assert_eq!(details["generations"], 0);
    assert_eq!(details["clean"], false);
}

#[test]
fn refusals_and_notes_have_their_own_kinds() {
    let refusal = InvalidInput::ConsumedTooMuch {
        consumed: 3,
        unconsumed: 1,
    };
    let line = trace::refused(AT, &refusal);
    assert_eq!(line["kind"], "refused");
    assert_eq!(line["why"], refusal.to_string());
    let line = trace::note(AT, "partition", json!({ "for_ms": 5 }));
    assert_eq!(line["kind"], "note");
    assert_eq!(line["what"], "partition");
    assert_eq!(details(&line)["for_ms"], 5);
    assert_eq!(
        trace::note(Duration::MAX, "end", Value::Null)["t_us"],
        u64::MAX
    );
}

#[test]
fn each_event_carries_what_it_tells() {
    let addr: std::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
    assert_eq!(
        details(&trace::event(AT, &Event::Connected(addr))),
        &json!({ "addr": "127.0.0.1:7" })
    );
    assert_eq!(
        details(&trace::event(
            AT,
            &Event::Undelivered(Bytes::from_static(b"abc"))
        )),
        &json!({ "bytes": 3 })
    );
    assert_eq!(
        details(&trace::event(AT, &Event::Data(Bytes::from_static(b"ab")))),
        &json!({ "bytes": 2 })
    );
    let reconnected = Event::Reconnected {
        generation: 1,
        addr,
        replays_from: 10,
    };
    assert_eq!(
        details(&trace::event(AT, &reconnected)),
        &json!({ "generation": 1, "addr": "127.0.0.1:7", "replays_from": 10 })
    );
    assert_eq!(details(&trace::event(AT, &Event::PeerClosed)), &json!({}));

    // A connection's end, as a reconnecting client reports it, with its generation.
    let now = tcpclient_testkit::epoch();
    let config = Config::new().with_reconnect(tcpclient_core::ReconnectPolicy::default());
    let mut client = Client::new(("127.0.0.1", 7), config, now);
    while client.poll_output().is_some() {}
    client
        .handle_input(now, Input::Connected(AttemptId(0)))
        .unwrap();
    client
        .handle_input(now, Input::SocketError(ErrorKind::ConnectionReset))
        .unwrap();
    let disconnected = std::iter::from_fn(|| client.poll_output())
        .find_map(|o| match o {
            Output::Event(event @ Event::Disconnected { .. }) => Some(event),
            _ => None,
        })
        .expect("disconnected");
    let line = trace::event(AT, &disconnected);
    assert_eq!(line["output"], "Disconnected");
    assert_eq!(details(&line)["generation"], 0);
    assert_eq!(details(&line)["error"], "Socket");
    assert!(
        details(&line)["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
}

#[test]
fn a_tls_session_is_traced_with_what_it_negotiated() {
    let pki = tcpclient_testkit::Pki::new();
    let mut pair = tcpclient_testkit::Pair::new(Config::new().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();
    let established = pair
        .events()
        .into_iter()
        .find(|e| matches!(e, Event::TlsEstablished(_)))
        .expect("a handshake");
    let line = trace::event(AT, &established);
    let details = details(&line);
    assert_eq!(details["version"], "TLSv1_3");
    assert!(
        details["cipher_suite"]
            .as_str()
            .is_some_and(|s| s.starts_with("TLS13_"))
    );
    assert!(details["key_exchange_group"].is_string());
    assert_eq!(details["resumed"], false);
}
