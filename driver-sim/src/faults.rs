//! Fault schedules as data: what happens to the network or the server, and when.

use std::time::Duration;

use tcpclient_core::SplitMix;

/// One fault, applied at a simulated instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When, in simulated time since the start.
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
}

/// What a fault does. Client and server are the simulation's two hosts.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Drop everything between client and server, in flight included.
    Partition,
    /// Undo a partition (turmoil does not retransmit: a stream that lost data stalls).
    Repair,
    /// Hold messages between client and server (a SYN held makes a connect hang).
    Hold,
    /// Deliver what was held and let messages flow again.
    Release,
    /// Set the link latency.
    Latency(Duration),
    /// Set the link's loss rate (each loss breaks the stream for good, as in turmoil).
    Loss(f64),
    /// Kill the server's process: its sockets close (FIN) or reset.
    Crash,
    /// Restart the server.
    Bounce,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Partition => f.write_str("Partition"),
            FaultKind::Repair => f.write_str("Repair"),
            FaultKind::Hold => f.write_str("Hold"),
            FaultKind::Release => f.write_str("Release"),
            FaultKind::Latency(latency) => write!(f, "Latency({} ms)", latency.as_millis()),
            FaultKind::Loss(rate) => write!(f, "Loss({rate})"),
            FaultKind::Crash => f.write_str("Crash"),
            FaultKind::Bounce => f.write_str("Bounce"),
        }
    }
}

/// A fault schedule, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    /// The faults, sorted by [`Fault::at`].
    pub faults: Vec<Fault>,
}

impl Fault {
    /// `kind` at `at`.
    pub fn new(at: Duration, kind: FaultKind) -> Self {
        Self { at, kind }
    }
}

impl Schedule {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// A schedule from a list (sorted here).
    pub fn new(mut faults: Vec<Fault>) -> Self {
        faults.sort_by_key(|f| f.at);
        Self { faults }
    }

    /// A random schedule within the first `horizon`: none, or one or two faults, some of
    /// them later undone.
    pub fn random(rng: &mut SplitMix, horizon: Duration) -> Self {
        let ms = |rng: &mut SplitMix| Duration::from_millis(rng.below(horizon.as_millis() as u64));
        let mut faults = Vec::new();
        match rng.below(9) {
            0..=2 => {}
            3 => {
                let at = ms(rng);
                faults.push(Fault::new(at, FaultKind::Partition));
                if rng.chance(1, 2) {
                    faults.push(Fault::new(at + ms(rng), FaultKind::Repair));
                }
            }
            4 => {
                let at = ms(rng);
                faults.push(Fault::new(at, FaultKind::Hold));
                faults.push(Fault::new(at + ms(rng) / 2, FaultKind::Release));
            }
            5 => faults.push(Fault::new(
                ms(rng),
                FaultKind::Latency(Duration::from_millis(1 + rng.below(300))),
            )),
            6 => faults.push(Fault::new(
                ms(rng),
                FaultKind::Loss(0.02 * (1 + rng.below(5)) as f64),
            )),
            7 => faults.push(Fault::new(ms(rng), FaultKind::Crash)),
            _ => {
                let at = ms(rng);
                faults.push(Fault::new(at, FaultKind::Crash));
                faults.push(Fault::new(at + ms(rng) / 4, FaultKind::Bounce));
            }
        }
        Self::new(faults)
    }

    /// The first kind of fault in the schedule, for summaries.
    pub fn label(&self) -> &'static str {
        match self.faults.first().map(|f| &f.kind) {
            None => "none",
            Some(FaultKind::Partition | FaultKind::Repair) => "partition",
            Some(FaultKind::Hold | FaultKind::Release) => "hold",
            Some(FaultKind::Latency(_)) => "latency",
            Some(FaultKind::Loss(_)) => "loss",
            Some(FaultKind::Crash | FaultKind::Bounce) => "crash",
        }
    }
}
