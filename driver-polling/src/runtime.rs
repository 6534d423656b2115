//! The event loop on its own thread, and [`Connection`] handles shaped like Kamaelia's boxes.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{
    Client, CloseReport, Config, Destination, Event, InvalidInput, Leave, Request,
};
use tcpclient_driver::{Delivery, HandleState, Resolve, SystemResolver};

use crate::reactor::{ConnId, Hold, Reactor, Waker};

/// Runs the event loop on a thread of its own; other threads talk to their connections
/// through [`Connection`] handles.
///
/// Each connection's client is shared by the loop and the connection's handles, behind one
/// lock: a handle's request is made of the client on the caller's thread and answered at
/// once (a full send queue is refused there and then, with the data handed back), and the
/// loop is only told to look at the connection.
///
/// Dropping the runtime aborts the connections still open and joins the thread. Should the
/// loop thread ever end on its own (an I/O error from the poller, or a panic in code it runs,
/// such as a certificate verifier), every open connection gets a close report with
/// [`Error::DriverStopped`](tcpclient_core::Error::DriverStopped), every producer waiting for
/// room wakes with a refusal, and [`connect`](Self::connect) fails from then on.
///
/// ```
/// use tcpclient_core::{Bytes, Config, Event};
/// use tcpclient_polling::Runtime;
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let port = listener.local_addr()?.port();
/// # std::thread::spawn(move || {
/// #     let (mut conn, _) = listener.accept().unwrap();
/// #     std::io::copy(&mut conn.try_clone().unwrap(), &mut conn).unwrap();
/// # });
///
/// let runtime = Runtime::spawn()?;
/// let conn = runtime.connect(("127.0.0.1", port), Config::new())?;
/// conn.send(Bytes::from_static(b"hello"))?;
/// conn.finish()?;
/// let mut echo = Vec::new();
/// while let Some(event) = conn.recv() {
///     match event {
///         Event::Data(data) => echo.extend_from_slice(&data),
///         Event::Closed(report) => {
///             assert!(report.is_clean());
///             break;
///         }
///         _ => {}
///     }
/// }
/// assert_eq!(echo, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    link: Link,
    /// Why the loop thread ended, once it has.
    stopped: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// A handle on one connection of a [`Runtime`], usable from any thread: the receiving half,
/// which can make every request too. [`sender`](Self::sender) splits off sending halves for
/// other threads.
///
/// The methods are Kamaelia's inboxes: [`send`](Self::send) (`inbox`),
/// [`start_tls`](Self::start_tls) (`makessl`), [`finish`](Self::finish)
/// (`producerFinished`), [`abort`](Self::abort) (`shutdownMicroprocess`); [`recv`](Self::recv)
/// is the outboxes. Sending is bounded by [`Config::send_limit`]; received data is bounded
/// by [`Config::receive_window`]: `Data` counts as consumed once [`recv`](Self::recv) hands
/// it out, and a connection whose handle holds a window's worth not yet taken stops reading
/// the socket until `recv` catches up.
///
/// Dropping the last handle of a connection (this one and every [`Sender`] made from it)
/// ends the connection, as dropping a `TcpStream` does: it is aborted, unless
/// [`finish`](Self::finish) was called, in which case what was sent is still delivered
/// (within the drain timeout). Dropping this handle alone discards what arrives from then
/// on; senders keep working.
pub struct Connection {
    sender: Sender,
}

/// The sending half of a [`Connection`]: cheap to clone, usable from any thread, so that a
/// producer thread can send while another thread receives. Its requests are the
/// connection's, answered at once.
#[derive(Clone)]
pub struct Sender {
    owner: Arc<Owner>,
}

/// The connection is over and its last event was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// Held by every handle of one connection; the last one to go ends it as the handles' rules
/// say.
struct Owner {
    shared: Arc<Shared>,
}

/// The way to the loop thread: its commands, and its wake-up.
#[derive(Clone)]
struct Link {
    commands: mpsc::Sender<Command>,
    waker: Waker,
}

/// What the loop thread and a connection's handles share.
struct Shared {
    state: Mutex<State>,
    /// Producers waiting for room in the send queue.
    room: Condvar,
    /// The receiver waiting for an event.
    arrived: Condvar,
    link: Link,
}

struct State {
    client: Client,
    handles: HandleState,
    /// Events for the application, in order, `Data` included. Bounded by the client: it
    /// stops reading at its receive window.
    events: VecDeque<Event>,
    /// The loop's name for the connection, once it has taken it in.
    id: Option<ConnId>,
    /// A command to look at the connection is on its way to the loop: requests made before
    /// the loop takes it need no other.
    looked_for: bool,
    /// The instant of the first request since the loop last looked (see `State::now`).
    clock: Instant,
    /// Producers waiting on `room`.
    writers: usize,
    /// The receiver waits on `arrived`.
    reader: bool,
}

enum Command {
    /// A new connection, to take in.
    Connect(Arc<Shared>),
    /// Requests were made of the connection's client: perform what it asks for now.
    Look(Arc<Shared>),
    Stop,
}

impl Runtime {
    /// Starts the loop thread, resolving names with the system's resolver.
    pub fn spawn() -> io::Result<Self> {
        Self::with_resolver(SystemResolver)
    }

    /// Starts the loop thread, resolving names with `resolver` (as
    /// [`EventLoop::with_resolver`](crate::EventLoop::with_resolver) does).
    pub fn with_resolver(resolver: impl Resolve) -> io::Result<Self> {
        let reactor = Reactor::new(resolver)?;
        let (commands, rx) = mpsc::channel();
        let link = Link {
            commands,
            waker: reactor.waker(),
        };
        let stopped = Arc::new(Mutex::new(None));
        let loop_thread = LoopThread {
            reactor,
            commands: rx,
            stopped: stopped.clone(),
            connections: HashMap::new(),
            stopping: false,
        };
        let thread = std::thread::Builder::new()
            .name("tcpclient-loop".into())
            .spawn(move || loop_thread.run())?;
        Ok(Self {
            link,
            stopped,
            thread: Some(thread),
        })
    }

    /// Starts a client to `destination` for `config` and returns its handle. Many
    /// connections, to one server or many, can share one configuration as an `Arc<Config>`. With [`Config::reconnect`], one
    /// handle serves every connection; sends made while it waits to reconnect go out on
    /// the next connection.
    pub fn connect(
        &self,
        destination: impl Into<Destination>,
        config: impl Into<Arc<Config>>,
    ) -> io::Result<Connection> {
        let config: Arc<Config> = config.into();
        let now = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                client: Client::new(destination, config, now),
                clock: now,
                handles: HandleState::new(),
                events: VecDeque::new(),
                id: None,
                looked_for: false,
                writers: 0,
                reader: false,
            }),
            room: Condvar::new(),
            arrived: Condvar::new(),
            link: self.link.clone(),
        });
        {
            // Checked and enqueued under one lock: a loop thread that dies either takes
            // this connection, or this call sees that it died.
            let stopped = lock(&self.stopped);
            if let Some(reason) = &*stopped {
                let message = format!("the event loop has stopped: {reason}");
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, message));
            }
            let command = Command::Connect(shared.clone());
            self.link.commands.send(command).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the event loop has stopped")
            })?;
        }
        // The command is queued: a failed wake-up only delays it to the loop's next turn.
        let _ = self.link.waker.wake();
        Ok(Connection {
            sender: Sender {
                owner: Arc::new(Owner { shared }),
            },
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.link.commands.send(Command::Stop);
        let _ = self.link.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Connection {
    /// Returns a sending half for another thread.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Waits for the next event, data included, in order (Kamaelia's outboxes); `None`
    /// once the connection is closed and every event was taken (or the runtime is gone).
    /// `Data` counts as consumed once handed out.
    #[doc(alias = "outbox")]
    pub fn recv(&self) -> Option<Event> {
        self.take(None).ok().flatten()
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with `Ok(None)`; `Err` means
    /// the connection is over and every event was taken.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Event>, Disconnected> {
        self.take(Some(timeout))
    }

    /// Waits for the end and returns the close report; `None` if the runtime went away
    /// without one. Events not taken by then are discarded, data included (it counts as
    /// consumed, so that the connection, not waiting for a reader, can finish).
    pub fn closed(&self) -> Option<Box<CloseReport>> {
        loop {
            if let Event::Closed(report) = self.recv()? {
                return Some(report);
            }
        }
    }

    fn take(&self, timeout: Option<Duration>) -> Result<Option<Event>, Disconnected> {
        let shared = self.shared();
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut state = shared.state();
        loop {
            if let Some(event) = state.events.pop_front() {
                if state.taken(&event) {
                    shared.look(&mut state);
                }
                return Ok(Some(event));
            }
            if state.handles.is_over() {
                return Err(Disconnected);
            }
            state.reader = true;
            state = match (timeout, deadline) {
                (None, _) => wait(&shared.arrived, state),
                (Some(_), Some(deadline)) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        state.reader = false;
                        return Ok(None);
                    };
                    wait_timeout(&shared.arrived, state, left)
                }
                // Beyond the clock's reach: as good as no timeout.
                (Some(_), None) => wait(&shared.arrived, state),
            };
            state.reader = false;
        }
    }

    /// Queues `data`; see [`Sender::send`].
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.sender.send(data)
    }

    /// Queues a copy of `data`; see [`Sender::send_slice`].
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        self.sender.send_slice(data)
    }

    /// Queues `data`, waiting for room; see [`Sender::send_all`].
    pub fn send_all(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.sender.send_all(data)
    }

    /// Switches to TLS; see [`Sender::start_tls`].
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) -> Result<(), InvalidInput> {
        self.sender.start_tls()
    }

    /// Shuts down gracefully; see [`Sender::finish`].
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) -> Result<(), InvalidInput> {
        self.sender.finish()
    }

    /// Closes now; see [`Sender::abort`].
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) -> Result<(), InvalidInput> {
        self.sender.abort()
    }

    /// Queues the current connection's preamble; see [`Sender::send_preamble`].
    pub fn send_preamble(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.sender.send_preamble(data)
    }

    /// The current connection's preamble is done; see [`Sender::preamble_done`].
    pub fn preamble_done(&self) -> Result<(), InvalidInput> {
        self.sender.preamble_done()
    }

    /// Drops the current connection and makes the next; see [`Sender::reconnect`].
    pub fn reconnect(&self, leave: Leave) -> Result<(), InvalidInput> {
        self.sender.reconnect(leave)
    }

    /// The application's protocol acknowledged `n` more bytes; see
    /// [`Sender::acknowledged`].
    pub fn acknowledged(&self, n: usize) -> Result<(), InvalidInput> {
        self.sender.acknowledged(n)
    }

    /// Makes any request as a value; see [`Sender::request`].
    pub fn request(&self, request: Request) -> Result<(), InvalidInput> {
        self.sender.request(request)
    }

    /// Bytes accepted and not yet written; see [`Sender::bytes_queued`].
    pub fn bytes_queued(&self) -> u64 {
        self.sender.bytes_queued()
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.sender.owner.shared
    }
}

impl Drop for Connection {
    /// Nobody receives any more: what waits, and what comes, is consumed, so that a
    /// connection finishing after the drop is not held back by its receive window.
    fn drop(&mut self) {
        let shared = self.shared();
        let mut state = shared.state();
        state.handles.receiver_dropped();
        let mut reopened = false;
        for event in std::mem::take(&mut state.events) {
            reopened |= state.taken(&event);
        }
        if reopened {
            shared.look(&mut state);
        }
    }
}

impl Sender {
    /// Queues `data` to send (Kamaelia's `inbox`). Refused at once, with the data handed
    /// back, when the send queue is full ([`InvalidInput::QueueFull`]) or after
    /// [`finish`](Self::finish) or [`abort`](Self::abort).
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.request(Request::Send(data))
    }

    /// Queues a copy of `data`, refused as [`send`](Self::send) refuses: small messages are
    /// copied straight into the client's coalescing buffer, with no [`Bytes`] each.
    #[doc(alias = "inbox")]
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        let shared = self.shared();
        let mut state = shared.state();
        let now = state.now();
        let State {
            client, handles, ..
        } = &mut *state;
        handles.send_slice(client, data, |client, data| client.send_slice(now, data))?;
        shared.look(&mut state);
        Ok(())
    }

    /// Like [`send`](Self::send), but waits for room instead of refusing a full queue.
    pub fn send_all(&self, data: Bytes) -> Result<(), InvalidInput> {
        let shared = self.shared();
        let mut data = data;
        let mut state = shared.state();
        loop {
            match state.request(Request::Send(data)) {
                Ok(()) => {
                    shared.look(&mut state);
                    return Ok(());
                }
                Err(InvalidInput::QueueFull { data: back, .. }) if !state.handles.is_over() => {
                    data = back;
                    state.writers += 1;
                    state = wait(&shared.room, state);
                    state.writers -= 1;
                }
                Err(refusal) => return Err(refusal),
            }
        }
    }

    /// Switches to TLS (STARTTLS; Kamaelia's `makessl`); [`Event::TlsEstablished`] follows.
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) -> Result<(), InvalidInput> {
        self.request(Request::StartTls)
    }

    /// Graceful shutdown (Kamaelia's `producerFinished`): everything sent is delivered,
    /// then the connection closes.
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) -> Result<(), InvalidInput> {
        self.request(Request::Finish)
    }

    /// Closes now (Kamaelia's `shutdownMicroprocess`); the close report counts what was
    /// not delivered.
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) -> Result<(), InvalidInput> {
        self.request(Request::Abort)
    }

    /// Queues `data` as the current connection's preamble, ahead of the sends waiting for
    /// it (a reconnecting client with a
    /// [`Preamble::Dialogue`](tcpclient_core::Preamble::Dialogue)). See
    /// [`Client::send_preamble`].
    pub fn send_preamble(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.request(Request::SendPreamble(data))
    }

    /// The current connection's preamble is done: the sends waiting for it go out. See
    /// [`Client::preamble_done`].
    pub fn preamble_done(&self) -> Result<(), InvalidInput> {
        self.request(Request::PreambleDone)
    }

    /// Drops the current connection and makes the next one after the backoff (a
    /// reconnecting client). See [`Client::reconnect`].
    pub fn reconnect(&self, leave: Leave) -> Result<(), InvalidInput> {
        self.request(Request::Reconnect(leave))
    }

    /// The application's protocol acknowledged `n` more bytes (a reconnecting client that
    /// replays what is unacknowledged). See [`Client::acknowledged`].
    pub fn acknowledged(&self, n: usize) -> Result<(), InvalidInput> {
        self.request(Request::Acknowledged(n))
    }

    /// Makes any of the application's requests as a value ([`Request`]): what the methods
    /// above do, for code that passes requests through one place. The same as
    /// `EventLoop::request` and the tokio driver's handles'.
    pub fn request(&self, request: Request) -> Result<(), InvalidInput> {
        let shared = self.shared();
        let ends = matches!(request, Request::Finish | Request::Abort);
        let mut state = shared.state();
        let answer = state.request(request);
        if answer.is_ok() {
            shared.look(&mut state);
        }
        if ends {
            // A producer waiting for room has its answer now: a refusal.
            state.wake_writers(shared);
        }
        answer
    }

    /// Bytes accepted and not yet written: what a producer may wait on.
    pub fn bytes_queued(&self) -> u64 {
        self.shared().state().client.bytes_queued()
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.shared
    }
}

impl Drop for Owner {
    /// The last handle went: the connection ends as the handles' rules say.
    fn drop(&mut self) {
        let mut state = self.shared.state();
        if let Some(request) = state.handles.dropped()
            && state.request(request).is_ok()
        {
            self.shared.look(&mut state);
        }
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Has the loop look at the connection: one command until it does, however many
    /// requests come meanwhile.
    fn look(self: &Arc<Self>, state: &mut State) {
        if state.looked_for || state.handles.is_over() {
            return;
        }
        state.looked_for = true;
        if self.link.commands.send(Command::Look(self.clone())).is_ok() {
            // Queued: a failed wake-up only delays it to the loop's next turn.
            let _ = self.link.waker.wake();
        }
    }

    /// An event for the application: queued for the receiver, or consumed at once when
    /// nobody receives any more. Returns whether that let the client read again.
    fn deliver(&self, event: Event) -> bool {
        let mut state = self.state();
        // Any event can mean room for writers: a reconnect, bytes handed back, the close.
        state.wake_writers(self);
        let clock = state.clock;
        let State {
            client, handles, ..
        } = &mut *state;
        match handles.deliver(client, &event, |client, request| {
            request.apply(client, clock)
        }) {
            Delivery::Consumed { reads_again } => reads_again,
            Delivery::Queue => {
                state.events.push_back(event);
                if state.reader {
                    self.arrived.notify_one();
                }
                false
            }
        }
    }

    /// The loop thread ended before the client could close: the handles get a close report
    /// saying why, and nothing more.
    fn driver_stopped(&self, reason: &str) {
        let mut state = self.state();
        let over = state.handles.is_over();
        // Before the report is handed over: the client never closed, and must not be asked
        // for anything more.
        state.handles.driver_stopped();
        if !over {
            let client = &state.client;
            let report = CloseReport::driver_stopped(
                client.bytes_accepted(),
                client.bytes_written(),
                client.bytes_received(),
                reason.to_owned(),
            );
            let closed = Event::Closed(Box::new(report));
            let State {
                client, handles, ..
            } = &mut *state;
            let delivery = handles.deliver(client, &closed, |client, request| {
                request.apply(client, Instant::now())
            });
            if delivery == Delivery::Queue {
                state.events.push_back(closed);
            }
        }
        state.wake_writers(self);
        self.arrived.notify_all();
    }
}

impl State {
    /// Makes `request` of the client, as the handles' rules allow.
    fn request(&mut self, request: Request) -> Result<(), InvalidInput> {
        let now = self.now();
        let State {
            client, handles, ..
        } = self;
        handles.request(client, request, |client, request| {
            request.apply(client, now)
        })
    }

    /// The application took `event`: data counts as consumed. Returns whether that let the
    /// client read again.
    fn taken(&mut self, event: &Event) -> bool {
        let State {
            client,
            handles,
            clock,
            ..
        } = self;
        // Consuming needs no clock: the last one read will do.
        handles.taken(client, event, |client, request| {
            request.apply(client, *clock)
        })
    }

    /// The instant for a request: read once until the loop looks at the connection, and
    /// reused meanwhile. (A clock read is a third of a small send's cost; the requests
    /// made before the loop looks reach the socket together at its next drain, which the
    /// instant of the first one leads by no more than the loop takes to look.)
    fn now(&mut self) -> Instant {
        if !self.looked_for {
            self.clock = Instant::now();
        }
        self.clock
    }

    fn wake_writers(&self, shared: &Shared) {
        if self.writers > 0 {
            shared.room.notify_all();
        }
    }
}

/// The client as the loop takes it, for one step: under the connection's lock.
struct Locked<'a>(MutexGuard<'a, State>);

impl Deref for Locked<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.0.client
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.0.client
    }
}

impl Hold for Arc<Shared> {
    type Guard<'a> = Locked<'a>;

    fn lock(&mut self) -> Locked<'_> {
        Locked(self.state())
    }
}

/// The loop thread's side: the loop, and the connections it has taken in.
struct LoopThread {
    reactor: Reactor<Arc<Shared>>,
    commands: Receiver<Command>,
    stopped: Arc<Mutex<Option<String>>>,
    connections: HashMap<ConnId, Arc<Shared>>,
    stopping: bool,
}

impl LoopThread {
    /// Serves until the runtime is dropped. If serving ends any other way, no connection is
    /// left without its close report and no producer is left waiting.
    fn run(mut self) {
        let served = catch_unwind(AssertUnwindSafe(|| self.serve()));
        let reason = match served {
            Ok(Ok(())) => return,
            Ok(Err(error)) => format!("its event loop failed: {error}"),
            Err(panic) => format!("its event loop panicked: {}", panic_message(&*panic)),
        };
        self.stop_every_connection(&reason);
    }

    fn serve(&mut self) -> io::Result<()> {
        loop {
            self.take_commands();
            if self.stopping && self.reactor.len() == 0 {
                return Ok(());
            }
            self.reactor.turn(None)?;
            self.dispatch();
        }
    }

    fn take_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Connect(shared) => {
                    let id = self.reactor.add(shared.clone());
                    shared.state().id = Some(id);
                    self.connections.insert(id, shared);
                }
                Command::Look(shared) => {
                    let id = {
                        let mut state = shared.state();
                        state.looked_for = false;
                        state.id
                    };
                    if let Some(id) = id {
                        self.reactor.look_at(id);
                    }
                }
                Command::Stop => {
                    self.stopping = true;
                    for (&id, shared) in &self.connections {
                        // Refused only by a connection already closing: nothing to do.
                        let _ = shared.state().request(Request::Abort);
                        self.reactor.look_at(id);
                    }
                }
            }
        }
    }

    /// Hands each event to its connection's handles, and wakes the producers of
    /// connections that wrote.
    fn dispatch(&mut self) {
        while let Some((id, event)) = self.reactor.poll_event() {
            let Some(shared) = self.connections.get(&id) else {
                continue;
            };
            let closed = matches!(event, Event::Closed(_));
            if shared.deliver(event) {
                self.reactor.look_at(id);
            }
            if closed {
                self.connections.remove(&id);
            }
        }
    }

    /// After the loop died: every connection still open (or still on its way in) gets a
    /// close report saying why, every producer is woken, and no new connection can be made.
    fn stop_every_connection(&mut self, reason: &str) {
        let mut stopped = lock(&self.stopped);
        *stopped = Some(reason.to_owned());
        // Connections asked for but not yet taken: under this lock, no more come.
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Connect(shared) = command {
                shared.driver_stopped(reason);
            }
        }
        for shared in self.connections.values() {
            shared.driver_stopped(reason);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait<'a>(condvar: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    condvar.wait(guard).unwrap_or_else(|e| e.into_inner())
}

fn wait_timeout<'a>(
    condvar: &Condvar,
    guard: MutexGuard<'a, State>,
    timeout: Duration,
) -> MutexGuard<'a, State> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(e) => e.into_inner().0,
    }
}

/// The message a panic carried, if it was text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}
