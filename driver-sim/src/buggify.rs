//! Buggify: the driver misbehaves, within its contract, where a seed says so. Each point is
//! switched on for a run with probability 1/4 and then fires 1/4 of the times it is reached
//! (FoundationDB's numbers), every draw from the seed, so a failing run replays.
//!
//! The core is never buggified: it is what is under test. The points live in the simulated
//! network's streams ([`BuggyStream`]), its connects, and the observer between the driver
//! and the engine.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tcpclient_core::SplitMix;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::Wire;

/// A place where the driver may misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    /// A write takes only part of what it was given.
    ShortWrite,
    /// A read returns only part of what is there.
    SplitRead,
    /// A read or a write wakes the driver with nothing done.
    SpuriousWake,
    /// A connect's outcome is reported late.
    LateConnect,
    /// A report (connected, failed, end of stream, socket error, timeout) is made twice.
    DuplicateReport,
    /// A cancelled attempt's outcome is reported anyway, after the cancel.
    LateReport,
    /// A timeout is reported before its deadline.
    EarlyTimeout,
    /// The timer fires after the deadline.
    LateTimeout,
}

impl Point {
    /// Every point.
    pub const ALL: [Point; 8] = [
        Point::ShortWrite,
        Point::SplitRead,
        Point::SpuriousWake,
        Point::LateConnect,
        Point::DuplicateReport,
        Point::LateReport,
        Point::EarlyTimeout,
        Point::LateTimeout,
    ];

    /// The point's name in summaries and coverage.
    pub fn name(self) -> &'static str {
        match self {
            Point::ShortWrite => "short write",
            Point::SplitRead => "split read",
            Point::SpuriousWake => "spurious wake-up",
            Point::LateConnect => "late connect",
            Point::DuplicateReport => "duplicate report",
            Point::LateReport => "late report",
            Point::EarlyTimeout => "early timeout",
            Point::LateTimeout => "late timeout",
        }
    }

    /// The points a run switches on: each with probability 1/4.
    pub fn random(rng: &mut SplitMix) -> Vec<Point> {
        Point::ALL
            .into_iter()
            .filter(|_| rng.chance(1, 4))
            .collect()
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The points switched on for one run, and the draws that decide when they fire. Clones
/// share the draws; each run makes its own, so that it replays.
#[derive(Debug, Clone)]
pub struct Buggify {
    enabled: u8,
    draws: Arc<Mutex<Draws>>,
}

/// One stream of draws per point, so that switching one point off (as shrinking does)
/// leaves when the others fire as it was.
#[derive(Debug)]
struct Draws {
    rngs: [SplitMix; Point::ALL.len()],
    fired: u8,
}

impl Default for Buggify {
    fn default() -> Self {
        Self::off()
    }
}

impl Buggify {
    /// No point on: the driver as users run it.
    pub fn off() -> Self {
        Self::with_points(0, &[])
    }

    /// Exactly `points` on, their firing drawn from `seed`.
    pub fn with_points(seed: u64, points: &[Point]) -> Self {
        Self {
            enabled: points.iter().fold(0, |bits, p| bits | p.bit()),
            draws: Arc::new(Mutex::new(Draws {
                rngs: Point::ALL.map(|p| SplitMix::new(seed ^ 0x5eed_f1e1_d0c0_ffee ^ p as u64)),
                fired: 0,
            })),
        }
    }

    /// Whether `point` is switched on.
    pub fn has(&self, point: Point) -> bool {
        self.enabled & point.bit() != 0
    }

    /// The points switched on.
    pub fn points(&self) -> Vec<Point> {
        Point::ALL.into_iter().filter(|p| self.has(*p)).collect()
    }

    /// Whether `point` fires now: on, and one draw in four.
    pub fn fires(&self, point: Point) -> bool {
        if !self.has(point) {
            return false;
        }
        let mut draws = self.draws.lock().unwrap_or_else(PoisonError::into_inner);
        let fires = draws.rngs[point as usize].chance(1, 4);
        if fires {
            draws.fired |= point.bit();
        }
        fires
    }

    /// A draw in `0..n` (`n` > 0) from `point`'s stream, for how much it does when it fires.
    pub fn below(&self, point: Point, n: u64) -> u64 {
        let mut draws = self.draws.lock().unwrap_or_else(PoisonError::into_inner);
        draws.rngs[point as usize].below(n)
    }

    /// The points that fired at least once.
    pub fn fired(&self) -> Vec<Point> {
        let fired = self
            .draws
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fired;
        Point::ALL
            .into_iter()
            .filter(|p| fired & p.bit() != 0)
            .collect()
    }

    /// The names of the points on, joined, or `off`.
    pub fn label(&self) -> String {
        let names: Vec<&str> = self.points().into_iter().map(Point::name).collect();
        if names.is_empty() {
            "off".into()
        } else {
            names.join(", ")
        }
    }
}

/// turmoil's stream with short writes, split reads and spurious wake-ups, counting what it
/// wrote and entering its FIN in the [`Wire`] (for the acknowledgements the simulator
/// models).
#[derive(Debug)]
pub struct BuggyStream {
    stream: turmoil::net::TcpStream,
    buggify: Buggify,
    wire: Wire,
    written: u64,
}

impl BuggyStream {
    pub(crate) fn new(stream: turmoil::net::TcpStream, buggify: Buggify, wire: Wire) -> Self {
        Self {
            stream,
            buggify,
            wire,
            written: 0,
        }
    }

    /// The client's end of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The bytes written to the stream so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Counts what a write took.
    fn count(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written {
            self.written += n as u64;
        }
        written
    }

    /// Whether to wake the task at once and report nothing done.
    fn spurious(&self, cx: &mut Context<'_>) -> bool {
        let fires = self.buggify.fires(Point::SpuriousWake);
        if fires {
            cx.waker().wake_by_ref();
        }
        fires
    }

    /// How much of `len` bytes a short write or a split read takes: at least one.
    fn part(&self, point: Point, len: usize) -> usize {
        if len > 1 && self.buggify.fires(point) {
            1 + self.buggify.below(point, len as u64 - 1) as usize
        } else {
            len
        }
    }
}

impl AsyncRead for BuggyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.spurious(cx) {
            return Poll::Pending;
        }
        let room = self.part(Point::SplitRead, buf.remaining());
        if room == buf.remaining() {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(room));
        let read = Pin::new(&mut self.stream).poll_read(cx, &mut part);
        let n = part.filled().len();
        buf.advance(n);
        read
    }
}

impl AsyncWrite for BuggyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.spurious(cx) {
            return Poll::Pending;
        }
        let len = self.part(Point::ShortWrite, buf.len());
        let written = Pin::new(&mut self.stream).poll_write(cx, &buf[..len]);
        self.count(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // A short write takes part of the first slice only.
        if self.buggify.has(Point::ShortWrite) || self.buggify.has(Point::SpuriousWake) {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let shut = Pin::new(&mut self.stream).poll_shutdown(cx);
        if let (Poll::Ready(Ok(())), Ok(client)) = (&shut, self.stream.local_addr()) {
            self.wire.sent_fin(client, self.written);
        }
        shut
    }
}
