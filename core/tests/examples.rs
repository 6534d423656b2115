//! The examples are run here, so they cannot rot.

#[path = "../examples/blocking_echo.rs"]
mod blocking_echo;

#[test]
fn blocking_echo_talks_to_its_echo_server_and_closes_cleanly() {
    blocking_echo::main().expect("the example runs to a clean close");
}
