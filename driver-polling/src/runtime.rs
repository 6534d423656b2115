//! An [`EventLoop`] on its own thread, and [`Connection`] handles shaped like Kamaelia's boxes.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tcpclient_core::{
    Client, CloseReport, Config, Event, InvalidInput, Phase, Request, SendAdmission,
};

use crate::event_loop::{ConnId, EventLoop, Waker};

/// What a [`Connection`] hands the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// An event from the connection: data (`outbox`), TLS up (`sslready`), the close report
    /// (`signal`), ...
    Event(Event),
    /// A request the connection refused, for example a `send` that raced with the peer
    /// closing. A refused send hands its data back here.
    Refused(InvalidInput),
}

/// Runs an [`EventLoop`] on a thread of its own; other threads talk to their connections
/// through [`Connection`] handles.
///
/// Dropping the runtime aborts the connections still open and joins the thread. Should the
/// loop thread ever end on its own (an I/O error from the poller, or a panic in code it runs,
/// such as a certificate verifier), every open connection gets a close report with
/// [`Error::DriverStopped`](tcpclient_core::Error::DriverStopped), every producer waiting for
/// room wakes with a refusal, and [`connect`](Self::connect) fails from then on.
///
/// ```
/// use tcpclient_core::{Bytes, Config, Event};
/// use tcpclient_polling::{Notification, Runtime};
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let port = listener.local_addr()?.port();
/// # std::thread::spawn(move || {
/// #     let (mut conn, _) = listener.accept().unwrap();
/// #     std::io::copy(&mut conn.try_clone().unwrap(), &mut conn).unwrap();
/// # });
///
/// let runtime = Runtime::spawn()?;
/// let conn = runtime.connect(Config::new("127.0.0.1", port))?;
/// conn.send(Bytes::from_static(b"hello"))?;
/// conn.finish();
/// let mut echo = Vec::new();
/// while let Some(Notification::Event(event)) = conn.recv() {
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
    commands: Sender<Command>,
    waker: Waker,
    next_key: AtomicU64,
    registry: Arc<Registry>,
    thread: Option<JoinHandle<()>>,
}

/// A handle on one connection of a [`Runtime`], usable from any thread.
///
/// The methods are Kamaelia's inboxes: [`send`](Self::send) (`inbox`),
/// [`start_tls`](Self::start_tls) (`makessl`), [`finish`](Self::finish)
/// (`producerFinished`), [`abort`](Self::abort) (`shutdownMicroprocess`); [`recv`](Self::recv)
/// is the outboxes. Sending is bounded by [`Config::send_limit`]; received data is bounded
/// by [`Config::receive_window`]: `Data` counts as consumed once [`recv`](Self::recv) hands
/// it out, and a connection whose handle holds a window's worth not yet taken stops reading
/// the socket until `recv` catches up.
///
/// Dropping the last handle of a connection (this one and every [`ConnectionSender`] made
/// from it) ends the connection, as dropping a `TcpStream` does: it is aborted, unless
/// [`finish`](Self::finish) was called, in which case what was sent is still delivered
/// (within the drain timeout) and what arrives is discarded. Dropping this handle alone
/// discards what arrives from then on; senders keep working.
pub struct Connection {
    sender: ConnectionSender,
    notifications: Receiver<Notification>,
    /// The close report was taken: nothing more will come but refusals already on the way.
    closed: std::cell::Cell<bool>,
}

/// The sending half of a [`Connection`]: cheap to clone, usable from any thread, so that a
/// producer thread can send while another thread receives.
#[derive(Clone)]
pub struct ConnectionSender {
    key: u64,
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

/// Held by every handle of one connection; the last one to go aborts it.
struct Owner {
    key: u64,
    commands: Sender<Command>,
    waker: Waker,
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.commands.send(Command::Dropped(self.key)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// Whether the loop thread still runs, and the connections it would have to close if not.
#[derive(Default)]
struct Registry {
    state: Mutex<RegistryState>,
}

#[derive(Default)]
struct RegistryState {
    /// Why the loop thread ended, once it has.
    stopped: Option<String>,
    connections: Vec<Weak<Shared>>,
}

/// What the loop thread and a handle share about one connection.
struct Shared {
    /// The core's rule, applied here on the producer's thread to the handles' own count.
    admission: SendAdmission,
    send: Mutex<SendState>,
    room: Condvar,
    /// `Data` bytes the receiver took out that the loop has not told the client of yet.
    consumed: AtomicU64,
    /// The client's receive window is full: the receiver's next take wakes the loop.
    window_full: AtomicBool,
}

#[derive(Debug, Default)]
struct SendState {
    /// Bytes sent through the handles and taken by the client (or on their way to it).
    accepted: u64,
    /// Bytes sent through the handles, ever: those the loop has not taken yet are the ones
    /// on their way to the client.
    handed: u64,
    /// Bytes sent through the handle and not yet written: on their way to the client, or
    /// queued in it (as the client counts them, replays of a session's lost bytes included).
    unwritten: u64,
    /// `finish` or `abort` was called, or the connection closed.
    closed_to_sends: Option<Phase>,
    /// Small sends copied together on the producers' threads: the loop takes them all at
    /// once ([`Command::SendBatch`]). A batch is opened by the copied send that finds it
    /// empty, which also sends the one command that will take it.
    batch: BytesMut,
    /// Batches closed by a `Bytes` send that came after them, oldest first, each still
    /// waiting for its command: the loop takes a closed batch before the open one.
    closed_batches: VecDeque<Bytes>,
}

enum Command {
    Connect {
        key: u64,
        config: Arc<Config>,
        shared: Arc<Shared>,
        notifications: Sender<Notification>,
    },
    Send(u64, Bytes),
    /// Take the connection's batch of copied sends (sent when the batch was empty, so one
    /// command serves every send copied in before the loop takes it).
    SendBatch(u64),
    StartTls(u64),
    /// A request with no command of its own (a reconnecting client's).
    Request(u64, Request),
    Finish(u64),
    Abort(u64),
    /// The receiver took data while the client's receive window was full.
    Consumed(u64),
    /// The `Connection` (the receiving half) was dropped: nobody takes data any more.
    ReceiverGone(u64),
    /// The last handle was dropped: abort the connection (unless it is finishing), forget it
    /// once it has closed.
    Dropped(u64),
    Stop,
}

impl Runtime {
    /// Starts the loop thread.
    pub fn spawn() -> io::Result<Self> {
        Self::spawn_on(EventLoop::new()?)
    }

    /// Starts the loop thread on a loop made beforehand, for example with
    /// [`EventLoop::with_resolver`].
    pub fn spawn_on(event_loop: EventLoop) -> io::Result<Self> {
        let waker = event_loop.waker();
        let (commands, rx) = mpsc::channel();
        let registry = Arc::new(Registry::default());
        let loop_thread = LoopThread::new(event_loop, rx, registry.clone());
        let thread = std::thread::Builder::new()
            .name("tcpclient-loop".into())
            .spawn(move || loop_thread.run())?;
        Ok(Self {
            commands,
            waker,
            next_key: AtomicU64::new(0),
            registry,
            thread: Some(thread),
        })
    }

    /// Starts a client for `config` and returns its handle. Many connections with one
    /// configuration can share it as an `Arc<Config>`. With [`Config::reconnect`], one
    /// handle serves every connection; sends made while it waits to reconnect go out on
    /// the next connection.
    pub fn connect(&self, config: impl Into<Arc<Config>>) -> io::Result<Connection> {
        let config: Arc<Config> = config.into();
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            admission: SendAdmission::new(&config),
            send: Mutex::new(SendState::default()),
            room: Condvar::new(),
            consumed: AtomicU64::new(0),
            window_full: AtomicBool::new(false),
        });
        let (tx, notifications) = mpsc::channel();
        let command = Command::Connect {
            key,
            config,
            shared: shared.clone(),
            notifications: tx,
        };
        {
            // Registered and enqueued under one lock: a loop thread that dies either sees
            // this connection, or this call sees that it died.
            let mut registry = self.registry.lock();
            if let Some(reason) = &registry.stopped {
                let message = format!("the event loop has stopped: {reason}");
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, message));
            }
            registry.connections.retain(|c| c.strong_count() > 0);
            registry.connections.push(Arc::downgrade(&shared));
            self.commands.send(command).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the event loop has stopped")
            })?;
        }
        // The command is queued: a failed wake-up only delays it to the loop's next turn.
        let _ = self.waker.wake();
        let owner = Arc::new(Owner {
            key,
            commands: self.commands.clone(),
            waker: self.waker.clone(),
        });
        Ok(Connection {
            sender: ConnectionSender { key, shared, owner },
            notifications,
            closed: std::cell::Cell::new(false),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.sender.command(Command::ReceiverGone(self.sender.key));
    }
}

impl Connection {
    /// Returns a sending half for another thread.
    pub fn sender(&self) -> ConnectionSender {
        self.sender.clone()
    }

    /// Queues `data` to send; see [`ConnectionSender::send`].
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.sender.send(data)
    }

    /// Queues a copy of `data`; see [`ConnectionSender::send_slice`].
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        self.sender.send_slice(data)
    }

    /// Queues `data`, waiting for room; see [`ConnectionSender::send_blocking`].
    pub fn send_blocking(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.sender.send_blocking(data)
    }

    /// Switches to TLS (STARTTLS); see [`ConnectionSender::start_tls`].
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) {
        self.sender.start_tls();
    }

    /// Shuts down gracefully; see [`ConnectionSender::finish`].
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) {
        self.sender.finish();
    }

    /// Closes now; see [`ConnectionSender::abort`].
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) {
        self.sender.abort();
    }

    /// A request as a value; see [`ConnectionSender::request`].
    pub fn request(&self, request: Request) {
        self.sender.request(request);
    }

    /// Waits for the next notification; `None` once the connection is closed and every
    /// notification was taken (or the runtime is gone).
    #[doc(alias = "outbox")]
    pub fn recv(&self) -> Option<Notification> {
        let notification = if self.closed.get() {
            self.notifications.try_recv().ok()?
        } else {
            self.notifications.recv().ok()?
        };
        self.taken(&notification);
        Some(notification)
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout` with `Ok(None)`; `Err` means
    /// the connection is over and every notification was taken.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Notification>, Disconnected> {
        if self.closed.get() {
            return self.recv().map(Some).ok_or(Disconnected);
        }
        match self.notifications.recv_timeout(timeout) {
            Ok(notification) => {
                self.taken(&notification);
                Ok(Some(notification))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Disconnected),
        }
    }

    fn taken(&self, notification: &Notification) {
        if matches!(notification, Notification::Event(Event::Closed(_))) {
            self.closed.set(true);
        }
        self.sender.taken(notification);
    }
}

impl ConnectionSender {
    /// Queues `data` to send. Refused at once, with the data handed back, when the send
    /// queue is full ([`InvalidInput::QueueFull`]) or after [`finish`](Self::finish) or
    /// [`abort`](Self::abort).
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        let state = self.shared.lock();
        self.accept(state, data)
    }

    /// Like [`send`](Self::send), but waits for room instead of refusing a full queue.
    pub fn send_blocking(&self, data: Bytes) -> Result<(), InvalidInput> {
        let mut state = self.shared.lock();
        let mut data = data;
        loop {
            if state.closed_to_sends.is_some() {
                break;
            }
            match self.shared.admission.admit(state.unwritten, data) {
                Ok(admitted) => {
                    data = admitted;
                    break;
                }
                Err(refusal) => {
                    // Handed back: keep it and wait for room.
                    let Some(refused) = refusal.into_data() else {
                        return Ok(());
                    };
                    data = refused;
                    state = self
                        .shared
                        .room
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        self.accept(state, data)
    }

    fn accept(
        &self,
        mut state: MutexGuard<'_, SendState>,
        data: Bytes,
    ) -> Result<(), InvalidInput> {
        if let Some(phase) = state.closed_to_sends {
            return Err(InvalidInput::SendAfterShutdown { data, phase });
        }
        let data = self.shared.admission.admit(state.unwritten, data)?;
        state.unwritten += data.len() as u64;
        state.accepted += data.len() as u64;
        state.handed += data.len() as u64;
        // The open batch's command is already ahead of this send's; what is copied after
        // this send goes into a batch of its own.
        if !state.batch.is_empty() {
            let batch = state.batch.split().freeze();
            state.closed_batches.push_back(batch);
        }
        // Enqueued under the lock: a `finish` on another thread either sees this send
        // counted, or this send sees the finish; never a send after the finish it crossed.
        self.command(Command::Send(self.key, data));
        drop(state);
        Ok(())
    }

    /// Queues a copy of `data`, refused as [`send`](Self::send) refuses. Small messages
    /// sent this way are copied together on the caller's thread and cross to the loop as
    /// one buffer, instead of a [`Bytes`] and a command each.
    #[doc(alias = "inbox")]
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        let mut state = self.shared.lock();
        if state.closed_to_sends.is_some()
            || !self.shared.admission.fits(state.unwritten, data.len())
        {
            // The refusal, made where every refusal is.
            return self.accept(state, Bytes::copy_from_slice(data));
        }
        state.unwritten += data.len() as u64;
        state.accepted += data.len() as u64;
        state.handed += data.len() as u64;
        if state.batch.is_empty() {
            self.command(Command::SendBatch(self.key));
        }
        state.batch.extend_from_slice(data);
        Ok(())
    }

    /// Bytes sent through this connection's handles and not yet written to the socket.
    pub fn unwritten(&self) -> u64 {
        self.shared.lock().unwritten
    }

    /// Switches to TLS (STARTTLS); [`Event::TlsEstablished`] follows.
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) {
        self.command(Command::StartTls(self.key));
    }

    /// Makes a request with no method here (a reconnecting client's preamble, a reconnect
    /// on demand, the application's acknowledgements: see [`Client`]); a refusal arrives as
    /// [`Notification::Refused`].
    pub fn request(&self, request: Request) {
        self.command(Command::Request(self.key, request));
    }

    /// Graceful shutdown: everything sent is delivered, then the connection closes.
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) {
        let _state = self.shared.close_to_sends(Phase::Draining);
        self.command(Command::Finish(self.key));
    }

    /// Closes now; the close report counts what was not delivered.
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) {
        let _state = self.shared.close_to_sends(Phase::Closed);
        self.command(Command::Abort(self.key));
    }

    /// Counts received data leaving the channel as consumed; wakes the loop if the client
    /// waits for that to read again.
    fn taken(&self, notification: &Notification) {
        let Notification::Event(Event::Data(data)) = notification else {
            return;
        };
        self.shared
            .consumed
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        if self.shared.window_full.swap(false, Ordering::SeqCst) {
            self.command(Command::Consumed(self.key));
        }
    }

    fn command(&self, command: Command) {
        if self.owner.commands.send(command).is_ok() {
            let _ = self.owner.waker.wake();
        }
    }
}

/// The connection is over and its last notification was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SendState> {
        self.send.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses sends from now on; returns the lock, so the caller can enqueue its command
    /// before any send that comes after.
    fn close_to_sends(&self, phase: Phase) -> MutexGuard<'_, SendState> {
        let mut state = self.lock();
        state.closed_to_sends.get_or_insert(phase);
        self.room.notify_all();
        state
    }

    /// A send the client (or the loop on its behalf, as it crossed the close) refused: it
    /// was never taken.
    fn refused(&self, n: u64) {
        let mut state = self.lock();
        state.accepted = state.accepted.saturating_sub(n);
    }

    /// Counts the unwritten bytes again from the client's own books: what the loop has not
    /// taken of the `handed` bytes (it took `taken`), and what the client has `queued`. (Not
    /// kept by adding and subtracting: a reconnecting session queues again the bytes a lost
    /// connection wrote and never got acknowledged.) Wakes the producers waiting for room.
    fn recount(&self, taken: u64, queued: u64) {
        let mut state = self.lock();
        let before = state.unwritten;
        state.unwritten = state.handed.saturating_sub(taken) + queued;
        let room_again = !self.admission.has_room_again(before)
            && self.admission.has_room_again(state.unwritten);
        if room_again || state.unwritten == 0 {
            self.room.notify_all();
        }
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The loop thread's side: the loop and what it knows of each handle.
struct LoopThread {
    event_loop: EventLoop,
    commands: Receiver<Command>,
    registry: Arc<Registry>,
    handles: HashMap<u64, Handle>,
    keys: HashMap<ConnId, u64>,
    stopping: bool,
}

struct Handle {
    id: ConnId,
    shared: Arc<Shared>,
    notifications: Sender<Notification>,
    /// Bytes the client has written, as of the last turn.
    written: u64,
    /// Bytes of sends the loop has taken from the handles' commands.
    taken: u64,
    /// Bytes delivered as `Data`.
    received: u64,
    /// The connection has closed; requests still in flight are refused back to the handle.
    closed: bool,
    /// Every handle was dropped; forget the entry once the connection has closed.
    forgotten: bool,
    /// The receiving `Connection` was dropped: data from now on is consumed as it comes.
    receiver_gone: bool,
}

impl LoopThread {
    fn new(event_loop: EventLoop, commands: Receiver<Command>, registry: Arc<Registry>) -> Self {
        Self {
            event_loop,
            commands,
            registry,
            handles: HashMap::new(),
            keys: HashMap::new(),
            stopping: false,
        }
    }

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
            if self.stopping && self.event_loop.is_empty() {
                return Ok(());
            }
            self.event_loop.turn(None)?;
            self.dispatch();
        }
    }

    /// After the loop died: every connection still open (or still on its way in) gets a
    /// close report saying why, every sender is closed and woken, and no new connection can
    /// be made.
    fn stop_every_connection(&mut self, reason: &str) {
        let mut registry = self.registry.lock();
        registry.stopped = Some(reason.to_owned());
        // Connections asked for but not yet taken: under the registry lock, no more come.
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Connect {
                key,
                shared,
                notifications,
                ..
            } = command
            {
                self.handles
                    .insert(key, Handle::new(ConnId::CLOSED, shared, notifications));
            }
        }
        for handle in self.handles.values_mut().filter(|h| !h.closed) {
            handle.closed = true;
            let state = handle.shared.close_to_sends(Phase::Closed);
            let accepted = state.accepted;
            drop(state);
            let report = CloseReport::driver_stopped(
                accepted,
                handle.written,
                handle.received,
                reason.to_owned(),
            );
            handle.shared.recount(u64::MAX, 0);
            let closed = Event::Closed(Box::new(report));
            let _ = handle.notifications.send(Notification::Event(closed));
        }
        for shared in registry.connections.drain(..).filter_map(|c| c.upgrade()) {
            drop(shared.close_to_sends(Phase::Closed));
        }
    }

    fn send(&mut self, key: u64, data: Bytes) {
        let len = data.len() as u64;
        let sent = self.request(key, |l, id| l.send(id, data));
        if let Some(handle) = self.handles.get_mut(&key) {
            handle.taken += len;
            if sent.is_err() {
                handle.shared.refused(len);
            }
            let queued = self
                .event_loop
                .client(handle.id)
                .map_or(0, Client::bytes_queued);
            handle.shared.recount(handle.taken, queued);
        }
        if let Err(refusal) = sent {
            self.notify(key, Notification::Refused(refusal));
        }
    }

    fn take_commands(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Connect {
                    key,
                    config,
                    shared,
                    notifications,
                } => {
                    let id = self.event_loop.connect(config);
                    self.keys.insert(id, key);
                    self.handles
                        .insert(key, Handle::new(id, shared, notifications));
                }
                Command::Send(key, data) => self.send(key, data),
                Command::SendBatch(key) => {
                    // Commands arrive in order, so this one's batch is the oldest left.
                    let batch = self.handles.get(&key).map(|handle| {
                        let mut state = handle.shared.lock();
                        match state.closed_batches.pop_front() {
                            Some(closed) => closed,
                            None => state.batch.split().freeze(),
                        }
                    });
                    if let Some(batch) = batch {
                        self.send(key, batch);
                    }
                }
                Command::StartTls(key) => self.refusable(key, EventLoop::start_tls),
                Command::Request(key, request) => {
                    let answer =
                        self.request(key, |event_loop, id| event_loop.request(id, request));
                    if let Err(refusal) = answer {
                        self.notify(key, Notification::Refused(refusal));
                    }
                    // An acknowledgement makes room in the window of unacknowledged bytes.
                    if let Some(handle) = self.handles.get(&key) {
                        let queued = self
                            .event_loop
                            .client(handle.id)
                            .map_or(0, Client::bytes_queued);
                        handle.shared.recount(handle.taken, queued);
                    }
                }
                // Finishing or aborting what has already closed is no news to anyone.
                Command::Finish(key) | Command::Abort(key) if self.is_closed(key) => {}
                Command::Finish(key) => self.refusable(key, EventLoop::finish),
                Command::Abort(key) => self.refusable(key, EventLoop::abort),
                Command::Consumed(key) => {
                    if let Some(handle) = self.handles.get(&key) {
                        pass_on_consumption(&mut self.event_loop, handle);
                    }
                }
                Command::ReceiverGone(key) => {
                    let Some(handle) = self.handles.get_mut(&key) else {
                        continue;
                    };
                    handle.receiver_gone = true;
                    // What waited in the channel is gone with the receiver, and what comes
                    // from now on will be dropped: all of it is consumed, so reading goes on
                    // (a sender may still be finishing, and its drain needs the peer's EOF).
                    handle.shared.consumed.store(0, Ordering::SeqCst);
                    handle.shared.window_full.store(false, Ordering::SeqCst);
                    let unconsumed = self
                        .event_loop
                        .client(handle.id)
                        .map_or(0, Client::bytes_unconsumed);
                    let _ = self
                        .event_loop
                        .consumed(handle.id, usize::try_from(unconsumed).unwrap_or(usize::MAX));
                }
                Command::Dropped(key) => {
                    let Some(handle) = self.handles.get_mut(&key) else {
                        continue;
                    };
                    handle.forgotten = true;
                    let finishing = handle.shared.lock().closed_to_sends == Some(Phase::Draining);
                    if handle.closed {
                        self.handles.remove(&key);
                    } else if !finishing {
                        // Nobody can take its data or its report: end it now, as dropping a
                        // `TcpStream` does. (A connection already finishing delivers what it
                        // accepted first, as a closed `TcpStream` still does.) Its close
                        // report comes back through `dispatch`, which then forgets it.
                        let _ = self.event_loop.abort(handle.id);
                    }
                }
                Command::Stop => {
                    self.stopping = true;
                    let ids: Vec<ConnId> = self
                        .handles
                        .values()
                        .filter(|h| !h.closed)
                        .map(|h| h.id)
                        .collect();
                    for id in ids {
                        let _ = self.event_loop.abort(id);
                    }
                }
            }
        }
    }

    fn request(
        &mut self,
        key: u64,
        f: impl FnOnce(&mut EventLoop, ConnId) -> Result<(), InvalidInput>,
    ) -> Result<(), InvalidInput> {
        match self.handles.get(&key) {
            Some(handle) if !handle.closed => f(&mut self.event_loop, handle.id),
            // The request crossed the Closed event: the loop refuses it on the client's behalf.
            _ => f(&mut self.event_loop, ConnId::CLOSED),
        }
    }

    fn is_closed(&self, key: u64) -> bool {
        self.handles.get(&key).is_none_or(|h| h.closed)
    }

    fn refusable(&mut self, key: u64, f: fn(&mut EventLoop, ConnId) -> Result<(), InvalidInput>) {
        if let Err(refusal) = self.request(key, f) {
            self.notify(key, Notification::Refused(refusal));
        }
    }

    fn notify(&self, key: u64, notification: Notification) {
        if let Some(handle) = self.handles.get(&key) {
            let _ = handle.notifications.send(notification);
        }
    }

    /// Hands each event to its connection's handle and settles the send accounts.
    fn dispatch(&mut self) {
        while let Some((id, event)) = self.event_loop.poll_event() {
            let Some(&key) = self.keys.get(&id) else {
                continue;
            };
            let Some(handle) = self.handles.get_mut(&key) else {
                continue;
            };
            match &event {
                // Handed back: these bytes will not be written.
                Event::Undelivered(_) => {
                    let queued = self.event_loop.client(id).map_or(0, Client::bytes_queued);
                    handle.shared.recount(handle.taken, queued);
                }
                Event::Closed(report) => {
                    drop(handle.shared.close_to_sends(Phase::Closed));
                    handle.shared.recount(handle.taken, 0);
                    handle.written = report.bytes_written;
                }
                _ => {}
            }
            let data_len = match &event {
                Event::Data(data) => Some(data.len()),
                _ => None,
            };
            let closed = matches!(event, Event::Closed(_));
            let delivered = handle
                .notifications
                .send(Notification::Event(event))
                .is_ok();
            if let Some(len) = data_len {
                handle.received += len as u64;
                if delivered && !handle.receiver_gone {
                    pass_on_consumption(&mut self.event_loop, handle);
                } else {
                    // Nobody will take it (the receiver is gone, or going): consumed.
                    let _ = self.event_loop.consumed(id, len);
                }
            }
            if closed {
                handle.closed = true;
                self.keys.remove(&id);
                if handle.forgotten {
                    self.handles.remove(&key);
                }
            }
        }
        while let Some((id, written)) = self.event_loop.poll_progress() {
            let Some(handle) = self.keys.get(&id).and_then(|key| self.handles.get_mut(key)) else {
                continue;
            };
            let queued = self.event_loop.client(id).map_or(0, Client::bytes_queued);
            handle.shared.recount(handle.taken, queued);
            handle.written = written;
        }
    }
}

/// Tells the client what the receiver took since the last time, and, while its receive
/// window stays full, has the receiver's next take wake the loop. (The flag is raised before
/// looking for takes once more, so a take either is seen here or sees the flag.)
fn pass_on_consumption(event_loop: &mut EventLoop, handle: &Handle) {
    let shared = &handle.shared;
    loop {
        let taken = shared.consumed.swap(0, Ordering::SeqCst);
        if taken > 0 {
            let _ = event_loop.consumed(handle.id, usize::try_from(taken).unwrap_or(usize::MAX));
        }
        let full = event_loop
            .client(handle.id)
            .is_some_and(Client::receive_window_full);
        if !full {
            shared.window_full.store(false, Ordering::SeqCst);
            return;
        }
        shared.window_full.store(true, Ordering::SeqCst);
        if shared.consumed.load(Ordering::SeqCst) == 0 {
            return;
        }
    }
}

impl Handle {
    fn new(id: ConnId, shared: Arc<Shared>, notifications: Sender<Notification>) -> Self {
        Self {
            id,
            shared,
            notifications,
            written: 0,
            taken: 0,
            received: 0,
            closed: false,
            forgotten: false,
            receiver_gone: false,
        }
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
