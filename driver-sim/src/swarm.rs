//! Swarm testing: each seed enables a random subset of fault families and draws its faults
//! from those alone. A run with every family on dilutes each one with all the others (a
//! partition hides a slow consumer); a run with a few on lets each show what it does.

use tcpclient_core::SplitMix;

/// A kind of trouble a seed may enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultFamily {
    /// Both directions cut (in-flight messages lost), maybe repaired.
    Partition,
    /// One direction cut, maybe repaired: the asymmetric partitions that livelock systems.
    OneWayPartition,
    /// Messages held, then released (a stalled route that comes back whole).
    Hold,
    /// A link that goes down and up again and again (holds and releases).
    Flapping,
    /// A change of latency in the middle of the run.
    Latency,
    /// Messages lost at a rate (each loss breaks the stream for good, as in turmoil).
    Loss,
    /// TCP buffers of a few segments: writers block, short writes.
    SmallBuffers,
    /// The server's host crashes, and maybe comes back.
    Crash,
    /// A dual-stack server with one family black-holed, refused, missing or failing DNS.
    ConnectTrouble,
    /// Name lookups that take their time.
    DnsDelay,
    /// An application that takes its time over every `Data`.
    SlowConsumer,
    /// A reconnecting session instead of one connection.
    Reconnect,
}

impl FaultFamily {
    /// Every family.
    pub const ALL: [FaultFamily; 12] = [
        FaultFamily::Partition,
        FaultFamily::OneWayPartition,
        FaultFamily::Hold,
        FaultFamily::Flapping,
        FaultFamily::Latency,
        FaultFamily::Loss,
        FaultFamily::SmallBuffers,
        FaultFamily::Crash,
        FaultFamily::ConnectTrouble,
        FaultFamily::DnsDelay,
        FaultFamily::SlowConsumer,
        FaultFamily::Reconnect,
    ];

    /// The families whose faults are scheduled events on the link or the server.
    pub const SCHEDULED: [FaultFamily; 7] = [
        FaultFamily::Partition,
        FaultFamily::OneWayPartition,
        FaultFamily::Hold,
        FaultFamily::Flapping,
        FaultFamily::Latency,
        FaultFamily::Loss,
        FaultFamily::Crash,
    ];

    /// The family's name in summaries.
    pub fn name(self) -> &'static str {
        match self {
            FaultFamily::Partition => "partition",
            FaultFamily::OneWayPartition => "one-way partition",
            FaultFamily::Hold => "hold",
            FaultFamily::Flapping => "flapping",
            FaultFamily::Latency => "latency",
            FaultFamily::Loss => "loss",
            FaultFamily::SmallBuffers => "small buffers",
            FaultFamily::Crash => "crash",
            FaultFamily::ConnectTrouble => "connect trouble",
            FaultFamily::DnsDelay => "DNS delay",
            FaultFamily::SlowConsumer => "slow consumer",
            FaultFamily::Reconnect => "reconnect",
        }
    }

    /// Whether a fault of this family loses messages (turmoil does not retransmit, so a
    /// stream that lost one stalls for good), or leaves a server down: after it, even a
    /// healed network may not let the connection finish.
    pub fn breaks_streams(self) -> bool {
        matches!(
            self,
            FaultFamily::Partition
                | FaultFamily::OneWayPartition
                | FaultFamily::Loss
                | FaultFamily::Crash
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The fault families one seed enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swarm(u16);

impl Swarm {
    /// No family: a run without trouble.
    pub fn none() -> Self {
        Self(0)
    }

    /// Each family on with probability one half, except that one seed in four is calm: no
    /// scheduled family, so that runs without faults check that everything arrives.
    pub fn random(rng: &mut SplitMix) -> Self {
        let calm = rng.chance(1, 4);
        FaultFamily::ALL
            .into_iter()
            .filter(|family| rng.chance(1, 2) && !(calm && FaultFamily::SCHEDULED.contains(family)))
            .fold(Self::none(), Self::with)
    }

    /// This swarm with `family` on.
    pub fn with(self, family: FaultFamily) -> Self {
        Self(self.0 | family.bit())
    }

    /// This swarm with `family` off.
    pub fn without(self, family: FaultFamily) -> Self {
        Self(self.0 & !family.bit())
    }

    /// Whether `family` is on.
    pub fn has(self, family: FaultFamily) -> bool {
        self.0 & family.bit() != 0
    }

    /// The families on, in [`FaultFamily::ALL`]'s order.
    pub fn families(self) -> Vec<FaultFamily> {
        FaultFamily::ALL
            .into_iter()
            .filter(|f| self.has(*f))
            .collect()
    }

    /// The scheduled families on.
    pub fn scheduled(self) -> Vec<FaultFamily> {
        FaultFamily::SCHEDULED
            .into_iter()
            .filter(|f| self.has(*f))
            .collect()
    }

    /// The names of the families on, joined, or `none`.
    pub fn label(self) -> String {
        let names: Vec<&str> = self.families().into_iter().map(FaultFamily::name).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}
