//! The same correctly encrypted records, fuzzed in their plaintext, to the core and to
//! rustls's own client holding the same keys: any difference in what they deliver, how the
//! session ends or which alert goes back, beyond the documented ones, is a failure.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(difference) = tcpclient_testkit::tls_records(data) {
        panic!("{difference}");
    }
});
