//! Name resolution off the loop: a [`Resolve`] implementation run on a bounded pool of
//! helper threads, answers handed back through a channel.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use polling::Poller;

use crate::event_loop::ConnId;

/// Most lookups running at once. A burst of connections to host names waits in a queue
/// instead of starting a thread each (which a slow resolver turns into thousands).
pub const MAX_RESOLVER_THREADS: usize = 4;

/// Turns a host name into addresses: what an [`EventLoop`](crate::EventLoop) asks when a
/// client needs a name resolved.
///
/// Lookups run on the loop's helper threads (at most [`MAX_RESOLVER_THREADS`] at a time),
/// so an implementation may block. The default is [`SystemResolver`]; tests and programs
/// with their own name service plug theirs in with
/// [`EventLoop::with_resolver`](crate::EventLoop::with_resolver).
///
/// ```
/// use std::net::SocketAddr;
/// use tcpclient_polling::{EventLoop, Resolve};
///
/// /// Every name is the local echo service.
/// struct Fixed(SocketAddr);
///
/// impl Resolve for Fixed {
///     fn resolve(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
///         Ok(vec![SocketAddr::new(self.0.ip(), port)])
///     }
/// }
///
/// let event_loop = EventLoop::with_resolver(Fixed("127.0.0.1:0".parse()?))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// Returns the addresses of `host`, each with `port`. A name that does not exist is an
    /// error of kind [`io::ErrorKind::NotFound`].
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (`getaddrinfo`), as [`ToSocketAddrs`] calls it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        // getaddrinfo failures (no such name, no address) come back uncategorised; they all
        // mean the name could not be found.
        (host, port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => e,
                _ => io::Error::new(io::ErrorKind::NotFound, e),
            })
    }
}

/// An answer for the loop: which connection, and its addresses or why there are none.
pub(crate) type Resolution = (ConnId, Result<Vec<SocketAddr>, io::ErrorKind>);

/// The helper threads, started as lookups need them, up to [`MAX_RESOLVER_THREADS`]; they
/// end when the pool (and so its job queue) is dropped.
pub(crate) struct ResolverPool {
    resolver: Arc<dyn Resolve>,
    jobs: Sender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    threads: usize,
    idle: Arc<AtomicUsize>,
    answers: Sender<Resolution>,
    poller: Arc<Poller>,
}

struct Job {
    id: ConnId,
    host: String,
    port: u16,
}

impl ResolverPool {
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        answers: Sender<Resolution>,
        poller: Arc<Poller>,
    ) -> Self {
        let (jobs, queue) = mpsc::channel();
        Self {
            resolver,
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            threads: 0,
            idle: Arc::new(AtomicUsize::new(0)),
            answers,
            poller,
        }
    }

    /// Queues a lookup; its answer comes through the loop's channel, and wakes the poller.
    pub(crate) fn resolve(&mut self, id: ConnId, host: String, port: u16) {
        if self.idle.load(Ordering::Acquire) == 0 && self.threads < MAX_RESOLVER_THREADS {
            self.start_thread();
        }
        if self.threads == 0 {
            // Not one helper thread could be started: answer at once rather than never.
            let _ = self.answers.send((id, Err(io::ErrorKind::OutOfMemory)));
            let _ = self.poller.notify();
            return;
        }
        let _ = self.jobs.send(Job { id, host, port });
    }

    fn start_thread(&mut self) {
        let worker = Worker {
            resolver: self.resolver.clone(),
            queue: self.queue.clone(),
            idle: self.idle.clone(),
            answers: self.answers.clone(),
            poller: self.poller.clone(),
        };
        let started = std::thread::Builder::new()
            .name("tcpclient-resolve".into())
            .spawn(move || worker.run());
        if started.is_ok() {
            self.threads += 1;
        }
    }
}

struct Worker {
    resolver: Arc<dyn Resolve>,
    queue: Arc<Mutex<Receiver<Job>>>,
    idle: Arc<AtomicUsize>,
    answers: Sender<Resolution>,
    poller: Arc<Poller>,
}

impl Worker {
    fn run(self) {
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let job = self
                .queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .recv();
            self.idle.fetch_sub(1, Ordering::AcqRel);
            // The queue's sender went with the loop: nothing more to do.
            let Ok(job) = job else { return };
            // A resolver that panics fails its lookup, not the pool.
            let resolved = catch_unwind(AssertUnwindSafe(|| {
                self.resolver.resolve(&job.host, job.port)
            }));
            let answer = match resolved {
                Ok(Ok(addrs)) => Ok(addrs),
                Ok(Err(e)) => Err(e.kind()),
                Err(_) => Err(io::ErrorKind::Other),
            };
            if self.answers.send((job.id, answer)).is_err() {
                return;
            }
            let _ = self.poller.notify();
        }
    }
}
