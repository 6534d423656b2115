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
use tcpclient_driver::Resolve;

use crate::reactor::ConnId;

/// Most lookups running at once. A burst of connections to host names waits in a queue
/// instead of starting a thread each (which a slow resolver turns into thousands).
pub const MAX_RESOLVER_THREADS: usize = 4;

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
