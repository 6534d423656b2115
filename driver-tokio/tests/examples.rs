//! The examples are run here, so they cannot rot.

#[path = "../examples/smtp_starttls.rs"]
mod smtp_starttls;

use tcpclient_testkit::Pki;
use tcpclient_testkit::loopback::starttls_server;
use tcpclient_testkit::process::{ScriptServer, free_port};

#[tokio::test]
async fn the_smtp_example_upgrades_to_tls_and_greets_over_it() {
    let pki = Pki::new();
    let addr = starttls_server("smtp", pki.server_config(), false);

    let last = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        smtp_starttls::session("127.0.0.1", addr.port(), pki.client_tls()),
    )
    .await
    .expect("within the time limit")
    .expect("the session runs");

    assert_eq!(
        last, "250 EHLO client.example",
        "the echo server's answer over TLS"
    );
}

#[path = "../examples/line_client.rs"]
mod line_client;

/// The line protocol's server, as a process that can be killed: `HELLO` first on every
/// connection (a `+` in `PATH.marks` for one that begins so, a `!` and the door for one
/// that does not), then each request appended to `PATH` as it is processed, and answered.
const LINE_SERVER: &str = r#"
path = sys.argv[2]
while True:
    c, _ = s.accept()
    lines = c.makefile("rb")
    hello = lines.readline().startswith(b"HELLO ")
    with open(path + ".marks", "ab") as marks:
        marks.write(b"+" if hello else b"!")
    if not hello:
        lines.close()
        c.close()
        continue
    c.sendall(b"+HELLO\n")
    for line in lines:
        with open(path, "ab") as log:
            log.write(line)
        c.sendall(b"+OK " + line)
    # The file holds the socket open: both go, and the FIN with them.
    lines.close()
    c.close()
"#;

/// The line protocol's server on `port`, logging to `log`.
fn line_server(port: u16, log: &std::path::Path) -> ScriptServer {
    ScriptServer::python(port, LINE_SERVER, [log])
}

#[test]
fn the_line_client_greets_first_on_every_connection_and_loses_no_answered_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let port = free_port();
    let log =
        std::env::temp_dir().join(format!("tcpclient-line-server-{}.log", std::process::id()));
    let marks = log.with_extension("log.marks");
    let _ = (std::fs::remove_file(&log), std::fs::remove_file(&marks));
    let mut server = line_server(port, &log);
    let requests: Vec<String> = (0..600).map(|i| format!("SET key{i} {i}")).collect();
    let answered = Arc::new(AtomicUsize::new(0));
    let client = {
        let (requests, answered) = (requests.clone(), answered.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let run =
                line_client::run("127.0.0.1", port, requests, Duration::from_millis(5), |n| {
                    answered.store(n, Ordering::SeqCst)
                });
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(60), run).await })
        })
    };

    // Killed twice, with requests going out while it is down; each time with hundreds of
    // requests still to come (a second apart at least), so that a third connection is
    // needed however slowly this thread gets to run.
    for at in [150, 350] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < at {
            assert!(Instant::now() < deadline, "stuck before {at} answers");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        std::thread::sleep(Duration::from_millis(150));
        server = line_server(port, &log);
    }
    let summary = client
        .join()
        .expect("the client thread")
        .expect("within the time limit")
        .expect("the client runs");
    drop(server);
    // Read, then removed before the assertions below, so that their failing leaves nothing.
    let processed = std::fs::read_to_string(&log);
    let marks_read = std::fs::read(&marks);
    let _ = (std::fs::remove_file(&log), std::fs::remove_file(&marks));

    assert_eq!(
        summary.answers.len(),
        requests.len(),
        "every request answered"
    );
    let processed = processed.expect("the server's log");
    let processed: std::collections::HashSet<&str> = processed.lines().collect();
    let lost: Vec<&String> = requests
        .iter()
        .filter(|r| !processed.contains(r.as_str()))
        .collect();
    assert!(lost.is_empty(), "answered, yet never processed: {lost:?}");
    assert!(
        summary.connections >= 3,
        "{} connections",
        summary.connections
    );
    let marks = marks_read.expect("the server's marks");
    assert!(
        marks.iter().all(|m| *m == b'+') && marks.len() >= 3,
        "every connection greeted first: {:?}",
        String::from_utf8_lossy(&marks)
    );
    assert!(summary.report.is_clean(), "{}", summary.report);
}
