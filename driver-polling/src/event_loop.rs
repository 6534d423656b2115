//! The event loop: many clients, one `polling::Poller`, one thread.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use bytes::Bytes;
use polling::{Event as Readiness, Events, Poller};
use tcpclient_core::{
    AttemptId, Client, Config, Event, Family, Input, InvalidInput, Output, Request,
};

use crate::conn::{Conn, Reported};
use tcpclient_driver::{Resolve, SystemResolver};

use crate::resolver::{Resolution, ResolverPool};

/// Bytes handed out that are worth a write before the remaining outputs are taken.
const WRITE_EARLY: usize = 64 * 1024;

/// Size of the one read buffer all connections share.
const READ_BUFFER: usize = 64 * 1024;

/// Identifies a connection in an [`EventLoop`]. Stale ids (of closed connections) are never
/// confused with new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// An id no connection ever has: requests on it are refused as on a closed connection.
    pub(crate) const CLOSED: ConnId = ConnId {
        index: u32::MAX,
        generation: u32::MAX,
    };
}

/// Wakes an [`EventLoop`] blocked in [`EventLoop::turn`] from another thread.
#[derive(Debug, Clone)]
pub struct Waker(Arc<Poller>);

impl Waker {
    /// Makes the current or next `turn` return promptly.
    pub fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

/// Runs any number of [`Client`]s over non-blocking sockets in the calling thread.
///
/// The loop performs what each client asks for — resolution (on a pool of at most
/// [`MAX_RESOLVER_THREADS`](crate::MAX_RESOLVER_THREADS) helper threads, so a slow resolver
/// never stalls the loop, though it can delay other lookups), non-blocking connects (several
/// at once while a client races its attempts), gathered writes, reads into one shared buffer,
/// FIN, close, reset — and feeds back what happened. It decides nothing itself.
///
/// Application requests ([`send`](Self::send), [`start_tls`](Self::start_tls),
/// [`finish`](Self::finish), [`abort`](Self::abort), [`consumed`](Self::consumed)) go
/// straight to the client, so a full send queue is refused synchronously with the data
/// handed back. Events come out of [`poll_event`](Self::poll_event) after each
/// [`turn`](Self::turn). Report the `Data` you are done with through
/// [`consumed`](Self::consumed): a connection holding its
/// [`Config::receive_window`] of unconsumed bytes stops reading (or configure
/// `receive_window: None` if you take each `Data` as it comes and hold nothing).
///
/// ```
/// use tcpclient_core::{Bytes, Config, Event};
/// use tcpclient_polling::EventLoop;
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let port = listener.local_addr()?.port();
/// # std::thread::spawn(move || {
/// #     let (mut conn, _) = listener.accept().unwrap();
/// #     std::io::copy(&mut conn.try_clone().unwrap(), &mut conn).unwrap();
/// # });
///
/// let mut event_loop = EventLoop::new()?;
/// let id = event_loop.connect(Config::new("127.0.0.1", port));
/// event_loop.send(id, Bytes::from_static(b"ping"))?;
/// event_loop.finish(id)?;
/// loop {
///     event_loop.turn(None)?;
///     while let Some((from, event)) = event_loop.poll_event() {
///         match event {
///             Event::Data(data) => {
///                 assert_eq!(data, "ping");
///                 // Done with it: room again in the connection's receive window.
///                 event_loop.consumed(from, data.len())?;
///             }
///             Event::Closed(report) => {
///                 assert!(report.is_clean());
///                 return Ok(());
///             }
///             _ => {}
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventLoop {
    poller: Arc<Poller>,
    readiness: Events,
    slots: Vec<Slot>,
    free: Vec<u32>,
    dirty: Vec<u32>,
    timers: BTreeSet<(Instant, u32)>,
    resolver: ResolverPool,
    resolved_rx: Receiver<Resolution>,
    ready: VecDeque<(ConnId, Event)>,
    /// The last turn returned without waiting for readiness (see [`EventLoop::turn`]).
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
    now: Instant,
}

struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

impl EventLoop {
    /// Creates an empty loop that resolves names with the system's resolver.
    pub fn new() -> io::Result<Self> {
        Self::with_resolver(SystemResolver)
    }

    /// Creates an empty loop that resolves names with `resolver`, on at most
    /// [`MAX_RESOLVER_THREADS`](crate::MAX_RESOLVER_THREADS) helper threads.
    pub fn with_resolver(resolver: impl Resolve) -> io::Result<Self> {
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

    /// Returns a handle that wakes this loop from another thread.
    pub fn waker(&self) -> Waker {
        Waker(self.poller.clone())
    }

    /// Starts a client for `config` now. Its first outputs are performed on the next turn.
    /// Many connections with one configuration can share it as an `Arc<Config>`.
    ///
    /// With [`Config::reconnect`], when its connection is lost it connects again as the
    /// policy says, and its events say so ([`Event::Disconnected`], [`Event::Reconnecting`],
    /// [`Event::Reconnected`]). The id stays the same across connections; [`Event::Closed`]
    /// ends it.
    pub fn connect(&mut self, config: impl Into<Arc<Config>>) -> ConnId {
        let conn = Conn::new(Client::new(config, Instant::now()));
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

    /// Queues `data` on connection `id` (Kamaelia's `inbox`); refused with the data handed
    /// back when the send queue is full or the connection is shutting down.
    pub fn send(&mut self, id: ConnId, data: Bytes) -> Result<(), InvalidInput> {
        // The hot path of small messages: one lookup, and no system call for the clock: the
        // loop's, read when it last woke, is no later than now.
        let Some(conn) = conn_in(&mut self.slots, id) else {
            let phase = tcpclient_core::Phase::Closed;
            return Err(InvalidInput::SendAfterShutdown { data, phase });
        };
        conn.client.send(self.now, data)?;
        flag_dirty(conn, &mut self.dirty, id.index);
        Ok(())
    }

    /// Queues a copy of `data` on connection `id`: the path for small messages, copied
    /// straight into the connection's coalescing buffer with no [`Bytes`] per message
    /// ([`Client::send_slice`](tcpclient_core::Client::send_slice)). Refused as
    /// [`send`](Self::send) refuses, the bytes handed back as a copy.
    pub fn send_slice(&mut self, id: ConnId, data: &[u8]) -> Result<(), InvalidInput> {
        let Some(conn) = conn_in(&mut self.slots, id) else {
            return self.send(id, Bytes::copy_from_slice(data));
        };
        conn.client.send_slice(self.now, data)?;
        flag_dirty(conn, &mut self.dirty, id.index);
        Ok(())
    }

    /// Switches connection `id` to TLS (Kamaelia's `makessl`).
    pub fn start_tls(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::StartTls)
    }

    /// Shuts connection `id` down gracefully (Kamaelia's `producerFinished`).
    pub fn finish(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::Finish)
    }

    /// Closes connection `id` now (Kamaelia's `shutdownMicroprocess`).
    pub fn abort(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::Abort)
    }

    /// Makes any of the application's requests of connection `id`, as a value: those with
    /// no method here too (a reconnecting client's preamble, reconnect on demand,
    /// acknowledgements; see [`Client`]). Refused, as the client would refuse it, once the
    /// connection has closed.
    pub fn request(&mut self, id: ConnId, request: Request) -> Result<(), InvalidInput> {
        let phase = tcpclient_core::Phase::Closed;
        let Some(conn) = self.conn_mut(id) else {
            return Err(match request {
                Request::Send(data) => InvalidInput::SendAfterShutdown { data, phase },
                other => InvalidInput::Unexpected {
                    input: other.name(),
                    phase,
                },
            });
        };
        request.apply(&mut conn.client, Instant::now())?;
        self.mark_dirty(id.index);
        Ok(())
    }

    /// Tells connection `id`'s client that the application is done with `n` more bytes of
    /// the `Data` it was given ([`Client::consumed`]). Past its
    /// [`Config::receive_window`] of unconsumed bytes a connection stops reading the socket,
    /// so the server is held back by TCP instead of filling memory; this is how reading
    /// resumes. (With `receive_window: None` there is nothing to report.) Consuming data of
    /// a connection that has closed since is fine and does nothing.
    pub fn consumed(&mut self, id: ConnId, n: usize) -> Result<(), InvalidInput> {
        let Some(conn) = self.conn_mut(id) else {
            return Ok(());
        };
        let was_full = conn.client.receive_window_full();
        conn.client.consumed(n)?;
        if was_full && !conn.client.receive_window_full() {
            self.mark_dirty(id.index);
        }
        Ok(())
    }

    /// Returns the client of a connection that has not closed yet.
    pub fn client(&self, id: ConnId) -> Option<&Client> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.conn.as_ref())
            .flatten()
            .map(|conn| &conn.client)
    }

    /// Returns the number of connections that have not closed yet.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Returns true when every connection has closed.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Returns the next application event, with the connection it belongs to.
    pub fn poll_event(&mut self) -> Option<(ConnId, Event)> {
        self.ready.pop_front()
    }

    /// Returns a connection whose bytes written (the core's
    /// [`Client::bytes_written`]) grew since it was last reported, with the new total.
    ///
    /// For a program that accounts for its sends elsewhere, as the [`Runtime`](crate::Runtime)'s
    /// handles do: it learns of progress from here, not by asking every connection. A
    /// connection that closes reports its final numbers in its close report instead.
    pub fn poll_progress(&mut self) -> Option<(ConnId, u64)> {
        while let Some(id) = self.progress.pop_front() {
            if let Some(conn) = self.conn_mut(id) {
                conn.progress_queued = false;
                return Some((id, conn.client.bytes_written()));
            }
        }
        None
    }

    /// Performs what the clients asked for, waits for readiness, a deadline, a wake-up or
    /// `timeout` (whichever comes first), and feeds back what happened.
    ///
    /// A turn that wrote something while acting on earlier requests, or that has events
    /// ready, does not block: it polls without waiting and returns, so that a producer
    /// waiting for room sees it at once. A turn whose requests produced events returns
    /// without polling at all (the application comes back for them), though never two
    /// turns in a row.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.now = Instant::now();
        self.collect_resolutions();
        // Work done before waiting (requests made since the last turn) may have produced
        // events or written bytes a producer is waiting on: then do not block.
        let progressed = self.flush_dirty();
        // Events wait for the application, which comes back for them at once: the wait of
        // the poller (five system calls with `polling`'s epoll backend) can wait for the
        // next turn. Never two turns in a row, so that an application that has events on
        // every turn still hears from its sockets on every other one.
        let skip = !self.ready.is_empty() && !self.skipped_wait;
        self.skipped_wait = skip;
        if !skip {
            self.wait_and_feed(progressed, timeout)?;
        }
        self.fire_timers();
        self.collect_resolutions();
        self.flush_dirty();
        Ok(())
    }

    /// Waits for readiness (not at all after progress or with events ready; at most until
    /// `timeout` or the next deadline otherwise) and feeds what the poller reports.
    fn wait_and_feed(&mut self, progressed: bool, timeout: Option<Duration>) -> io::Result<()> {
        let mut wait = if progressed || !self.ready.is_empty() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
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
    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        conn_in(&mut self.slots, id)
    }

    #[inline]
    fn mark_dirty(&mut self, index: u32) {
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
        let written_before = conn.client.bytes_written();
        let (mut closed, mut wrote) = (false, false);
        loop {
            while let Some(output) = conn.client.poll_output() {
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
        if conn.client.bytes_written() != written_before && !conn.progress_queued {
            conn.progress_queued = true;
            self.progress.push_back(id);
        }
        let deadline = conn.client.poll_timeout();
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

/// The poller key of connection `index`'s socket: even, so that odd keys can stand for
/// connect attempts.
fn connection_key(index: u32) -> usize {
    index as usize * 2
}

/// Puts connection `index` on the list of those to flush, once.
#[inline]
fn flag_dirty(conn: &mut Conn, dirty: &mut Vec<u32>, index: u32) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(index);
    }
}

/// The open connection `id` names, if it is still the one in its slot. (A function of the
/// slots alone, so that a caller can hold it and still touch the loop's other fields.)
#[inline]
fn conn_in(slots: &mut [Slot], id: ConnId) -> Option<&mut Conn> {
    let slot = slots.get_mut(id.index as usize)?;
    if slot.generation != id.generation {
        return None;
    }
    slot.conn.as_mut()
}

impl Drop for EventLoop {
    /// Takes every socket out of the poller before it is closed, as `Poller::add` requires.
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.as_mut() {
                conn.close(&self.poller, false);
            }
        }
    }
}
