//! The reconnecting session under any policy, close reports and time jumps: never a panic,
//! never a wait past the cap or in the past, never two connections at once, every byte
//! accounted for across generations (see `tcpclient_testkit::SessionMonitor`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcpclient_testkit::reconnect;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = reconnect(data) {
        panic!("{violation}");
    }
});
