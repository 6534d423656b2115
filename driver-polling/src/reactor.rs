//! The loop's machinery, whoever holds the clients: one `polling::Poller`, the
//! connections' sockets, their timers and lookups, and the performing of what each client
//! asks. [`EventLoop`](crate::EventLoop) holds its clients itself; the
//! [`Runtime`](crate::Runtime) shares each with the connection's handles, behind a lock.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::ops::DerefMut;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use polling::{Event as Readiness, Events, Poller};
use tcpclient_core::{AttemptId, Client, Event, Family, Input, Output};

use crate::conn::{Conn, Reported};
use tcpclient_driver::Resolve;

use crate::resolver::{Resolution, ResolverPool};

/// Bytes handed out that are worth a write before the remaining outputs are taken: the
/// peer works on them while the client prepares the rest. At 64 KiB, a plain bulk send
/// made a system call per four 16 KiB messages and reached 0.66x the throughput of 256 KiB
/// writes on loopback; at 256 KiB it matches them. (TLS bulk did not change either way.)
const WRITE_EARLY: usize = 256 * 1024;

/// Size of the one read buffer all connections share.
const READ_BUFFER: usize = 64 * 1024;

/// Where a connection's client is kept: in the loop ([`Client`] itself), or shared with the
/// application's handles behind a lock. The loop takes it for one step at a time and never
/// holds it across another.
pub(crate) trait Hold {
    /// The client, for one step.
    type Guard<'a>: DerefMut<Target = Client>
    where
        Self: 'a;

    /// Takes the client for one step.
    fn lock(&mut self) -> Self::Guard<'_>;
}

impl Hold for Client {
    type Guard<'a> = &'a mut Client;

    #[inline]
    fn lock(&mut self) -> &mut Client {
        self
    }
}

/// Identifies a connection in an [`EventLoop`](crate::EventLoop). Stale ids (of closed connections) are never
/// confused with new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    generation: u32,
}

/// Wakes an [`EventLoop`](crate::EventLoop) blocked in
/// [`EventLoop::turn`](crate::EventLoop::turn) from another thread.
#[derive(Debug, Clone)]
pub struct Waker(Arc<Poller>);

impl Waker {
    /// Makes the current or next `turn` return promptly.
    pub fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

/// The loop over connections whose clients are held as `H` says.
pub(crate) struct Reactor<H> {
    poller: Arc<Poller>,
    readiness: Events,
    pub(crate) slots: Vec<Slot<H>>,
    free: Vec<u32>,
    pub(crate) dirty: Vec<u32>,
    timers: BTreeSet<(Instant, u32)>,
    resolver: ResolverPool,
    resolved_rx: Receiver<Resolution>,
    ready: VecDeque<(ConnId, Event)>,
    /// The last turn returned without waiting for readiness (see [`Reactor::turn`]).
    skipped_wait: bool,
    /// Connections whose bytes written grew since `poll_progress` last reported them: one
    /// entry per connection at most, however many writes happened meanwhile.
    progress: VecDeque<ConnId>,
    /// The connect attempt each odd poller key stands for (even keys are twice a slot).
    attempt_keys: HashMap<usize, (u32, AttemptId)>,
    /// The last odd key handed out.
    next_attempt_key: usize,
    read_buf: Box<[u8]>,
    open: usize,
    /// Resolutions asked of helper threads and not yet collected.
    resolving: usize,
    /// The clock, read once per step of a turn rather than once per input.
    pub(crate) now: Instant,
}

pub(crate) struct Slot<H> {
    generation: u32,
    pub(crate) conn: Option<Conn<H>>,
}

impl<H: Hold> Reactor<H> {
    /// An empty loop that resolves names with `resolver`, on at most
    /// [`MAX_RESOLVER_THREADS`](crate::MAX_RESOLVER_THREADS) helper threads.
    pub(crate) fn new(resolver: impl Resolve) -> io::Result<Self> {
        let (resolved_tx, resolved_rx) = mpsc::channel();
        let poller = Arc::new(Poller::new()?);
        Ok(Self {
            resolver: ResolverPool::new(Arc::new(resolver), resolved_tx, poller.clone()),
            poller,
            readiness: Events::new(),
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            timers: BTreeSet::new(),
            resolved_rx,
            ready: VecDeque::new(),
            skipped_wait: false,
            progress: VecDeque::new(),
            attempt_keys: HashMap::new(),
            next_attempt_key: 1,
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            open: 0,
            resolving: 0,
            now: Instant::now(),
        })
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.poller.clone())
    }

    /// Takes `client` in; its first outputs are performed on the next turn.
    pub(crate) fn add(&mut self, client: H) -> ConnId {
        let conn = Conn::new(client);
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.conn = Some(conn);
        self.open += 1;
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        self.mark_dirty(index);
        id
    }

    /// Has the next turn perform what connection `id`'s client asks for now (a request was
    /// made of it); nothing if it has closed since.
    pub(crate) fn look_at(&mut self, id: ConnId) {
        if self.conn_mut(id).is_some() {
            self.mark_dirty(id.index);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open
    }

    pub(crate) fn poll_event(&mut self) -> Option<(ConnId, Event)> {
        self.ready.pop_front()
    }

    pub(crate) fn poll_progress(&mut self) -> Option<(ConnId, u64)> {
        while let Some(id) = self.progress.pop_front() {
            if let Some(conn) = self.conn_mut(id) {
                conn.progress_queued = false;
                return Some((id, conn.client.lock().bytes_written()));
            }
        }
        None
    }

    /// Performs what the clients asked for, waits for readiness, a deadline, a wake-up or
    /// `timeout` (whichever comes first), and feeds back what happened.
    ///
    /// A turn that wrote something while acting on earlier requests, or whose requests
    /// produced events, does not block: it polls without waiting and returns, so that a
    /// producer waiting for room sees it at once. A turn whose requests produced events
    /// returns without polling at all (the application comes back for them), though never
    /// two turns in a row. Events the application left in the queue after an earlier turn
    /// do not keep a turn from waiting: it had them, and a loop that only sends would
    /// otherwise never block.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.now = Instant::now();
        self.collect_resolutions();
        // Work done before waiting (requests made since the last turn) may have produced
        // events or written bytes a producer is waiting on: then do not block. Every event
        // queued before this flush was there when the last turn returned.
        let left = self.ready.len();
        let wrote = self.flush_dirty();
        let produced = self.ready.len() > left;
        // Events wait for the application, which comes back for them at once: the wait of
        // the poller (up to five system calls with `polling`'s epoll backend as released)
        // can wait for the next turn. Never two turns in a row, so that an application that
        // has events on every turn still hears from its sockets on every other one.
        let skip = produced && !self.skipped_wait;
        self.skipped_wait = skip;
        if !skip {
            self.wait_and_feed(wrote || produced, timeout)?;
        }
        self.fire_timers();
        self.collect_resolutions();
        self.flush_dirty();
        Ok(())
    }

    /// Waits for readiness (not at all when `hurry`; at most until `timeout` or the next
    /// deadline otherwise) and feeds what the poller reports.
    fn wait_and_feed(&mut self, hurry: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut wait = if hurry { Some(Duration::ZERO) } else { timeout };
        if let Some(&(deadline, _)) = self.timers.first() {
            let until = deadline.saturating_duration_since(self.now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        self.readiness.clear();
        match self.poller.wait(&mut self.readiness, wait) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        self.now = Instant::now();
        let fired: Vec<Readiness> = self.readiness.iter().collect();
        for readiness in fired {
            self.on_readiness(readiness);
        }
        Ok(())
    }

    // ---- feeding the clients ----

    #[inline]
    pub(crate) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn<H>> {
        conn_in(&mut self.slots, id)
    }

    #[inline]
    pub(crate) fn mark_dirty(&mut self, index: u32) {
        if let Some(conn) = self.slots[index as usize].conn.as_mut() {
            flag_dirty(conn, &mut self.dirty, index);
        }
    }

    fn collect_resolutions(&mut self) {
        while self.resolving > 0
            && let Ok((id, family, result)) = self.resolved_rx.try_recv()
        {
            self.resolving -= 1;
            let now = self.now;
            // A connection that closed first (an abort, the connect timeout) is gone.
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            conn.lookups = conn.lookups.saturating_sub(1);
            let result = result.as_deref().map_err(|kind| *kind);
            conn.feed(now, Input::Resolved { family, result });
            self.mark_dirty(id.index);
        }
    }

    /// Readiness of a connection's socket (an even key: twice its slot) or of a connect
    /// attempt's (an odd key, looked up).
    fn on_readiness(&mut self, readiness: Readiness) {
        if readiness.key % 2 == 1 {
            let Some(&(index, attempt)) = self.attempt_keys.get(&readiness.key) else {
                return;
            };
            if let Some(conn) = self
                .slots
                .get_mut(index as usize)
                .and_then(|s| s.conn.as_mut())
            {
                conn.on_attempt_ready(attempt, self.now);
                self.mark_dirty(index);
            }
            return;
        }
        let index = (readiness.key / 2) as u32;
        let mut read_buf = std::mem::take(&mut self.read_buf);
        if let Some(conn) = self
            .slots
            .get_mut(index as usize)
            .and_then(|s| s.conn.as_mut())
        {
            conn.on_readiness(readiness, &mut read_buf, self.now);
        }
        self.read_buf = read_buf;
        self.mark_dirty(index);
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        while let Some(&(deadline, index)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            if let Some(conn) = self.slots[index as usize].conn.as_mut() {
                conn.deadline = None;
                conn.feed(now, Input::Timeout);
                self.mark_dirty(index);
            }
        }
    }

    // ---- performing the clients' outputs ----

    /// Flushes every connection with something to do; returns whether any wrote.
    fn flush_dirty(&mut self) -> bool {
        let mut wrote = false;
        while let Some(index) = self.dirty.pop() {
            wrote |= self.flush(index);
        }
        wrote
    }

    /// Performs everything connection `index` asked for, then re-arms its interest and timer.
    /// Returns whether it wrote anything (or failed trying).
    fn flush(&mut self, index: u32) -> bool {
        let slot = &mut self.slots[index as usize];
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        let Some(conn) = slot.conn.as_mut() else {
            return false;
        };
        conn.dirty = false;
        let now = self.now;
        let written_before = conn.client.lock().bytes_written();
        let (mut closed, mut wrote) = (false, false);
        loop {
            loop {
                // The client is taken for each output alone: performing it may report back.
                let output = conn.client.lock().poll_output();
                let Some(output) = output else {
                    break;
                };
                match output {
                    Output::Resolve { host, port } => {
                        // AAAA and A apart (RFC 8305 section 3): the core waits a little for
                        // the one it prefers, and starts with whichever comes.
                        for family in [Family::V6, Family::V4] {
                            self.resolving += 1;
                            conn.lookups += 1;
                            self.resolver.resolve(id, host.clone(), port, family);
                        }
                    }
                    Output::Connect {
                        attempt,
                        addr,
                        options,
                    } => {
                        self.next_attempt_key = self.next_attempt_key.wrapping_add(2);
                        let key = self.next_attempt_key;
                        self.attempt_keys.insert(key, (index, attempt));
                        conn.connect(attempt, addr, &options, key, &self.poller, now);
                    }
                    Output::Cancel(attempt) => conn.cancel(attempt, &self.poller),
                    Output::Transmit(bytes) => {
                        conn.pending.push(bytes);
                        // Enough to be worth a system call: write now, so the peer works
                        // on it while the client prepares the rest.
                        if conn.pending.bytes() >= WRITE_EARLY {
                            wrote |= conn.write_pending(now) == Reported::Something;
                        }
                    }
                    Output::ShutdownWrite => conn.shutdown_write(now),
                    Output::QueryUnacknowledged => conn.answer_query(now),
                    Output::Close => conn.close(&self.poller, false),
                    Output::Reset => conn.close(&self.poller, true),
                    Output::Event(event) => {
                        closed |= matches!(event, Event::Closed(_));
                        self.ready.push_back((id, event));
                    }
                }
            }
            if conn.write_pending(now) == Reported::Something {
                wrote = true;
                continue;
            }
            // Re-arming can fail too; the client then has a close to hand out.
            if closed || conn.rearm(connection_key(index), &self.poller, now) == Reported::Nothing {
                break;
            }
        }
        if closed {
            self.remove(index);
            return wrote;
        }
        for key in conn.retired_keys.drain(..) {
            self.attempt_keys.remove(&key);
        }
        let (written, deadline) = {
            let client = conn.client.lock();
            (client.bytes_written(), client.poll_timeout())
        };
        if written != written_before && !conn.progress_queued {
            conn.progress_queued = true;
            self.progress.push_back(id);
        }
        if deadline != conn.deadline {
            if let Some(old) = conn.deadline {
                self.timers.remove(&(old, index));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, index));
            }
            conn.deadline = deadline;
        }
        wrote
    }

    fn remove(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        if let Some(mut conn) = slot.conn.take() {
            self.resolver.forget(id, conn.lookups);
            conn.close(&self.poller, false);
            for key in conn.retired_keys.drain(..) {
                self.attempt_keys.remove(&key);
            }
            if let Some(old) = conn.deadline {
                self.timers.remove(&(old, index));
            }
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        self.open -= 1;
    }
}

impl<H> Reactor<H> {
    /// The open connection `id` names and its client, if it is still the one in its slot.
    pub(crate) fn client(&self, id: ConnId) -> Option<&H> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.conn.as_ref())
            .flatten()
            .map(|conn| &conn.client)
    }
}

/// The poller key of connection `index`'s socket: even, so that odd keys can stand for
/// connect attempts.
fn connection_key(index: u32) -> usize {
    index as usize * 2
}

/// Puts connection `index` on the list of those to flush, once.
#[inline]
pub(crate) fn flag_dirty<H>(conn: &mut Conn<H>, dirty: &mut Vec<u32>, index: u32) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(index);
    }
}

/// The open connection `id` names, if it is still the one in its slot. (A function of the
/// slots alone, so that a caller can hold it and still touch the loop's other fields.)
#[inline]
pub(crate) fn conn_in<H>(slots: &mut [Slot<H>], id: ConnId) -> Option<&mut Conn<H>> {
    let slot = slots.get_mut(id.index as usize)?;
    if slot.generation != id.generation {
        return None;
    }
    slot.conn.as_mut()
}

impl<H> Drop for Reactor<H> {
    /// Takes every socket out of the poller before it is closed, as `Poller::add` requires.
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.as_mut() {
                conn.close(&self.poller, false);
            }
        }
    }
}
