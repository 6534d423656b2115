//! The `tracing` feature's diagnostics: what a client tells a subscriber about itself.

use std::fmt::{Debug, Write as _};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tcpclient_core::{AttemptId, Config, Input};
use tcpclient_testkit::Harness;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every event, as its fields in order (`name=value`, values in `Debug` form).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0.trim_end().to_owned());
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

#[test]
fn a_client_tells_tracing_its_phases_attempts_refusals_and_end() {
    let recorder = Recorder::default();
    let v6: SocketAddr = "[::1]:7".parse().unwrap();
    let v4: SocketAddr = "127.0.0.1:7".parse().unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        let mut h = Harness::new(("example", 7), Config::new());
        h.outputs();
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[v6, v4]),
        });
        h.fire(); // the attempt delay: the second address joins
        h.input(Input::Connected(AttemptId(1)));
        assert!(h.try_input(Input::Connected(AttemptId(9))).is_err());
        h.input(Input::SocketError(ErrorKind::ConnectionReset));
    });

    let events = recorder.0.lock().unwrap().clone();
    let expected = [
        r#"message=created phase="Resolving""#,
        "message=attempt started attempt=0 addr=[::1]:7",
        r#"message=phase from="Resolving" to="Connecting""#,
        "message=attempt started attempt=1 addr=127.0.0.1:7",
        "message=attempt ended attempt=0 addr=[::1]:7 outcome=cancelled after_ms=250",
        "message=attempt ended attempt=1 addr=127.0.0.1:7 outcome=connected after_ms=0",
        r#"message=phase from="Connecting" to="Connected""#,
        r#"message=refused input="Connected" reason=Connected is not expected while connected"#,
        r#"message=closed outcome="Socket" accepted=0 written=0 confirmed=0 unconfirmed=0 lost=0 undelivered=0 received=0"#,
    ];
    assert_eq!(events, expected);
}
