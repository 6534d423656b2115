//! The liveness phase: after the chaos, a schedule heals every fault at a drawn instant, and
//! from then on the run must make progress. Safety checks say nothing bad happened; this
//! says something good did: a client (or a reconnecting session) that was still open once a
//! sound network had had time to carry everything held back finishes cleanly.

use std::time::Duration;

use tcpclient_core::{CloseReport, Ending, Error};

use crate::faults::FaultKind;
use crate::network::{Network, Reach};
use crate::scenario::{End, Scenario, TlsMode};
use crate::servers::ServerKind;

/// How long after the heal the network may still be catching up: held messages delivered,
/// then a connect, a TLS handshake and a STARTTLS dialogue, each a round trip of at most
/// 600 ms (a 300 ms latency fault, or a 300 ms dual-stack path). A session may first wait
/// out its backoff (up to 3 s in the sweep): it is held to finishing, not to finishing by
/// then, since its application sends once more only at the end of the grace period.
pub const GRACE: Duration = Duration::from_secs(3);

/// The shortest drain timeout a run is held to: a clean close needs the server's end, which
/// comes a round trip after our last bytes and FIN, at the worst latency a healed network
/// keeps (a 300 ms latency fault outlives the heal; a 300 ms dual-stack path; 100 ms of
/// turmoil's own).
pub const DRAIN_NEEDED: Duration = Duration::from_secs(1);

/// Why a healed run must finish cleanly, if it must: the heal's instant.
///
/// It must when, once healed, nothing stands in its way: the faults lost no message (turmoil
/// does not retransmit, so a partition or a loss leaves a stream stalled for good, where a
/// real TCP would recover), a server crash, if any, meets a session that reconnects and
/// that takes the crashed server's FIN as a loss (with `OnPeerEof::KeepWriting` it learns of
/// the crash only from a write, which may come with the application's `Finish`, after which
/// a session does not reconnect), the
/// server speaks the client's protocol and reads to the end, some address family answers,
/// the application finishes rather than aborts, no idle timeout ends the connection while
/// the application waits for the heal, and the drain timeout leaves the server time to
/// close its side ([`DRAIN_NEEDED`], and an echo not held back by an application that
/// consumes slowly).
pub fn applies(scenario: &Scenario) -> Option<Duration> {
    let healed = scenario.schedule.healed_at()?;
    let reconnects = scenario.reconnect.is_some();
    let lossless = scenario.schedule.faults.iter().all(|f| match f.kind {
        FaultKind::Partition | FaultKind::PartitionOneWay(_) | FaultKind::Loss(_) => false,
        FaultKind::Crash => reconnects && !scenario.half_open,
        _ => true,
    });
    let cooperative = matches!(
        (scenario.server, scenario.tls),
        // Not the slow reader: a backlog it takes longer to read than the drain timeout
        // rightly ends in `DrainTimeout`, healed or not.
        (ServerKind::Echo | ServerKind::Sink, TlsMode::Plain)
            | (ServerKind::StartTlsLine, TlsMode::StartTls)
            | (ServerKind::TlsEcho, TlsMode::FromStart)
    );
    let reachable = match scenario.network {
        Network::SingleStack => true,
        Network::DualStack { v6, v4 } => [v6, v4]
            .iter()
            .any(|path| matches!(path.reach, Reach::Answers(_))),
    };
    let finishes = scenario.script.end == End::Finish && scenario.idle_timeout.is_none();
    let echo_held_back = scenario.consume_pause.is_some() && scenario.server.echoes();
    let drains = scenario.drain_timeout >= DRAIN_NEEDED && !echo_held_back;
    (lossless && cooperative && reachable && finishes && drains).then_some(healed)
}

/// The liveness verdict: `None` if the run kept its promise (or was not held to it).
/// `withheld_fin` says that turmoil kept our FIN from a server that had read everything
/// before it ([`Wire::withheld_fin`](crate::Wire::withheld_fin)): a run that got every byte
/// through then waits in vain for the FIN's acknowledgement (and, from a server that closes
/// when it reads our end, for the server's end), which a real network would have given.
pub fn check(
    scenario: &Scenario,
    report: &CloseReport,
    closed_at: Duration,
    withheld_fin: bool,
) -> Option<Result<(), String>> {
    let healed = applies(scenario)?;
    if closed_at <= healed + GRACE {
        return None;
    }
    let all_through = report.bytes_lost == 0 && report.bytes_undelivered == 0;
    Some(match &report.result {
        Ok(Ending::Finished) => Ok(()),
        Err(Error::DrainTimeout) if withheld_fin && all_through => Ok(()),
        other => Err(format!(
            "liveness: healed at {} ms and still open {} ms later, yet it ended {:?} at {} ms",
            healed.as_millis(),
            GRACE.as_millis(),
            other,
            closed_at.as_millis()
        )),
    })
}
