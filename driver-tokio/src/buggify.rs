//! Buggify for application code: fault points of the application's own, which a simulated
//! run switches on and fires from its seed (FoundationDB's `BUGGIFY`), and which do nothing
//! anywhere else.
//!
//! The points live in the application, which depends on this driver and not on the
//! simulator: [`fires`] is here, and answers `false` unless a simulator has installed what
//! decides ([`Decide`]) on the current thread for the run. `tcpclient-sim` does, from the
//! run's seed.
//!
//! ```
//! use tcpclient_tokio::buggify;
//!
//! fn reply_timeout_ms() -> u64 {
//!     // Under simulation, now and then, a deadline far too short: does the protocol cope?
//!     if buggify::fires("reply timeout too short") { 1 } else { 5_000 }
//! }
//!
//! // Outside a simulation no point ever fires.
//! assert_eq!(reply_timeout_ms(), 5_000);
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

/// Whether the application's fault point `name` fires here, now: never, unless a simulated
/// run on this thread has installed what decides ([`decide_with`]). Costs one thread-local
/// read when none has.
pub fn fires(name: &'static str) -> bool {
    DECIDER.with(|decider| {
        let decider = decider.borrow().clone();
        decider.is_some_and(|decider| decider.fires(name))
    })
}

/// What decides, for one run, whether a point fires: a simulator's, drawn from the run's
/// seed so that the run replays.
pub trait Decide {
    /// Whether point `name` fires now. Called every time the application reaches it.
    fn fires(&self, name: &'static str) -> bool;
}

/// Installs `decider` on the current thread until the returned guard is dropped; then the
/// one installed before (if any) decides again.
pub fn decide_with(decider: Rc<dyn Decide>) -> Deciding {
    let before = DECIDER.with(|current| current.borrow_mut().replace(decider));
    Deciding {
        before,
        not_send: PhantomData,
    }
}

/// A [`Decide`] installed on this thread: dropping it uninstalls it. It stays on its thread,
/// as what it installed does.
#[must_use = "the decider is uninstalled when this is dropped"]
pub struct Deciding {
    before: Option<Rc<dyn Decide>>,
    not_send: PhantomData<Rc<()>>,
}

impl Drop for Deciding {
    fn drop(&mut self) {
        let before = self.before.take();
        DECIDER.with(|current| *current.borrow_mut() = before);
    }
}

thread_local! {
    /// The decider of the run on this thread: turmoil runs a simulation's every host on the
    /// thread that runs it.
    static DECIDER: RefCell<Option<Rc<dyn Decide>>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    struct Every(Cell<u32>);

    impl Decide for Every {
        fn fires(&self, name: &'static str) -> bool {
            self.0.set(self.0.get() + 1);
            name == "on"
        }
    }

    #[test]
    fn points_fire_only_while_a_decider_is_installed() {
        assert!(!fires("on"), "nothing fires outside a run");
        let decider = Rc::new(Every(Cell::new(0)));
        let guard = decide_with(decider.clone());
        assert!(fires("on"));
        assert!(!fires("off"));
        assert_eq!(decider.0.get(), 2, "asked every time");
        drop(guard);
        assert!(!fires("on"), "uninstalled with its guard");
    }

    #[test]
    fn an_inner_decider_gives_way_to_the_outer_one_when_dropped() {
        let outer = decide_with(Rc::new(Every(Cell::new(0))));
        struct Never;
        impl Decide for Never {
            fn fires(&self, _: &'static str) -> bool {
                false
            }
        }
        let inner = decide_with(Rc::new(Never));
        assert!(!fires("on"));
        drop(inner);
        assert!(fires("on"), "the outer one decides again");
        drop(outer);
        assert!(!fires("on"));
    }
}
