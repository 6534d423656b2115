//! Any operation sequence, in any state, with or without TLS: every invariant of
//! ARCHITECTURE.md section 4 must hold after every step and at the end (see
//! `tcpclient_testkit::run`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpclient_testkit::{Scenario, run};

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = run(&Scenario::decode(data)) {
        panic!("{violation}");
    }
});
