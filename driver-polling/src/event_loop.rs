//! The event loop: many clients, one `polling::Poller`, one thread.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{Client, Config, Destination, Event, InvalidInput, Leave, Request};
use tcpclient_driver::{Resolve, SystemResolver, refused_as_closed};

use crate::reactor::{ConnId, Reactor, Waker, conn_in, flag_dirty};

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
/// let id = event_loop.connect(("127.0.0.1", port), Config::new());
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
    reactor: Reactor<Client>,
}

impl EventLoop {
    /// Creates an empty loop that resolves names with the system's resolver.
    pub fn new() -> io::Result<Self> {
        Self::with_resolver(SystemResolver)
    }

    /// Creates an empty loop that resolves names with `resolver`, on at most
    /// [`MAX_RESOLVER_THREADS`](crate::MAX_RESOLVER_THREADS) helper threads.
    pub fn with_resolver(resolver: impl Resolve) -> io::Result<Self> {
        Ok(Self {
            reactor: Reactor::new(resolver)?,
        })
    }

    /// Returns a handle that wakes this loop from another thread.
    pub fn waker(&self) -> Waker {
        self.reactor.waker()
    }

    /// Starts a client to `destination` for `config` now. Its first outputs are performed on
    /// the next turn. Many connections, to one server or many, can share one configuration
    /// as an `Arc<Config>`.
    ///
    /// With [`Config::reconnect`], when its connection is lost it connects again as the
    /// policy says, and its events say so ([`Event::Disconnected`], [`Event::Reconnecting`],
    /// [`Event::Reconnected`]). The id stays the same across connections; [`Event::Closed`]
    /// ends it.
    pub fn connect(
        &mut self,
        destination: impl Into<Destination>,
        config: impl Into<Arc<Config>>,
    ) -> ConnId {
        self.reactor
            .add(Client::new(destination, config, Instant::now()))
    }

    /// Queues `data` on connection `id` (Kamaelia's `inbox`); refused with the data handed
    /// back when the send queue is full or the connection is shutting down.
    #[inline]
    pub fn send(&mut self, id: ConnId, data: Bytes) -> Result<(), InvalidInput> {
        // The hot path of small messages: one lookup, and no system call for the clock: the
        // loop's, read when it last woke, is no later than now.
        let reactor = &mut self.reactor;
        let Some(conn) = conn_in(&mut reactor.slots, id) else {
            return Err(refused_as_closed(Request::Send(data)));
        };
        conn.client.send(reactor.now, data)?;
        flag_dirty(conn, &mut reactor.dirty, id.index);
        Ok(())
    }

    /// Queues a copy of `data` on connection `id`: the path for small messages, copied
    /// straight into the connection's coalescing buffer with no [`Bytes`] per message
    /// ([`Client::send_slice`](tcpclient_core::Client::send_slice)). Refused as
    /// [`send`](Self::send) refuses, the bytes handed back as a copy.
    ///
    /// Inlined into the caller's loop: a call per 64-byte message, its prologue and its
    /// result passed through memory, was a fifth of the work of one.
    #[inline]
    pub fn send_slice(&mut self, id: ConnId, data: &[u8]) -> Result<(), InvalidInput> {
        let reactor = &mut self.reactor;
        let Some(conn) = conn_in(&mut reactor.slots, id) else {
            return self.send(id, Bytes::copy_from_slice(data));
        };
        conn.client.send_slice(reactor.now, data)?;
        flag_dirty(conn, &mut reactor.dirty, id.index);
        Ok(())
    }

    /// Switches connection `id` to TLS (Kamaelia's `makessl`).
    #[doc(alias = "makessl")]
    pub fn start_tls(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::StartTls)
    }

    /// Shuts connection `id` down gracefully (Kamaelia's `producerFinished`).
    #[doc(alias = "producerFinished")]
    pub fn finish(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::Finish)
    }

    /// Closes connection `id` now (Kamaelia's `shutdownMicroprocess`).
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::Abort)
    }

    /// Queues `data` as connection `id`'s current preamble, ahead of the sends waiting for
    /// it (a reconnecting client with a
    /// [`Preamble::Dialogue`](tcpclient_core::Preamble::Dialogue)). See
    /// [`Client::send_preamble`].
    pub fn send_preamble(&mut self, id: ConnId, data: Bytes) -> Result<(), InvalidInput> {
        self.request(id, Request::SendPreamble(data))
    }

    /// Connection `id`'s current preamble is done: the sends waiting for it go out. See
    /// [`Client::preamble_done`].
    pub fn preamble_done(&mut self, id: ConnId) -> Result<(), InvalidInput> {
        self.request(id, Request::PreambleDone)
    }

    /// Drops connection `id`'s current connection and makes the next one after the backoff
    /// (a reconnecting client). See [`Client::reconnect`].
    pub fn reconnect(&mut self, id: ConnId, leave: Leave) -> Result<(), InvalidInput> {
        self.request(id, Request::Reconnect(leave))
    }

    /// The application's protocol acknowledged `n` more bytes of connection `id` (a
    /// reconnecting client that replays what is unacknowledged). See
    /// [`Client::acknowledged`].
    pub fn acknowledged(&mut self, id: ConnId, n: usize) -> Result<(), InvalidInput> {
        self.request(id, Request::Acknowledged(n))
    }

    /// Makes any of the application's requests of connection `id`, as a value, as the
    /// methods above do: for code that passes requests through one place. Refused, as the
    /// client would refuse it, once the connection has closed.
    pub fn request(&mut self, id: ConnId, request: Request) -> Result<(), InvalidInput> {
        let Some(conn) = self.reactor.conn_mut(id) else {
            return Err(refused_as_closed(request));
        };
        request.apply(&mut conn.client, Instant::now())?;
        self.reactor.mark_dirty(id.index);
        Ok(())
    }

    /// Tells connection `id`'s client that the application is done with `n` more bytes of
    /// the `Data` it was given ([`Client::consumed`]). Past its
    /// [`Config::receive_window`] of unconsumed bytes a connection stops reading the socket,
    /// so the server is held back by TCP instead of filling memory; this is how reading
    /// resumes. (With `receive_window: None` there is nothing to report.) Consuming data of
    /// a connection that has closed since is fine and does nothing.
    pub fn consumed(&mut self, id: ConnId, n: usize) -> Result<(), InvalidInput> {
        let Some(conn) = self.reactor.conn_mut(id) else {
            return Ok(());
        };
        let was_full = conn.client.receive_window_full();
        conn.client.consumed(n)?;
        if was_full && !conn.client.receive_window_full() {
            self.reactor.mark_dirty(id.index);
        }
        Ok(())
    }

    /// Returns the client of a connection that has not closed yet.
    pub fn client(&self, id: ConnId) -> Option<&Client> {
        self.reactor.client(id)
    }

    /// Returns the number of connections that have not closed yet.
    pub fn len(&self) -> usize {
        self.reactor.len()
    }

    /// Returns true when every connection has closed.
    pub fn is_empty(&self) -> bool {
        self.reactor.len() == 0
    }

    /// Returns the next application event, with the connection it belongs to.
    ///
    /// Events wait in the loop until taken, however many turns pass: a program that never
    /// takes them lets them pile up (a [`Event::SendReady`] after each refused send, for
    /// one), so take them after each [`turn`](Self::turn).
    pub fn poll_event(&mut self) -> Option<(ConnId, Event)> {
        self.reactor.poll_event()
    }

    /// Returns a connection whose bytes written (the core's
    /// [`Client::bytes_written`]) grew since it was last reported, with the new total.
    ///
    /// For a program that accounts for its sends elsewhere: it learns of progress from
    /// here, not by asking every connection. A connection that closes reports its final
    /// numbers in its close report instead.
    pub fn poll_progress(&mut self) -> Option<(ConnId, u64)> {
        self.reactor.poll_progress()
    }

    /// Performs what the clients asked for, waits for readiness, a deadline, a wake-up or
    /// `timeout` (whichever comes first), and feeds back what happened.
    ///
    /// A turn that wrote something while acting on earlier requests, or whose requests
    /// produced events, does not block: it polls without waiting and returns, so that a
    /// producer waiting for room sees it at once. A turn whose requests produced events
    /// returns without polling at all (the application comes back for them), though never
    /// two turns in a row. Events left unread after an earlier turn stay queued for
    /// [`poll_event`](Self::poll_event) and do not keep a turn from waiting.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.reactor.turn(timeout)
    }
}
