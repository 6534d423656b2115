//! What the driver task and the application's handles share: the client (behind the
//! observer), the events on their way to the application, and who waits for what.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use tcpclient_core::{Client, Event, Input, InvalidInput, Output, Request};
use tcpclient_driver::{Delivery, HandleState};
use tokio::sync::Notify;

use crate::Observer;

/// One connection's shared state. The lock is never held across an `await`.
pub(crate) struct Shared<O> {
    state: Mutex<State<O>>,
    /// Wakes the driver loop: a request may have left outputs to perform.
    pub(crate) wake: Notify,
}

pub(crate) struct State<O> {
    pub(crate) client: Client,
    pub(crate) observer: O,
    /// What the handles did, and the rules that follow.
    pub(crate) handles: HandleState,
    /// Events for the application, in order, `Data` included. Bounded by the client: it
    /// stops reading at its receive window.
    pub(crate) events: VecDeque<Event>,
    /// A reader waiting for an event.
    reader: Option<Waker>,
    /// Writers waiting for room in the send queue, or for it to drain: the connection's
    /// and any `Sender`'s, each woken.
    writers: Vec<Waker>,
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
                handles: HandleState::new(),
                events: VecDeque::new(),
                reader: None,
                writers: Vec::new(),
            }),
            wake: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<O>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An application request, now; the driver is woken to act on what it leaves.
    pub(crate) fn request(&self, request: Request) -> Result<(), InvalidInput> {
        let mut state = self.lock();
        let answer = state.request(request);
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
        // Any event can mean room for writers: a reconnect, bytes handed back, SendReady.
        state.wake_writers();
        let State {
            client,
            observer,
            handles,
            ..
        } = &mut *state;
        let delivery = handles.deliver(client, &event, |client, request| {
            observer.request(client, now(), request)
        });
        if let Delivery::Consumed { reads_again } = delivery {
            if reads_again {
                self.wake.notify_one();
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
        state.handles.driver_stopped();
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

    /// Makes `request` of the client through the observer, as the handles' rules allow.
    pub(crate) fn request(&mut self, request: Request) -> Result<(), InvalidInput> {
        let State {
            client,
            observer,
            handles,
            ..
        } = self;
        handles.request(client, request, |client, request| {
            observer.request(client, now(), request)
        })
    }

    pub(crate) fn send_slice(&mut self, data: &[u8]) -> Result<(), InvalidInput> {
        let State {
            client,
            observer,
            handles,
            ..
        } = self;
        handles.send_slice(client, data, |client, data| {
            observer.send_slice(client, now(), data)
        })
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

    /// The application took `event`: data counts as consumed. Returns whether that let the
    /// client read again.
    pub(crate) fn taken(&mut self, event: &Event) -> bool {
        let State {
            client,
            observer,
            handles,
            ..
        } = self;
        handles.taken(client, event, |client, request| {
            observer.request(client, now(), request)
        })
    }

    /// Nothing more will come: the final `Closed` is queued, or the driver is gone.
    pub(crate) fn over(&self) -> bool {
        self.handles.is_over()
    }
}
