//! One core for the client side, one for the servers: on a small machine the scheduler
//! otherwise sometimes puts a client and its server on the same core and halves a run, which
//! makes comparisons noise. Every contender gets the same arrangement.

use std::sync::OnceLock;

use core_affinity::CoreId;

/// The cores the process may use, read once: the list comes from the calling thread's
/// affinity, which is a single core once [`client`] has pinned it (threads inherit it).
fn cores() -> &'static [CoreId] {
    static CORES: OnceLock<Vec<CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling (client) thread to the first core.
pub fn client() {
    if let Some(core) = cores().first() {
        core_affinity::set_for_current(*core);
    }
}

/// Pins the calling (server) thread to the second core, if there is one.
pub fn server() {
    if let Some(core) = cores().get(1) {
        core_affinity::set_for_current(*core);
    }
}

/// The core the client side runs on, for `taskset` (the pipeline's CLI process).
pub fn client_core() -> Option<usize> {
    cores().first().map(|c| c.id)
}
