//! The application's own buggify points, decided for one run from its seed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use tcpclient_core::SplitMix;
use tcpclient_tokio::buggify::{Decide, Deciding, decide_with};

use crate::trace::fnv1a;

/// The application's own fault points ([`tcpclient_tokio::buggify::fires`]) for one run.
///
/// The first time the application reaches a point, the point is switched on for the run
/// with probability 1/4. Once on, it fires one time in four it is reached. These are
/// FoundationDB's numbers, as for the driver's own points ([`Point`](crate::Point)). Every
/// draw comes from the run's seed and the point's name, so:
/// - a run replays;
/// - one point's draws do not depend on another's, or on the order the points are first
///   reached.
///
/// Install it on the thread that runs the simulation, for as long as the simulation runs:
///
/// ```
/// use tcpclient_sim::{AppPoints, turmoil};
/// use tcpclient_tokio::buggify;
///
/// let seed = 7;
/// let points = AppPoints::new(seed);
/// let deciding = points.install();
/// let mut sim = turmoil::Builder::new().rng_seed(seed).build();
/// sim.client("client", async {
///     for _ in 0..100 {
///         if buggify::fires("a reply is dropped") {
///             // ... what the application does wrong on purpose
///         }
///     }
///     Ok(())
/// });
/// sim.run().unwrap();
/// drop(deciding);
/// // What the seed drew, for the line that replays it.
/// println!("application points: {}", points.label());
/// assert_eq!(points.reached().len(), 1);
/// ```
#[derive(Debug)]
pub struct AppPoints {
    seed: u64,
    points: RefCell<BTreeMap<&'static str, Drawn>>,
}

/// One point of the application's, as a run drew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPoint {
    /// The name the application gave it.
    pub name: &'static str,
    /// Switched on for the run.
    pub on: bool,
    /// Times the application reached it.
    pub reached: u64,
    /// Times it fired.
    pub fired: u64,
}

#[derive(Debug)]
struct Drawn {
    on: bool,
    draws: SplitMix,
    reached: u64,
    fired: u64,
}

impl AppPoints {
    /// The points of a run with `seed`: none reached yet.
    pub fn new(seed: u64) -> Rc<Self> {
        Rc::new(Self {
            seed,
            points: RefCell::default(),
        })
    }

    /// Decides the application's points on this thread until the returned guard is dropped
    /// (see [`tcpclient_tokio::buggify::decide_with`]).
    pub fn install(self: &Rc<Self>) -> Deciding {
        decide_with(self.clone())
    }

    /// Every point the application reached, in name order, with what was drawn for it.
    pub fn reached(&self) -> Vec<AppPoint> {
        self.points
            .borrow()
            .iter()
            .map(|(&name, drawn)| AppPoint {
                name,
                on: drawn.on,
                reached: drawn.reached,
                fired: drawn.fired,
            })
            .collect()
    }

    /// The names of the points that fired, joined, or `none`: what the seed did to the
    /// application, for a summary.
    pub fn label(&self) -> String {
        let fired: Vec<&str> = self
            .reached()
            .into_iter()
            .filter(|point| point.fired > 0)
            .map(|point| point.name)
            .collect();
        if fired.is_empty() {
            "none".into()
        } else {
            fired.join(", ")
        }
    }
}

impl Decide for AppPoints {
    fn fires(&self, name: &'static str) -> bool {
        let mut points = self.points.borrow_mut();
        let drawn = points.entry(name).or_insert_with(|| {
            let mut draws = SplitMix::new(self.seed ^ 0xa99_b066_1f1e ^ fnv1a(name.as_bytes()));
            Drawn {
                on: draws.chance(1, 4),
                draws,
                reached: 0,
                fired: 0,
            }
        });
        drawn.reached += 1;
        let fires = drawn.on && drawn.draws.chance(1, 4);
        drawn.fired += u64::from(fires);
        fires
    }
}
