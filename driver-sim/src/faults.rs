//! Fault schedules as data: what happens to the network or the server, and when.

use std::time::Duration;

use tcpclient_core::SplitMix;

use crate::swarm::{FaultFamily, Swarm};

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
    /// Drop everything going one way.
    PartitionOneWay(Direction),
    /// Undo a one-way partition.
    RepairOneWay(Direction),
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
    /// End every fault: repair, release, no more loss, the server restarted if it is down.
    /// What the run does after it is held to liveness (see [`Schedule::healed_at`]).
    Heal,
}

/// Which way a one-way fault cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Partition => f.write_str("Partition"),
            FaultKind::Repair => f.write_str("Repair"),
            FaultKind::PartitionOneWay(way) => write!(f, "PartitionOneWay({way:?})"),
            FaultKind::RepairOneWay(way) => write!(f, "RepairOneWay({way:?})"),
            FaultKind::Hold => f.write_str("Hold"),
            FaultKind::Release => f.write_str("Release"),
            FaultKind::Latency(latency) => write!(f, "Latency({} ms)", latency.as_millis()),
            FaultKind::Loss(rate) => write!(f, "Loss({rate})"),
            FaultKind::Crash => f.write_str("Crash"),
            FaultKind::Bounce => f.write_str("Bounce"),
            FaultKind::Heal => f.write_str("Heal"),
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

    /// A random schedule within the first `horizon`, drawn from the scheduled families
    /// `swarm` enabled: one to three faults, some of them later undone, then, more often
    /// than not, a [`FaultKind::Heal`] at a drawn instant. Without a scheduled family, none.
    pub fn random(rng: &mut SplitMix, horizon: Duration, swarm: Swarm) -> Self {
        let families = swarm.scheduled();
        if families.is_empty() {
            return Self::none();
        }
        let ms = |rng: &mut SplitMix| Duration::from_millis(rng.below(horizon.as_millis() as u64));
        let mut faults = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let family = families[rng.below(families.len() as u64) as usize];
            let at = ms(rng);
            match family {
                FaultFamily::Partition => {
                    faults.push(Fault::new(at, FaultKind::Partition));
                    if rng.chance(1, 2) {
                        faults.push(Fault::new(at + ms(rng), FaultKind::Repair));
                    }
                }
                FaultFamily::OneWayPartition => {
                    let way = if rng.chance(1, 2) {
                        Direction::ToServer
                    } else {
                        Direction::ToClient
                    };
                    faults.push(Fault::new(at, FaultKind::PartitionOneWay(way)));
                    if rng.chance(1, 2) {
                        faults.push(Fault::new(at + ms(rng), FaultKind::RepairOneWay(way)));
                    }
                }
                FaultFamily::Hold => {
                    faults.push(Fault::new(at, FaultKind::Hold));
                    faults.push(Fault::new(at + ms(rng) / 2, FaultKind::Release));
                }
                FaultFamily::Flapping => {
                    let mut t = at;
                    for _ in 0..2 + rng.below(6) {
                        faults.push(Fault::new(t, FaultKind::Hold));
                        t += Duration::from_millis(5 + rng.below(200));
                        faults.push(Fault::new(t, FaultKind::Release));
                        t += Duration::from_millis(5 + rng.below(200));
                    }
                }
                FaultFamily::Latency => faults.push(Fault::new(
                    at,
                    FaultKind::Latency(Duration::from_millis(1 + rng.below(300))),
                )),
                FaultFamily::Loss => faults.push(Fault::new(
                    at,
                    FaultKind::Loss(0.02 * (1 + rng.below(5)) as f64),
                )),
                _ => {
                    faults.push(Fault::new(at, FaultKind::Crash));
                    if rng.chance(1, 2) {
                        faults.push(Fault::new(at + ms(rng) / 4, FaultKind::Bounce));
                    }
                }
            }
        }
        if rng.chance(2, 3) {
            let last = faults.iter().map(|f| f.at).max().unwrap_or_default();
            faults.push(Fault::new(last + ms(rng) / 2, FaultKind::Heal));
        }
        Self::new(faults)
    }

    /// When every fault was healed, if the schedule heals: from then on the network and
    /// the server are sound, and the run must make progress.
    pub fn healed_at(&self) -> Option<Duration> {
        self.faults
            .iter()
            .find(|f| f.kind == FaultKind::Heal)
            .map(|f| f.at)
    }

    /// The first kind of fault in the schedule, for summaries.
    pub fn label(&self) -> &'static str {
        match self.faults.first().map(|f| &f.kind) {
            None => "none",
            Some(FaultKind::Partition | FaultKind::Repair) => "partition",
            Some(FaultKind::PartitionOneWay(_) | FaultKind::RepairOneWay(_)) => "one-way partition",
            Some(FaultKind::Hold | FaultKind::Release) => "hold",
            Some(FaultKind::Latency(_)) => "latency",
            Some(FaultKind::Loss(_)) => "loss",
            Some(FaultKind::Crash | FaultKind::Bounce) => "crash",
            Some(FaultKind::Heal) => "heal",
        }
    }
}
