//! Name resolution off the loop: a [`Resolve`] implementation run on a bounded pool of
//! helper threads, answers handed back through a channel.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use polling::Poller;
use tcpclient_core::Family;

use crate::event_loop::ConnId;

/// Most lookups running at once. A burst of connections to host names waits in a queue
/// instead of starting a thread each (which a slow resolver turns into thousands).
pub const MAX_RESOLVER_THREADS: usize = 4;

/// Turns a host name into addresses: what an [`EventLoop`](crate::EventLoop) asks when a
/// client needs a name resolved.
///
/// The loop asks for each address family on its own (the `AAAA` and the `A` lookup, RFC 8305
/// section 3), so that the client can start on whichever answers first. Lookups run on the
/// loop's helper threads (at most [`MAX_RESOLVER_THREADS`] at a time), so an implementation
/// may block. The default is [`SystemResolver`]; tests and programs with their own name
/// service plug theirs in with [`EventLoop::with_resolver`](crate::EventLoop::with_resolver).
///
/// ```
/// use std::net::SocketAddr;
/// use tcpclient_core::Family;
/// use tcpclient_polling::{EventLoop, Resolve};
///
/// /// Every name is the local host, over both families.
/// struct Local;
///
/// impl Resolve for Local {
///     fn resolve(&self, _host: &str, port: u16, family: Family) -> std::io::Result<Vec<SocketAddr>> {
///         let ip = match family {
///             Family::V6 => "::1".parse().unwrap(),
///             Family::V4 => "127.0.0.1".parse().unwrap(),
///         };
///         Ok(vec![SocketAddr::new(ip, port)])
///     }
/// }
///
/// let event_loop = EventLoop::with_resolver(Local)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Resolve: Send + Sync + 'static {
    /// Returns the addresses of `host` in `family`, each with `port`. A name with no
    /// address of that family may answer an empty list or an error of kind
    /// [`io::ErrorKind::NotFound`].
    fn resolve(&self, host: &str, port: u16, family: Family) -> io::Result<Vec<SocketAddr>>;
}

/// Answers every name from a fixed table, one list per family, ports as given: for tests,
/// and for programs that resolve names their own way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedResolver {
    /// The IPv6 addresses (the AAAA answer).
    pub v6: Vec<SocketAddr>,
    /// The IPv4 addresses (the A answer).
    pub v4: Vec<SocketAddr>,
}

impl Resolve for FixedResolver {
    fn resolve(&self, _host: &str, _port: u16, family: Family) -> io::Result<Vec<SocketAddr>> {
        Ok(match family {
            Family::V6 => self.v6.clone(),
            Family::V4 => self.v4.clone(),
        })
    }
}

/// The system's resolver (`getaddrinfo`), asked once per address family.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16, family: Family) -> io::Result<Vec<SocketAddr>> {
        let hints = dns_lookup::AddrInfoHints {
            socktype: dns_lookup::SockType::Stream.into(),
            address: match family {
                Family::V4 => libc::AF_INET,
                Family::V6 => libc::AF_INET6,
            },
            ..dns_lookup::AddrInfoHints::default()
        };
        let service = port.to_string();
        let found = dns_lookup::getaddrinfo(Some(host), Some(&service), Some(hints)).map_err(
            |e| match e.kind() {
                // "no such name", "no address of this family": all say the name is not
                // there, as far as this family goes.
                dns_lookup::LookupErrorKind::Again => io::Error::from(io::ErrorKind::TimedOut),
                _ => io::Error::new(io::ErrorKind::NotFound, io::Error::from(e)),
            },
        )?;
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for info in found {
            let addr = info?.sockaddr;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(addrs)
    }
}

/// An answer for the loop: which connection, which family, and its addresses or why there
/// are none.
pub(crate) type Resolution = (
    ConnId,
    Option<Family>,
    Result<Vec<SocketAddr>, io::ErrorKind>,
);

/// The helper threads, started as lookups need them, up to [`MAX_RESOLVER_THREADS`]; they
/// end when the pool (and so its job queue) is dropped.
pub(crate) struct ResolverPool {
    jobs: Sender<Job>,
    shared: Arc<PoolShared>,
    threads: usize,
    answers: Sender<Resolution>,
    poller: Arc<Poller>,
}

/// What the loop and the helper threads share.
struct PoolShared {
    resolver: Arc<dyn Resolve>,
    queue: Mutex<Receiver<Job>>,
    /// Jobs queued and not yet taken by a thread.
    queued: AtomicUsize,
    /// Threads waiting for a job.
    idle: AtomicUsize,
    /// Connections that went away with lookups still queued, and how many: those lookups
    /// are answered at once, without asking the resolver.
    forgotten: Mutex<HashMap<ConnId, usize>>,
}

struct Job {
    id: ConnId,
    host: String,
    port: u16,
    family: Family,
}

impl ResolverPool {
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        answers: Sender<Resolution>,
        poller: Arc<Poller>,
    ) -> Self {
        let (jobs, queue) = mpsc::channel();
        Self {
            jobs,
            shared: Arc::new(PoolShared {
                resolver,
                queue: Mutex::new(queue),
                queued: AtomicUsize::new(0),
                idle: AtomicUsize::new(0),
                forgotten: Mutex::new(HashMap::new()),
            }),
            threads: 0,
            answers,
            poller,
        }
    }

    /// Queues a lookup of one family; its answer comes through the loop's channel, and
    /// wakes the poller. A thread is started while lookups wait for one, up to the cap.
    pub(crate) fn resolve(&mut self, id: ConnId, host: String, port: u16, family: Family) {
        let waiting = self.shared.queued.fetch_add(1, Ordering::AcqRel) + 1;
        if waiting > self.shared.idle.load(Ordering::Acquire) && self.threads < MAX_RESOLVER_THREADS
        {
            self.start_thread();
        }
        if self.threads == 0 {
            // Not one helper thread could be started: answer at once rather than never.
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            let _ = self
                .answers
                .send((id, Some(family), Err(io::ErrorKind::OutOfMemory)));
            let _ = self.poller.notify();
            return;
        }
        let _ = self.jobs.send(Job {
            id,
            host,
            port,
            family,
        });
    }

    /// Connection `id` went away with `lookups` of its lookups not yet answered: answer
    /// them without asking the resolver.
    pub(crate) fn forget(&self, id: ConnId, lookups: usize) {
        if lookups > 0 {
            lock(&self.shared.forgotten).insert(id, lookups);
        }
    }

    fn start_thread(&mut self) {
        let worker = Worker {
            shared: self.shared.clone(),
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
    shared: Arc<PoolShared>,
    answers: Sender<Resolution>,
    poller: Arc<Poller>,
}

impl Worker {
    fn run(self) {
        loop {
            self.shared.idle.fetch_add(1, Ordering::AcqRel);
            let job = lock(&self.shared.queue).recv();
            self.shared.idle.fetch_sub(1, Ordering::AcqRel);
            // The queue's sender went with the loop: nothing more to do.
            let Ok(job) = job else { return };
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            let answer = if self.forgotten(job.id) {
                Err(io::ErrorKind::Other)
            } else {
                self.lookup(&job)
            };
            if self
                .answers
                .send((job.id, Some(job.family), answer))
                .is_err()
            {
                return;
            }
            let _ = self.poller.notify();
        }
    }

    /// Asks the resolver; a resolver that panics fails its lookup, not the pool.
    fn lookup(&self, job: &Job) -> Result<Vec<SocketAddr>, io::ErrorKind> {
        let resolver = &self.shared.resolver;
        let resolved = catch_unwind(AssertUnwindSafe(|| {
            resolver.resolve(&job.host, job.port, job.family)
        }));
        match resolved {
            Ok(Ok(addrs)) => Ok(addrs),
            Ok(Err(e)) => Err(e.kind()),
            Err(_) => Err(io::ErrorKind::Other),
        }
    }

    /// Whether `id`'s connection is gone; counts the lookup off if so.
    fn forgotten(&self, id: ConnId) -> bool {
        let mut forgotten = lock(&self.shared.forgotten);
        let Some(left) = forgotten.get_mut(&id) else {
            return false;
        };
        *left = left.saturating_sub(1);
        if *left == 0 {
            forgotten.remove(&id);
        }
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
