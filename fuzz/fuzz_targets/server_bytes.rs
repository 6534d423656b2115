//! Arbitrary bytes from the server before, during and after a TLS handshake, or a real
//! handshake with bytes flipped: typed errors, never a panic, a hang or a lost byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = tcpclient_testkit::server_bytes(data) {
        panic!("{violation}");
    }
});
