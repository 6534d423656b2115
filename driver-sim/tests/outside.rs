//! A client made outside a simulation of the turmoil this crate uses (none running, or one of
//! another turmoil version) is refused with a message that says what to do, not with
//! turmoil's own "cannot access a scoped thread local variable".

use tcpclient_core::Config;
use tcpclient_sim::{Trace, connect, server};

#[test]
#[should_panic(expected = "not inside a simulation of turmoil 0.7")]
fn connecting_outside_a_simulation_says_which_turmoil_to_use() {
    let _ = connect(server(), Config::new(), Trace::new());
}
