//! What the driver task and the application's handles share: the client (behind the
//! observer), the events on their way to the application, and who waits for what.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use tcpclient_core::{Client, Event, Input, InvalidInput, Output, Request};
use tokio::sync::Notify;

use crate::Observer;

/// One connection's shared state. The lock is never held across an `await`.
pub(crate) struct Shared<O> {
    state: Mutex<State<O>>,
    /// Wakes the driver loop: a request may have left outputs to perform.
    pub(crate) wake: Notify,
    /// `Finish` was accepted, from any handle: dropping the connection then is no abort.
    finishing: AtomicBool,
}

pub(crate) struct State<O> {
    pub(crate) client: Client,
    pub(crate) observer: O,
    /// Events for the application, in order, `Data` included. Bounded by the client: it
    /// stops reading at its receive window.
    pub(crate) events: VecDeque<Event>,
    /// A reader waiting for an event.
    reader: Option<Waker>,
    /// Writers waiting for room in the send queue, or for it to drain: the connection's
    /// and any `Sender`'s, each woken.
    writers: Vec<Waker>,
    /// The `Connection` was dropped: nobody reads any more, so what arrives is consumed as
    /// it comes (a connection finishing after the drop still needs the peer's end).
    pub(crate) receiver_gone: bool,
    /// The driver loop has ended (returned, or was dropped with its runtime).
    pub(crate) driver_gone: bool,
    /// The final `Closed` was queued.
    pub(crate) closed: bool,
}

/// The clock every input is stamped with: tokio's, which a simulator may be driving.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<O: Observer> Shared<O> {
    pub(crate) fn new(client: Client, observer: O) -> Self {
        Self {
            state: Mutex::new(State {
                client,
                observer,
                events: VecDeque::new(),
                reader: None,
                writers: Vec::new(),
                receiver_gone: false,
                driver_gone: false,
                closed: false,
            }),
            wake: Notify::new(),
            finishing: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<O>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Finish` was accepted, from any handle.
    pub(crate) fn finishing(&self) -> bool {
        self.finishing.load(Ordering::Acquire)
    }

    /// An application request, now; the driver is woken to act on what it leaves.
    pub(crate) fn request(&self, request: Request) -> Result<(), InvalidInput> {
        let finish = matches!(request, Request::Finish);
        let mut state = self.lock();
        let answer = state.request(request);
        // Under the lock: a drop on another thread sees the finish, or comes before it.
        if finish && answer.is_ok() {
            self.finishing.store(true, Ordering::Release);
        }
        drop(state);
        self.wake.notify_one();
        answer
    }

    /// A report of the driver's, now. A refusal is the observer's to note.
    pub(crate) fn report(&self, input: Input<'_>) {
        let name = input.name();
        let mut state = self.lock();
        if let Err(refusal) = state.input(input) {
            state.observer.refused_report(name, &refusal);
        }
        if name == "Written" {
            state.wake_writers();
        }
    }

    /// The client's next output.
    pub(crate) fn poll_output(&self) -> Option<Output> {
        let mut state = self.lock();
        let State {
            client, observer, ..
        } = &mut *state;
        observer.poll_output(client, now())
    }

    /// Queues an event for the application and wakes whoever waits for one.
    pub(crate) fn deliver(&self, event: Event) {
        let mut state = self.lock();
        if matches!(event, Event::Closed(_)) {
            state.closed = true;
        }
        // Any event can mean room for writers: a reconnect, bytes handed back, SendReady.
        state.wake_writers();
        if state.receiver_gone {
            if let Event::Data(data) = &event {
                state.consume(data.len());
            }
            return;
        }
        state.events.push_back(event);
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }

    /// The driver loop ended: nothing more will come.
    pub(crate) fn driver_gone(&self) {
        let mut state = self.lock();
        state.driver_gone = true;
        state.wake_writers();
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

impl<O: Observer> State<O> {
    pub(crate) fn input(&mut self, input: Input<'_>) -> Result<(), InvalidInput> {
        let State {
            client, observer, ..
        } = self;
        observer.input(client, now(), input)
    }

    pub(crate) fn request(&mut self, request: Request) -> Result<(), InvalidInput> {
        let State {
            client, observer, ..
        } = self;
        observer.request(client, now(), request)
    }

    pub(crate) fn send_slice(&mut self, data: &[u8]) -> Result<(), InvalidInput> {
        let State {
            client, observer, ..
        } = self;
        observer.send_slice(client, now(), data)
    }

    pub(crate) fn wait_to_read(&mut self, waker: &Waker) {
        self.reader = Some(waker.clone());
    }

    pub(crate) fn wait_to_write(&mut self, waker: &Waker) {
        if !self.writers.iter().any(|w| w.will_wake(waker)) {
            self.writers.push(waker.clone());
        }
    }

    fn wake_writers(&mut self) {
        for writer in self.writers.drain(..) {
            writer.wake();
        }
    }

    /// Tells the client `n` delivered bytes were consumed, if it counts them; returns
    /// whether that let it read again.
    pub(crate) fn consume(&mut self, n: usize) -> bool {
        if self.client.config().receive_window.is_none() {
            return false;
        }
        let was_full = self.client.receive_window_full();
        // Never more than was delivered: each `Data` is counted once, as it is taken.
        let _ = self.request(Request::Consumed(n));
        was_full && !self.client.receive_window_full()
    }

    /// Nothing more will come: the final `Closed` is queued, or the driver is gone.
    pub(crate) fn over(&self) -> bool {
        self.closed || self.driver_gone
    }
}
