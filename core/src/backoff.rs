//! How a reconnecting [`Client`](crate::Client#reconnecting) waits between connections: exponential backoff with
//! jitter from a seed, limits, and which errors are worth another try.

use std::time::Duration;

use crate::{Error, Preamble, SplitMix};

/// The reconnect policy of a reconnecting [`Client`](crate::Client#reconnecting).
///
/// The defaults are gRPC's connection backoff (1 s, ×1.6, at most 120 s) with full jitter
/// (each delay drawn uniformly between zero and the backoff), no limit on attempts or time,
/// and a connection counted as stable after 30 s:
///
/// ```
/// use std::time::Duration;
/// use tcpclient_core::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::default()
///     .with_seed(7)
///     .with_max_attempts(Some(10))
///     .with_replay_undelivered(true);
/// assert_eq!(policy.initial_delay, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// The backoff before the first reconnect. Default: 1 s.
    pub initial_delay: Duration,
    /// Each further consecutive reconnect multiplies the backoff by this (at least 1).
    /// Default: 1.6.
    pub multiplier: f64,
    /// The backoff never grows past this. Default: 120 s.
    pub max_delay: Duration,
    /// How the delay is drawn from the backoff. Default: [`Jitter::Full`].
    pub jitter: Jitter,
    /// Seed of the jitter: the same seed gives the same delays. Default: 0.
    pub seed: u64,
    /// Give up after this many consecutive reconnects without a stable connection.
    /// Default: `None` (never).
    pub max_attempts: Option<u32>,
    /// Give up once this long has passed since the connection was lost, without a stable
    /// connection since. Default: `None` (never).
    pub max_elapsed: Option<Duration>,
    /// A connection that stayed usable this long (connected, and with TLS from the first
    /// byte, its handshake done) resets the backoff; one that ends sooner counts as a failed
    /// attempt, so a server that accepts and dies at once, or never finishes a handshake,
    /// is retried ever more slowly, not in a storm. So does one that lost every byte it
    /// wrote, however long it lasted: a server that accepts and never reads. Default: 30 s.
    pub stable_after: Duration,
    /// Send the bytes a lost connection did not get through first on the next one, instead
    /// of handing them back as [`Event::Undelivered`](crate::Event::Undelivered): those it
    /// never wrote, and those it wrote and the peer's TCP never acknowledged (lost with it;
    /// a few of them may have reached the peer all the same, their acknowledgement lost
    /// with the connection, so the peer may see them twice). Bytes that
    /// were to go over a STARTTLS session begun mid-stream are handed back all the same:
    /// the next connection's preamble is the application's to redo, unless the preamble is
    /// [`Preamble::Dialogue`], which holds them until it is redone. Default: false.
    pub replay_undelivered: bool,
    /// Keep every byte sent until the application says that its protocol acknowledged it
    /// ([`Client::acknowledged`](crate::Client::acknowledged)), and send what it has not
    /// first on the next connection, in order: at-least-once delivery of whole messages,
    /// where the application acknowledges whole messages. The bytes kept count against
    /// [`Config::send_limit`](crate::Config::send_limit): a full window refuses sends
    /// ([`InvalidInput::QueueFull`](crate::InvalidInput::QueueFull)) until
    /// acknowledgements make room ([`Event::SendReady`](crate::Event::SendReady)). Implies
    /// [`replay_undelivered`](Self::replay_undelivered). It cannot give exactly once: a
    /// message the server processed and whose answer was lost comes again, and only ids
    /// the server remembers can tell. Default: false.
    pub replay_unacknowledged: bool,
    /// What every connection begins with, before anything the application queued or the
    /// session replays. Default: [`Preamble::None`].
    pub preamble: Preamble,
    /// Which errors end the session instead of a reconnect. Default:
    /// [`Error::is_permanent`].
    pub is_permanent: fn(&Error) -> bool,
}

/// How a delay is drawn from the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly the backoff.
    None,
    /// Uniformly between zero and the backoff ("full jitter"): clients that lost the same
    /// server at the same instant come back spread out.
    Full,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            multiplier: 1.6,
            max_delay: Duration::from_secs(120),
            jitter: Jitter::Full,
            seed: 0,
            max_attempts: None,
            max_elapsed: None,
            stable_after: Duration::from_secs(30),
            replay_undelivered: false,
            replay_unacknowledged: false,
            preamble: Preamble::None,
            is_permanent: Error::is_permanent,
        }
    }
}

impl ReconnectPolicy {
    /// Sets [`ReconnectPolicy::initial_delay`].
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets [`ReconnectPolicy::multiplier`].
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets [`ReconnectPolicy::max_delay`].
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets [`ReconnectPolicy::jitter`].
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`ReconnectPolicy::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`ReconnectPolicy::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`ReconnectPolicy::max_elapsed`].
    pub fn with_max_elapsed(mut self, elapsed: Option<Duration>) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// Sets [`ReconnectPolicy::stable_after`].
    pub fn with_stable_after(mut self, stable: Duration) -> Self {
        self.stable_after = stable;
        self
    }

    /// Sets [`ReconnectPolicy::replay_undelivered`].
    pub fn with_replay_undelivered(mut self, replay: bool) -> Self {
        self.replay_undelivered = replay;
        self
    }

    /// Sets [`ReconnectPolicy::replay_unacknowledged`].
    pub fn with_replay_unacknowledged(mut self, replay: bool) -> Self {
        self.replay_unacknowledged = replay;
        self
    }

    /// Sets [`ReconnectPolicy::preamble`].
    pub fn with_preamble(mut self, preamble: Preamble) -> Self {
        self.preamble = preamble;
        self
    }

    /// Sets [`ReconnectPolicy::is_permanent`].
    pub fn with_is_permanent(mut self, is_permanent: fn(&Error) -> bool) -> Self {
        self.is_permanent = is_permanent;
        self
    }

    /// The backoff before reconnect number `attempt` (0 for the first after a stable
    /// connection), before jitter: `initial_delay × multiplier^attempt`, at most `max_delay`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * multiplier.powi(exponent);
        let cap = self.max_delay.as_secs_f64();
        // Past the cap (or overflowing to infinity), the cap.
        if secs.is_finite() && secs < cap {
            Duration::from_secs_f64(secs)
        } else {
            self.max_delay
        }
    }
}

/// The policy's delays, drawn in order from its seed.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    rng: SplitMix,
}

impl Backoff {
    pub(crate) fn new(policy: &ReconnectPolicy) -> Self {
        Self {
            rng: SplitMix::new(policy.seed),
        }
    }

    /// The delay before reconnect number `attempt`: the backoff, jittered. One draw per
    /// delay, so the sequence depends on the seed and the attempts alone.
    pub(crate) fn delay(&mut self, policy: &ReconnectPolicy, attempt: u32) -> Duration {
        let backoff = policy.backoff(attempt);
        let draw = self.rng.unit();
        match policy.jitter {
            Jitter::None => backoff,
            Jitter::Full => backoff.mul_f64(draw),
        }
    }
}

impl Error {
    /// Returns true for errors another connection would meet again: a certificate that
    /// does not verify, a name that does not exist, a configuration the server cannot
    /// work with, a driver that stopped. Refusals, timeouts, resets and garbage are
    /// transient: the server may be restarting.
    pub fn is_permanent(&self) -> bool {
        use crate::TlsError;
        match self {
            Error::Resolve { kind, .. } => *kind == std::io::ErrorKind::NotFound,
            Error::NoAddresses { .. } | Error::DriverStopped { .. } => true,
            Error::Tls(tls) => matches!(
                tls,
                TlsError::CertificateNotTrusted { .. }
                    | TlsError::CertificateNameMismatch { .. }
                    | TlsError::CertificateExpired { .. }
                    | TlsError::CertificateIsCa
                    | TlsError::CertificateInvalid { .. }
                    | TlsError::Incompatible { .. }
                    | TlsError::InvalidAlpnProtocol { .. }
            ),
            Error::Connect { .. }
            | Error::ConnectTimeout
            | Error::Socket(_)
            | Error::TlsHandshakeTimeout
            | Error::UnexpectedEof
            | Error::IdleTimeout
            | Error::Stalled
            | Error::DrainTimeout => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_by_the_multiplier_up_to_the_cap() {
        let policy = ReconnectPolicy::default();
        let secs: Vec<f64> = (0..13)
            .map(|n| (policy.backoff(n).as_secs_f64() * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(
            secs,
            [
                1.0, 1.6, 2.56, 4.096, 6.554, 10.486, 16.777, 26.844, 42.95, 68.719, 109.951,
                120.0, 120.0
            ]
        );
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(120));
    }

    #[test]
    fn a_multiplier_below_one_or_not_a_number_keeps_the_delay_flat() {
        for multiplier in [0.5, f64::NAN, f64::INFINITY, -3.0] {
            let policy = ReconnectPolicy::default().with_multiplier(multiplier);
            assert_eq!(policy.backoff(5), Duration::from_secs(1), "{multiplier}");
        }
    }
}
