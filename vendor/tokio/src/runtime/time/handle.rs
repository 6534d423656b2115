use crate::runtime::time::TimeSource;
use std::fmt;

/// Handle to time driver instance.
pub(crate) struct Handle {
    pub(super) time_source: TimeSource,
    pub(super) inner: super::Inner,
}

impl Handle {
    /// Returns the time source associated with this handle.
    pub(crate) fn time_source(&self) -> &TimeSource {
        &self.time_source
    }

    /// Checks whether the driver has been shutdown.
    pub(super) fn is_shutdown(&self) -> bool {
        self.inner.is_shutdown()
    }

    /// Does what a tick of `block_on(sleep(duration))` does to the time
    /// driver and the clock when no other timer fires in it. Returns how many
    /// turns of the scheduler's loop the tick takes and the clock's new
    /// reading; `None`, changing nothing, if another timer fires by then or
    /// the clock cannot auto-advance.
    #[cfg(feature = "test-util")]
    pub(crate) fn skip_idle_tick(
        &self,
        clock: &crate::time::Clock,
        duration: std::time::Duration,
    ) -> Option<(u32, crate::time::Instant)> {
        let start = clock.auto_advance_now()?;
        // The sleep's deadline, rounded as the driver rounds deadlines.
        let now = self.time_source.instant_to_tick(start);
        let when = self.time_source.deadline_to_tick(start + duration);
        if when <= now {
            return None;
        }
        let state = match &self.inner {
            super::Inner::Traditional { state, .. } => state,
            #[cfg(all(tokio_unstable, feature = "rt-multi-thread"))]
            super::Inner::Alternative { .. } => return None,
        };
        {
            let mut lock = state.lock();
            if lock
                .wheel
                .next_expiration_time()
                .is_some_and(|next| next <= when)
            {
                return None;
            }
            // The tick's last park processes the timers at the sleep's
            // deadline, as `process_at_time` does: none but the sleep fires.
            // Nothing is due by then, so the poll fires nothing: it only
            // moves the wheel on.
            let at = when.max(lock.wheel.elapsed());
            let _ = lock.wheel.poll(at);
            lock.next_wake = lock
                .wheel
                .poll_at()
                .map(|t| std::num::NonZeroU64::new(t).unwrap_or(std::num::NonZeroU64::MIN));
        }
        // The park advanced the clock to the sleep's deadline.
        let by = self.time_source.tick_to_duration(when - now);
        clock.advance(by).ok()?;
        // A wake left by the last tick's sleep makes its first park return
        // without advancing, and the scheduler turns once more.
        let turns = if self.did_wake() { 2 } else { 1 };
        // The sleep's own wake, from inside the runtime, as the tick leaves it.
        self.unpark();
        Some((turns, start + by))
    }

    /// Track that the driver is being unparked
    pub(crate) fn unpark(&self) {
        #[cfg(feature = "test-util")]
        match self.inner {
            super::Inner::Traditional { ref did_wake, .. } => {
                did_wake.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            #[cfg(all(tokio_unstable, feature = "rt-multi-thread"))]
            super::Inner::Alternative { ref did_wake, .. } => {
                did_wake.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
}

cfg_not_rt! {
    impl Handle {
        /// Tries to get a handle to the current timer.
        ///
        /// # Panics
        ///
        /// This function panics if there is no current timer set.
        ///
        /// It can be triggered when [`Builder::enable_time`] or
        /// [`Builder::enable_all`] are not included in the builder.
        ///
        /// It can also panic whenever a timer is created outside of a
        /// Tokio runtime. That is why `rt.block_on(sleep(...))` will panic,
        /// since the function is executed outside of the runtime.
        /// Whereas `rt.block_on(async {sleep(...).await})` doesn't panic.
        /// And this is because wrapping the function on an async makes it lazy,
        /// and so gets executed inside the runtime successfully without
        /// panicking.
        ///
        /// [`Builder::enable_time`]: crate::runtime::Builder::enable_time
        /// [`Builder::enable_all`]: crate::runtime::Builder::enable_all
        #[track_caller]
        pub(crate) fn current() -> Self {
            panic!("{}", crate::util::error::CONTEXT_MISSING_ERROR)
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle")
    }
}
