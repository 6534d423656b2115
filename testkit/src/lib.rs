//! Test harness for tcpclient: a hand-advanced clock, an in-memory server (plaintext or
//! rustls), real loopback servers, certificates from rcgen, and the operation decoder and invariant checks shared by
//! the proptest suite, the fuzz targets and the corpus replay.

mod harness;
pub mod loopback;
mod pair;
mod peer;
mod pki;
mod scenario;
mod world;

pub use harness::{Harness, closed, events};
pub use pair::Pair;
pub use peer::Server;
pub use pki::{Leaf, Pki, SelfSigned, server_name};
pub use scenario::{MAX_OPS, Misuse, Op, Scenario, Setup};
pub use world::{Outcome, Violation, check, lifecycle, run, server_bytes};
