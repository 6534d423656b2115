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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Instant;

    use bytes::Bytes;
    use tcpclient_core::{AttemptId, CloseReport, Config, Input};

    use super::*;

    /// A client to 127.0.0.1:7, connected, holding `received` unconsumed bytes against a
    /// receive window of `window`.
    fn client(window: Option<usize>, received: &[u8]) -> (Client, Instant) {
        let now = Instant::now();
        let config = Config::new().with_receive_window(window);
        let mut client = Client::new(("127.0.0.1", 7), config, now);
        while client.poll_output().is_some() {}
        let connected = client.handle_input(now, Input::Connected(AttemptId(0)));
        assert_eq!(connected, Ok(()));
        while client.poll_output().is_some() {}
        if !received.is_empty() {
            assert_eq!(client.handle_input(now, Input::Received(received)), Ok(()));
            while client.poll_output().is_some() {}
        }
        (client, now)
    }

    fn closed() -> Event {
        Event::Closed(Box::new(CloseReport::driver_stopped(
            0,
            0,
            0,
            "test".into(),
        )))
    }

    #[test]
    fn dropping_the_handles_aborts_unless_a_finish_was_accepted() {
        let (mut client, now) = client(None, b"");
        let mut handles = HandleState::new();
        assert_eq!(handles.dropped(), Some(Request::Abort));

        let refused = handles.request(&mut client, Request::Finish, |_, _| {
            Err(InvalidInput::NoTlsConfig)
        });
        assert_eq!(refused, Err(InvalidInput::NoTlsConfig));
        assert!(!handles.is_finishing(), "a refused finish is no finish");
        assert_eq!(handles.dropped(), Some(Request::Abort));

        let apply = |client: &mut Client, request: Request| request.apply(client, now);
        assert_eq!(handles.request(&mut client, Request::Finish, apply), Ok(()));
        assert!(handles.is_finishing());
        assert_eq!(handles.dropped(), None);
    }

    #[test]
    fn nothing_is_aborted_once_the_report_was_handed_over() {
        let (mut client, now) = client(None, b"");
        let mut handles = HandleState::new();
        let apply = |client: &mut Client, request: Request| request.apply(client, now);
        assert_eq!(
            handles.deliver(&mut client, &closed(), apply),
            Delivery::Queue
        );
        assert!(handles.is_over());
        assert_eq!(handles.dropped(), None);
    }

    #[test]
    fn a_driver_that_stopped_first_refuses_for_its_client_and_hands_data_back() {
        let (mut client, _) = client(None, b"");
        let mut handles = HandleState::new();
        handles.driver_stopped();
        assert!(handles.is_over());
        let applied = Cell::new(false);

        let send = handles.request(
            &mut client,
            Request::Send(Bytes::from_static(b"ab")),
            |_, _| {
                applied.set(true);
                Ok(())
            },
        );
        let copied = handles.send_slice(&mut client, b"cd", |_, _| {
            applied.set(true);
            Ok(())
        });
        let tls = handles.request(&mut client, Request::StartTls, |_, _| {
            applied.set(true);
            Ok(())
        });

        assert!(
            !applied.get(),
            "nothing is asked of a client nothing drives"
        );
        let phase = Phase::Closed;
        let data = Bytes::from_static(b"ab");
        assert_eq!(send, Err(InvalidInput::SendAfterShutdown { data, phase }));
        let data = Bytes::from_static(b"cd");
        assert_eq!(copied, Err(InvalidInput::SendAfterShutdown { data, phase }));
        let input = "StartTls";
        assert_eq!(tls, Err(InvalidInput::Unexpected { input, phase }));
        assert_eq!(handles.dropped(), None);
    }

    #[test]
    fn a_driver_that_stopped_after_the_close_lets_the_client_answer() {
        let (mut client, now) = client(None, b"");
        let mut handles = HandleState::new();
        let apply = |client: &mut Client, request: Request| request.apply(client, now);
        handles.deliver(&mut client, &closed(), apply);
        handles.driver_stopped();
        let applied = Cell::new(0);

        let _ = handles.request(&mut client, Request::Acknowledged(0), |_, _| {
            applied.set(applied.get() + 1);
            Ok(())
        });
        let _ = handles.send_slice(&mut client, b"x", |_, _| {
            applied.set(applied.get() + 1);
            Ok(())
        });

        assert_eq!(applied.get(), 2);
    }

    #[test]
    fn data_is_consumed_once_taken_and_a_full_window_reopens() {
        let (mut client, now) = client(Some(4), b"hello");
        assert!(client.receive_window_full());
        let handles = HandleState::new();
        let consumed = Cell::new(None);
        let apply = |client: &mut Client, request: Request| {
            consumed.set(Some(request.clone()));
            request.apply(client, now)
        };

        let not_data = handles.taken(&mut client, &Event::SendReady, apply);
        assert!(!not_data);
        assert_eq!(consumed.take(), None);

        let data = Event::Data(Bytes::from_static(b"hello"));
        let apply = |client: &mut Client, request: Request| {
            consumed.set(Some(request.clone()));
            request.apply(client, now)
        };
        assert!(
            handles.taken(&mut client, &data, apply),
            "the window reopened"
        );
        assert_eq!(consumed.take(), Some(Request::Consumed(5)));
        assert!(!client.receive_window_full());
    }

    #[test]
    fn consuming_below_the_window_is_no_news_for_the_driver() {
        let (mut client, now) = client(Some(1024), b"hello");
        let handles = HandleState::new();
        let data = Event::Data(Bytes::from_static(b"hello"));
        let apply = |client: &mut Client, request: Request| request.apply(client, now);
        assert!(
            !handles.taken(&mut client, &data, apply),
            "it was reading already"
        );
        assert_eq!(client.bytes_unconsumed(), 0, "but it was told");
    }

    #[test]
    fn a_client_without_a_window_is_told_nothing() {
        let (mut client, _) = client(None, b"hello");
        let handles = HandleState::new();
        let data = Event::Data(Bytes::from_static(b"hello"));
        let reads_again = handles.taken(&mut client, &data, |_, _| {
            panic!("a client that counts nothing is told nothing")
        });
        assert!(!reads_again);
    }

    #[test]
    fn data_for_a_receiver_that_is_gone_is_consumed_as_it_comes() {
        let (mut client, now) = client(Some(4), b"hello");
        let mut handles = HandleState::new();
        let data = Event::Data(Bytes::from_static(b"hello"));
        let apply = |client: &mut Client, request: Request| request.apply(client, now);
        assert_eq!(handles.deliver(&mut client, &data, apply), Delivery::Queue);
        assert!(client.receive_window_full());

        handles.receiver_dropped();

        let delivery = handles.deliver(&mut client, &data, apply);
        assert_eq!(delivery, Delivery::Consumed { reads_again: true });
        assert!(!client.receive_window_full());
        let other = handles.deliver(&mut client, &Event::SendReady, apply);
        assert_eq!(other, Delivery::Queue, "only data is consumed");
    }
}
