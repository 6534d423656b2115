//! The examples are run here, so they cannot rot.

#[path = "../examples/smtp_starttls.rs"]
mod smtp_starttls;

use tcpclient_testkit::Pki;
use tcpclient_testkit::loopback::starttls_server;

#[tokio::test]
async fn the_smtp_example_upgrades_to_tls_and_greets_over_it() {
    let pki = Pki::new();
    let addr = starttls_server("smtp", pki.server_config(), false);

    let last = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        smtp_starttls::session("127.0.0.1", addr.port(), pki.client_tls("localhost")),
    )
    .await
    .expect("within the time limit")
    .expect("the session runs");

    assert_eq!(
        last, "250 EHLO client.example",
        "the echo server's answer over TLS"
    );
}
