//! Racing connect attempts over every address: RFC 8305, Happy Eyeballs version 2.
//!
//! - Resolution (section 3): the driver may answer each family on its own. An answer for the
//!   preferred family starts the race at once; an answer for the other family first waits
//!   up to the resolution delay for the preferred one.
//! - Order (section 4): families alternate, the preferred one first, one address of each at
//!   a time ("first address family count" 1), in the resolver's order within a family.
//! - Racing (section 5): a new attempt starts when the connection attempt delay has passed
//!   since the last one started, or at once when an attempt fails. Earlier attempts are not
//!   abandoned when the next one starts: each lives until it connects, fails, or reaches its
//!   own cap. The first to connect wins and every other is cancelled at once.
//!
//! The race decides; the client turns its [`Step`]s into outputs.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::report::{Attempt, AttemptOutcome};
use crate::{AttemptId, Family, FamilyPreference};

/// The connection attempt delay's bounds (RFC 8305 section 5).
const ATTEMPT_DELAY_MIN: Duration = Duration::from_millis(10);
const ATTEMPT_DELAY_MAX: Duration = Duration::from_secs(2);

/// How the race runs: from the client's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RaceSettings {
    /// What the attempts' times are counted from: the client's creation.
    pub(crate) origin: Instant,
    pub(crate) preference: FamilyPreference,
    pub(crate) attempt_delay: Duration,
    pub(crate) resolution_delay: Duration,
    pub(crate) attempt_cap: Duration,
}

/// What the client must do for the race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Start an attempt to this address.
    Connect(AttemptId, SocketAddr),
    /// Release the socket of this attempt: it lost, failed or ran out of time.
    Cancel(AttemptId),
}

/// Why a race ended without a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Resolution failed for every family asked about.
    Resolve(ErrorKind),
    /// Resolution gave no address the preference allows.
    NoAddresses,
    /// Every attempt failed; the last failure.
    Failed(SocketAddr, ErrorKind),
    /// Every attempt ran out of time.
    TimedOut,
}

/// A family's answer from the resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pending,
    Got,
    Failed(ErrorKind),
}

/// An attempt under way.
#[derive(Debug, Clone, Copy)]
struct Live {
    id: AttemptId,
    addr: SocketAddr,
    started: Instant,
    /// When it gives up, unless it is the last hope (see [`Race::on_timeout`]).
    cap: Option<Instant>,
}

/// The state of one client's establishment: answers, addresses, attempts.
#[derive(Debug)]
pub(crate) struct Race {
    settings: RaceSettings,
    v6: Answer,
    v4: Answer,
    untried_v6: VecDeque<SocketAddr>,
    untried_v4: VecDeque<SocketAddr>,
    live: Vec<Live>,
    ended: Vec<Attempt>,
    next_id: u32,
    /// The family of the attempt started last: the next one alternates.
    last_family: Option<Family>,
    /// No attempt starts before this while another is under way (the attempt delay).
    not_before: Option<Instant>,
    /// Until then, wait for the preferred family's answer (the resolution delay).
    resolution_wait: Option<Instant>,
    winner: Option<(AttemptId, SocketAddr)>,
    last_error: Option<(SocketAddr, ErrorKind)>,
    steps: VecDeque<Step>,
}

impl Race {
    /// A race waiting for the resolver.
    pub(crate) fn new(settings: RaceSettings) -> Self {
        let settings = RaceSettings {
            attempt_delay: settings
                .attempt_delay
                .clamp(ATTEMPT_DELAY_MIN, ATTEMPT_DELAY_MAX),
            ..settings
        };
        let wanted = |family| {
            if settings.preference.allows(family) {
                Answer::Pending
            } else {
                Answer::Got
            }
        };
        Self {
            settings,
            v6: wanted(Family::V6),
            v4: wanted(Family::V4),
            untried_v6: VecDeque::new(),
            untried_v4: VecDeque::new(),
            live: Vec::new(),
            ended: Vec::new(),
            next_id: 0,
            last_family: None,
            not_before: None,
            resolution_wait: None,
            winner: None,
            last_error: None,
            steps: VecDeque::new(),
        }
    }

    /// Takes the resolver's answer, as the client takes `Input::Resolved`: for one family,
    /// or (`None`) for every family at once; the addresses, or why there are none.
    pub(crate) fn handle_resolved(
        &mut self,
        family: Option<Family>,
        result: Result<&[SocketAddr], ErrorKind>,
        now: Instant,
    ) {
        match result {
            Ok(addrs) => self.resolved(family, addrs, now),
            Err(kind) => self.resolve_failed(family, kind, now),
        }
    }

    /// Takes addresses. Those of a family this answer is not about, or that was answered
    /// before, are ignored, as are duplicates.
    fn resolved(&mut self, family: Option<Family>, addrs: &[SocketAddr], now: Instant) {
        let covered = [Family::V6, Family::V4]
            .map(|f| families(family).any(|g| g == f) && self.answer(f) == Answer::Pending);
        for (family, covered) in [Family::V6, Family::V4].into_iter().zip(covered) {
            if !covered {
                continue;
            }
            for addr in addrs.iter().filter(|a| Family::of(a) == family) {
                if !self.queued_or_tried(addr) {
                    // Room for exactly what comes: most names have one or two addresses,
                    // and every client racing at once holds this until it connects.
                    let untried = self.untried(family);
                    untried.reserve_exact(1);
                    untried.push_back(*addr);
                }
            }
            *self.answer_mut(family) = Answer::Got;
        }
        // The preferred family answered after the race started without it (the resolution
        // delay ran out): it joins at once rather than after the next attempt delay.
        let preferred = self.settings.preference.first();
        let tried_preferred = self
            .live
            .iter()
            .map(|a| a.addr)
            .chain(self.ended.iter().map(|a| a.addr))
            .any(|addr| Family::of(&addr) == preferred);
        if self.has_started() && !tried_preferred && !self.untried(preferred).is_empty() {
            self.not_before = None;
            self.last_family = Some(preferred.other());
        }
        self.advance(now);
    }

    /// Takes the resolver's failure: for one family, or (`None`) for every family at once.
    fn resolve_failed(&mut self, family: Option<Family>, kind: ErrorKind, now: Instant) {
        for failed in families(family) {
            if self.answer(failed) == Answer::Pending {
                *self.answer_mut(failed) = Answer::Failed(kind);
            }
        }
        self.advance(now);
    }

    /// Returns true while resolution has not answered for `family` (so a report for it is
    /// not late).
    pub(crate) fn awaits(&self, family: Option<Family>) -> bool {
        families(family).any(|f| self.answer(f) == Answer::Pending)
    }

    /// Attempt `id` connected. Returns its address if it won: it was under way and nothing
    /// won before it. Every other attempt is cancelled.
    pub(crate) fn handle_connected(&mut self, id: AttemptId, now: Instant) -> Option<SocketAddr> {
        if self.winner.is_some() {
            return None;
        }
        let winner = self.take_live(id)?;
        self.end(winner, now, AttemptOutcome::Won);
        self.winner = Some((id, winner.addr));
        self.cancel_all(now);
        self.untried_v4.clear();
        self.untried_v6.clear();
        Some(winner.addr)
    }

    /// Attempt `id` failed; the next one starts at once.
    pub(crate) fn handle_failed(&mut self, id: AttemptId, kind: ErrorKind, now: Instant) {
        let Some(attempt) = self.take_live(id) else {
            return;
        };
        self.end(attempt, now, AttemptOutcome::from_error(kind));
        self.step(Step::Cancel(id));
        self.last_error = Some((attempt.addr, kind));
        self.not_before = None;
        self.advance(now);
    }

    /// Returns true if `id` names an attempt that was started (under way or ended).
    pub(crate) fn started(&self, id: AttemptId) -> bool {
        id.0 < self.next_id
    }

    /// Returns true if `id` is under way.
    pub(crate) fn is_live(&self, id: AttemptId) -> bool {
        self.live.iter().any(|a| a.id == id)
    }

    /// Returns true once any attempt has started.
    pub(crate) fn has_started(&self) -> bool {
        self.next_id > 0
    }

    /// Moves the race on at `now`: attempts past their cap end (unless one is the last
    /// hope), and the next attempt starts if its time has come.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<Live> = self
            .live
            .iter()
            .filter(|a| a.cap.is_some_and(|cap| cap <= now))
            .copied()
            .collect();
        for attempt in expired {
            if !self.caps_matter() {
                // The last hope keeps whatever the overall connect timeout leaves.
                break;
            }
            let _ = self.take_live(attempt.id);
            self.end(attempt, now, AttemptOutcome::TimedOut);
            self.step(Step::Cancel(attempt.id));
            self.not_before = None;
        }
        self.advance(now);
    }

    /// Ends every attempt under way (the client gives up, or one won).
    pub(crate) fn cancel_all(&mut self, now: Instant) {
        for attempt in std::mem::take(&mut self.live) {
            self.end(attempt, now, AttemptOutcome::Cancelled);
            self.step(Step::Cancel(attempt.id));
        }
    }

    /// The next thing the client must do.
    pub(crate) fn poll_output(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// When the race next needs [`Self::on_timeout`].
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let next_start = (!self.live.is_empty() && self.has_untried())
            .then_some(self.not_before)
            .flatten();
        let caps = self
            .live
            .iter()
            .filter(|_| self.caps_matter())
            .filter_map(|a| a.cap);
        caps.chain(next_start).chain(self.resolution_wait).min()
    }

    /// Why the race is lost, once it is: nothing under way, nothing left to try, and no
    /// answer still to come.
    pub(crate) fn lost(&self) -> Option<Lost> {
        if self.winner.is_some() || !self.live.is_empty() || !self.nothing_left_to_try() {
            return None;
        }
        if self.has_started() {
            return Some(match self.last_error {
                Some((addr, kind)) => Lost::Failed(addr, kind),
                None => Lost::TimedOut,
            });
        }
        let mut failures = [self.v6, self.v4].into_iter().filter_map(|a| match a {
            Answer::Failed(kind) => Some(kind),
            _ => None,
        });
        let any_got = [(Family::V6, self.v6), (Family::V4, self.v4)]
            .into_iter()
            .any(|(f, a)| a == Answer::Got && self.settings.preference.allows(f));
        match failures.next_back() {
            Some(kind) if !any_got => Some(Lost::Resolve(kind)),
            _ => Some(Lost::NoAddresses),
        }
    }

    /// Takes every attempt that has ended, in the order they started. (The client cancels
    /// those under way before it reports, and asks once, when the race is over.)
    pub(crate) fn take_attempts(&mut self) -> Vec<Attempt> {
        let mut all = std::mem::take(&mut self.ended);
        all.sort_by_key(|a| a.id);
        all
    }

    // ---- the rules ----

    /// Starts the next attempt if its time has come: never before the preferred family's
    /// answer or the resolution delay, and, while another attempt is under way, not before
    /// the attempt delay has passed.
    fn advance(&mut self, now: Instant) {
        if self.winner.is_some() {
            return;
        }
        if !self.has_started() && self.waiting_for_preferred(now) {
            return;
        }
        self.resolution_wait = None;
        if !self.live.is_empty() && self.not_before.is_some_and(|t| now < t) {
            return;
        }
        let Some(addr) = self.next_address() else {
            return;
        };
        let id = AttemptId(self.next_id);
        self.next_id += 1;
        push_exact(
            &mut self.live,
            Live {
                id,
                addr,
                started: now,
                cap: now.checked_add(self.settings.attempt_cap),
            },
        );
        self.last_family = Some(Family::of(&addr));
        self.not_before = now.checked_add(self.settings.attempt_delay);
        self.step(Step::Connect(id, addr));
    }

    /// RFC 8305 section 3: the other family answered first; wait a little for the preferred.
    fn waiting_for_preferred(&mut self, now: Instant) -> bool {
        let preferred = self.settings.preference.first();
        if self.answer(preferred) != Answer::Pending || !self.untried(preferred).is_empty() {
            return false;
        }
        if self.untried(preferred.other()).is_empty() {
            // Nothing to start anyway.
            return true;
        }
        let until = *self.resolution_wait.get_or_insert_with(|| {
            now.checked_add(self.settings.resolution_delay)
                .unwrap_or(now)
        });
        now < until
    }

    /// The next address: the family after the last one started, if it has one left.
    fn next_address(&mut self) -> Option<SocketAddr> {
        let family = match self.last_family {
            Some(last) => last.other(),
            None => self.settings.preference.first(),
        };
        self.untried(family)
            .pop_front()
            .or_else(|| self.untried(family.other()).pop_front())
    }

    /// Queues a step for the client (it takes them at once, so there are one or two).
    fn step(&mut self, step: Step) {
        self.steps.reserve_exact(1);
        self.steps.push_back(step);
    }

    /// An attempt's cap ends it only while something else could still connect: another
    /// attempt under way, an address not yet tried, or an answer still to come. The last hope
    /// keeps whatever the overall connect timeout leaves (RFC 8305 asks that no attempt be
    /// abandoned early; an address that answers slowly is still an answer).
    fn caps_matter(&self) -> bool {
        self.live.len() > 1 || !self.nothing_left_to_try()
    }

    fn nothing_left_to_try(&self) -> bool {
        !self.has_untried() && self.v6 != Answer::Pending && self.v4 != Answer::Pending
    }

    fn has_untried(&self) -> bool {
        !self.untried_v6.is_empty() || !self.untried_v4.is_empty()
    }

    /// `addr` is queued, under way or done with: a second answer does not add it again.
    fn queued_or_tried(&self, addr: &SocketAddr) -> bool {
        self.untried_v6.contains(addr)
            || self.untried_v4.contains(addr)
            || self.live.iter().any(|a| a.addr == *addr)
            || self.ended.iter().any(|a| a.addr == *addr)
    }

    fn take_live(&mut self, id: AttemptId) -> Option<Live> {
        let at = self.live.iter().position(|a| a.id == id)?;
        Some(self.live.remove(at))
    }

    fn end(&mut self, attempt: Live, now: Instant, outcome: AttemptOutcome) {
        push_exact(
            &mut self.ended,
            Attempt {
                id: attempt.id,
                addr: attempt.addr,
                started: attempt
                    .started
                    .saturating_duration_since(self.settings.origin),
                ended: now.saturating_duration_since(self.settings.origin),
                outcome,
            },
        );
    }

    fn answer(&self, family: Family) -> Answer {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    fn answer_mut(&mut self, family: Family) -> &mut Answer {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }

    fn untried(&mut self, family: Family) -> &mut VecDeque<SocketAddr> {
        match family {
            Family::V4 => &mut self.untried_v4,
            Family::V6 => &mut self.untried_v6,
        }
    }
}

/// The families an answer covers.
/// Pushes onto a list that is almost always one or two long: it grows by one rather than to
/// four, so a client racing one address holds room for one.
fn push_exact<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

fn families(family: Option<Family>) -> impl Iterator<Item = Family> {
    match family {
        Some(family) => [Some(family), None],
        None => [Some(Family::V6), Some(Family::V4)],
    }
    .into_iter()
    .flatten()
}
