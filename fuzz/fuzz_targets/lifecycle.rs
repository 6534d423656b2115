//! Whole client runs against a scripted peer on a network that keeps settling, each run
//! twice: the invariants, plus identical traces for identical inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = tcpclient_testkit::lifecycle(data) {
        panic!("{violation}");
    }
});
