//! The network between the client and the server: one server host found through turmoil's
//! DNS, or a dual-stack server (one host per address family, RFC 8305's world) reached each
//! its own way and found through a simulated DNS that answers each family on its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tcpclient_core::Family;

use crate::driver::{DnsAnswer, SimDns};
use crate::swarm::{FaultFamily, Swarm};
use tcpclient_core::SplitMix;

/// The dual-stack server's IPv6 host.
pub const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 6);
/// The dual-stack server's IPv4 host.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Network {
    /// One host, `server`, in turmoil's DNS (an IPv4 address).
    SingleStack,
    /// One host per family, [`SERVER_V6`] and [`SERVER_V4`], each with its own path.
    DualStack {
        /// The IPv6 host's DNS answer and path.
        v6: Path,
        /// The IPv4 host's.
        v4: Path,
    },
}

/// One family's DNS answer and what a connection to it meets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Path {
    /// How long the family's lookup takes.
    pub dns_delay: Duration,
    /// What the lookup says and the connection meets.
    pub reach: Reach,
}

/// What a connection over one family meets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// The server answers, at this one-way latency.
    Answers(Duration),
    /// Packets vanish: the connect hangs (a black-holed route).
    BlackHoled,
    /// Nothing listens: the connect is refused, after one round trip at this latency.
    Refused(Duration),
    /// The lookup answers with no address.
    NoAddress,
    /// The lookup fails.
    DnsFails,
}

impl Network {
    /// A random network: dual-stack one time in three, with each family's path drawn.
    /// Lookups take their time only if `swarm` has [`FaultFamily::DnsDelay`]; a family
    /// meets anything but an answering server only with [`FaultFamily::ConnectTrouble`].
    pub fn random(rng: &mut SplitMix, swarm: Swarm) -> Self {
        if !rng.chance(1, 3) {
            return Network::SingleStack;
        }
        let path = |rng: &mut SplitMix, answers_weight: u64| Path {
            dns_delay: match swarm.has(FaultFamily::DnsDelay) {
                true => Duration::from_millis(rng.below(120)),
                false => Duration::ZERO,
            },
            reach: match rng.below(answers_weight + 4) {
                _ if !swarm.has(FaultFamily::ConnectTrouble) => {
                    Reach::Answers(Duration::from_millis(1 + rng.below(300)))
                }
                0 => Reach::BlackHoled,
                1 => Reach::Refused(Duration::from_millis(1 + rng.below(50))),
                2 => Reach::NoAddress,
                3 => Reach::DnsFails,
                _ => Reach::Answers(Duration::from_millis(1 + rng.below(300))),
            },
        };
        let v6 = path(rng, 3);
        let v4 = path(rng, 8);
        Network::DualStack { v6, v4 }
    }

    /// The simulated DNS of a dual-stack network (`None`: turmoil's).
    pub fn dns(&self) -> Option<SimDns> {
        let Network::DualStack { v6, v4 } = self else {
            return None;
        };
        let answer = |family, path: &Path, ip: IpAddr| DnsAnswer {
            family,
            delay: path.dns_delay,
            result: match path.reach {
                Reach::NoAddress => Ok(Vec::new()),
                Reach::DnsFails => Err(std::io::ErrorKind::NotFound),
                _ => Ok(vec![ip]),
            },
        };
        Some(SimDns {
            answers: vec![
                answer(Family::V6, v6, IpAddr::V6(SERVER_V6)),
                answer(Family::V4, v4, IpAddr::V4(SERVER_V4)),
            ],
        })
    }

    /// A short description, for summaries.
    pub fn label(&self) -> String {
        match self {
            Network::SingleStack => "single-stack".into(),
            Network::DualStack { v6, v4 } => {
                format!(
                    "dual-stack (v6 {}, v4 {})",
                    v6.reach.name(),
                    v4.reach.name()
                )
            }
        }
    }

    /// The network in a few words, for sweep tables: single-stack, or what the IPv6 path
    /// meets (the family Happy Eyeballs tries first).
    pub fn family_label(&self) -> String {
        match self {
            Network::SingleStack => "single-stack".into(),
            Network::DualStack { v6, .. } => format!("dual-stack, v6 {}", v6.reach.name()),
        }
    }
}

impl Reach {
    /// The reach's name in summaries.
    pub fn name(&self) -> &'static str {
        match self {
            Reach::Answers(_) => "answers",
            Reach::BlackHoled => "black-holed",
            Reach::Refused(_) => "refused",
            Reach::NoAddress => "no address",
            Reach::DnsFails => "DNS fails",
        }
    }
}
