//! The examples are run here, so they cannot rot.

#[path = "../examples/blocking_echo.rs"]
mod blocking_echo;

#[test]
fn blocking_echo_talks_to_its_echo_server_and_closes_cleanly() {
    blocking_echo::main().expect("the example runs to a clean close");
}

#[path = "../examples/nonblocking_echo.rs"]
mod nonblocking_echo;

#[test]
fn nonblocking_echo_survives_short_writes_and_closes_cleanly() {
    let run = nonblocking_echo::exchange().expect("the example runs to a clean close");

    assert_eq!(run.echoed, 1024 * 1024);
    assert!(
        run.short_writes > 0,
        "a 4 KiB send buffer makes writes short"
    );
}
