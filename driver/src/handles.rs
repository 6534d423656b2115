//! The rules for the application's handles on one connection, the same in every driver:
//! received data counts as consumed once a handle hands it out, data nobody will take is
//! consumed as it comes, and dropping the handles ends the connection unless it was
//! finishing.

use tcpclient_core::{Client, Event, InvalidInput, Phase, Request};

/// What the application's handles on one connection have done, kept beside its [`Client`]
/// (under the same lock, where handles on other threads share it), and the rules that follow.
///
/// The rules decide and the driver performs: each method says what to ask of the client, or
/// asks it through `apply`, the driver's way to the client (which may record the request, as
/// the simulator's observer does).
///
/// ```
/// use std::time::Instant;
/// use tcpclient_core::{Bytes, Client, Config, Event, Request};
/// use tcpclient_driver::{Delivery, HandleState};
///
/// let now = Instant::now();
/// let mut client = Client::new(("127.0.0.1", 7), Config::new(), now);
/// let mut handles = HandleState::new();
///
/// // An application's request, made the driver's way.
/// handles.request(&mut client, Request::Finish, |client, request| request.apply(client, now))?;
/// // Its receiver is dropped: data that comes from now on is consumed by the driver.
/// handles.receiver_dropped();
/// let late = Event::Data(Bytes::from_static(b"late"));
/// let delivery = handles.deliver(&mut client, &late, |client, request| request.apply(client, now));
/// assert!(matches!(delivery, Delivery::Consumed { .. }));
/// // Finishing: dropping the last handle lets the connection deliver what it accepted.
/// assert_eq!(handles.dropped(), None);
/// # Ok::<(), tcpclient_core::InvalidInput>(())
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HandleState {
    /// `Finish` was accepted: dropping the handles then is no abort.
    finishing: bool,
    /// The receiving handle was dropped: nobody takes data any more.
    receiver_gone: bool,
    /// The close report was handed to the handles: nothing more will come.
    closed: bool,
    /// The driver stopped: nothing more will come.
    driver_gone: bool,
    /// The driver stopped before the client closed: nothing asked of the client would be
    /// performed.
    lost: bool,
}

impl HandleState {
    /// The state of a connection's new handles.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `request` of `client` through `apply`, unless the driver stopped before the
    /// client closed (then it is refused as a closed connection refuses it: nothing would
    /// perform it). A closed client answers for itself. An accepted
    /// `Finish` is remembered, for [`dropped`](Self::dropped).
    pub fn request<C>(
        &mut self,
        client: &mut C,
        request: Request,
        apply: impl FnOnce(&mut C, Request) -> Result<(), InvalidInput>,
    ) -> Result<(), InvalidInput> {
        if self.lost {
            return Err(refused_as_closed(request));
        }
        let finish = matches!(request, Request::Finish);
        apply(client, request)?;
        self.finishing |= finish;
        Ok(())
    }

    /// Queues a copy of `data` through `apply` (the client's
    /// [`send_slice`](Client::send_slice), the driver's way), refused as
    /// [`request`](Self::request) refuses a `Send`.
    pub fn send_slice<C>(
        &mut self,
        client: &mut C,
        data: &[u8],
        apply: impl FnOnce(&mut C, &[u8]) -> Result<(), InvalidInput>,
    ) -> Result<(), InvalidInput> {
        if self.lost {
            let data = bytes::Bytes::copy_from_slice(data);
            return Err(refused_as_closed(Request::Send(data)));
        }
        apply(client, data)
    }

    /// An event on its way to the application: queued for the handles, or, when nobody
    /// will take it (the receiver is gone), consumed at once through `apply`.
    pub fn deliver(
        &mut self,
        client: &mut Client,
        event: &Event,
        apply: impl FnOnce(&mut Client, Request) -> Result<(), InvalidInput>,
    ) -> Delivery {
        if matches!(event, Event::Closed(_)) {
            self.closed = true;
        }
        match event {
            Event::Data(data) if self.receiver_gone => Delivery::Consumed {
                reads_again: consume(client, data.len(), apply),
            },
            _ => Delivery::Queue,
        }
    }

    /// The application took `event` from the queue: data counts as consumed (when the
    /// client counts what is consumed), through `apply`. Returns whether that let the
    /// client read again: then the driver has to look at the connection.
    pub fn taken(
        &self,
        client: &mut Client,
        event: &Event,
        apply: impl FnOnce(&mut Client, Request) -> Result<(), InvalidInput>,
    ) -> bool {
        match event {
            Event::Data(data) => consume(client, data.len(), apply),
            _ => false,
        }
    }

    /// The receiving handle was dropped. What waits in its queue is the driver's to pass to
    /// [`taken`](Self::taken), as if handed out; what comes later [`deliver`](Self::deliver)
    /// consumes. Reading goes on: a connection that is
    /// finishing needs the peer's end.
    pub fn receiver_dropped(&mut self) {
        self.receiver_gone = true;
    }

    /// The last handle was dropped: the request that ends the connection, as dropping a
    /// `TcpStream` does. `Abort`, unless it was finishing (then what it accepted is still
    /// delivered) or is over.
    pub fn dropped(&self) -> Option<Request> {
        (!self.finishing && !self.is_over()).then_some(Request::Abort)
    }

    /// The driver stopped (its loop ended, failed, or its runtime is gone): nothing more
    /// will come.
    pub fn driver_stopped(&mut self) {
        self.lost |= !self.closed;
        self.driver_gone = true;
    }

    /// A `Finish` was accepted.
    pub fn is_finishing(&self) -> bool {
        self.finishing
    }

    /// The receiving handle was dropped.
    pub fn is_receiver_gone(&self) -> bool {
        self.receiver_gone
    }

    /// Nothing more will come: the close report was handed over, or the driver stopped.
    pub fn is_over(&self) -> bool {
        self.closed || self.driver_gone
    }
}

/// Where an event for the application goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Into the handles' queue.
    Queue,
    /// Nowhere: nobody will take it, so it was consumed at once.
    Consumed {
        /// That let the client read again: the driver has to look at the connection.
        reads_again: bool,
    },
}

/// Tells `client`, through `apply`, that `n` delivered bytes were consumed, if it counts
/// them; returns whether that let it read again.
fn consume(
    client: &mut Client,
    n: usize,
    apply: impl FnOnce(&mut Client, Request) -> Result<(), InvalidInput>,
) -> bool {
    if client.config().receive_window.is_none() {
        return false;
    }
    let was_full = client.receive_window_full();
    // Never more than was delivered: each `Data` is counted once, as it is taken or
    // dropped, so a refusal cannot happen and would change nothing.
    let _ = apply(client, Request::Consumed(n));
    was_full && !client.receive_window_full()
}

/// The refusal of a request that nothing would perform: a closed connection's.
pub fn refused_as_closed(request: Request) -> InvalidInput {
    let phase = Phase::Closed;
    match request {
        Request::Send(data) | Request::SendPreamble(data) => {
            InvalidInput::SendAfterShutdown { data, phase }
        }
        other => InvalidInput::Unexpected {
            input: other.name(),
            phase,
        },
    }
}
