#![warn(rust_2018_idioms)]
#![cfg(all(feature = "full", feature = "test-util"))]

//! `Runtime::skip_idle_tick`, `LocalSet::has_scheduled_tasks` and
//! `LocalSet::count_idle_turns`: what a simulator stepping paused runtimes in
//! lock step uses to skip the ones with nothing to do, and that skipping is
//! the same run as stepping.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::oneshot;
use tokio::task::{self, LocalSet};
use tokio::time::{self, Instant};

const TICK: Duration = Duration::from_millis(1);

fn paused() -> Runtime {
    Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn now(rt: &Runtime) -> Instant {
    rt.block_on(async { Instant::now() })
}

#[test]
fn a_runtime_with_nothing_to_do_skips() {
    let rt = paused();
    let start = now(&rt);
    let after = rt.skip_idle_tick(Duration::from_millis(10)).unwrap();
    assert_eq!(after - start, Duration::from_millis(10));
    assert_eq!(now(&rt), after);
}

#[test]
fn a_scheduled_task_is_not_skipped() {
    let rt = paused();
    let start = now(&rt);
    let _task = rt.spawn(async {});
    assert!(rt.skip_idle_tick(TICK).is_none());
    assert_eq!(now(&rt), start, "a tick not skipped leaves the clock alone");
    rt.block_on(task::yield_now());
    assert!(rt.skip_idle_tick(TICK).is_some());
}

#[test]
fn a_timer_due_in_the_tick_is_not_skipped() {
    let rt = paused();
    let _task = rt.spawn(async { time::sleep(Duration::from_millis(5)).await });
    rt.block_on(task::yield_now());
    assert!(rt.skip_idle_tick(Duration::from_millis(4)).is_some());
    assert!(
        rt.skip_idle_tick(TICK).is_none(),
        "the sleep ends in this tick"
    );
}

#[test]
fn a_wake_from_outside_is_seen() {
    let rt = paused();
    let (tx, rx) = oneshot::channel::<()>();
    let _task = rt.spawn(rx);
    rt.block_on(task::yield_now());
    assert!(rt.skip_idle_tick(TICK).is_some());
    tx.send(()).unwrap();
    assert!(rt.skip_idle_tick(TICK).is_none());
}

#[test]
fn local_set_tasks_are_the_set_s() {
    let rt = paused();
    let local = LocalSet::new();
    assert!(!local.has_scheduled_tasks());

    let (tx, rx) = oneshot::channel::<()>();
    let _task = local.spawn_local(rx);
    assert!(local.has_scheduled_tasks());
    rt.block_on(local.run_until(task::yield_now()));
    assert!(!local.has_scheduled_tasks());

    tx.send(()).unwrap();
    assert!(local.has_scheduled_tasks());
}

#[test]
fn a_runtime_polling_for_io_never_skips() {
    let rt = Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    assert!(rt.skip_idle_tick(TICK).is_none());
}

#[test]
fn the_multi_thread_runtime_never_skips() {
    let rt = Builder::new_multi_thread().enable_time().build().unwrap();
    assert!(rt.skip_idle_tick(TICK).is_none());
}

/// Runs tasks whose order depends on the schedulers' fairness, which counts
/// turns (a task woken on the runtime's thread, in the local set and on the
/// runtime, against one scheduled from outside at the same instant), for 600
/// ticks, skipping the idle ones or not, and returns what ran when.
fn run(skip: bool) -> (Vec<(u64, &'static str)>, usize) {
    let rt = paused();
    let local = LocalSet::new();
    let start = now(&rt);
    let log = Arc::new(Mutex::new(Vec::new()));
    let record = move |log: &Arc<Mutex<Vec<(u64, &'static str)>>>, what| {
        let at = (Instant::now() - start).as_millis() as u64;
        log.lock().unwrap().push((at, what));
    };

    // The set's tasks woken on its thread go to its own queue; a task woken
    // on another thread goes to its queue for those.
    let (echo, mut echoes) = tokio::sync::mpsc::unbounded_channel();
    let (wake_from_afar, mut woken_from_afar) = tokio::sync::mpsc::unbounded_channel();
    let afar = log.clone();
    let _afar = local.spawn_local(async move {
        while woken_from_afar.recv().await.is_some() {
            record(&afar, "local, woken from another thread");
        }
    });
    let timers = log.clone();
    let _local = local.spawn_local(async move {
        // On the ticks where tasks are scheduled from outside too.
        for _ in 0..80 {
            time::sleep(Duration::from_millis(7)).await;
            record(&timers, "local timer");
            let _ = echo.send(());
        }
    });
    let echoed = log.clone();
    let _echo = local.spawn_local(async move {
        while echoes.recv().await.is_some() {
            record(&echoed, "local echo");
        }
    });
    let timers = log.clone();
    let _runtime = rt.spawn(async move {
        for _ in 0..80 {
            time::sleep(Duration::from_millis(7)).await;
            record(&timers, "runtime timer");
        }
    });

    let mut skipped = 0;
    for tick in 0..600u32 {
        if tick % 7 == 0 {
            // Woken from outside, as a simulator delivers a message.
            let remote = log.clone();
            let _remote = rt.spawn(async move { record(&remote, "remote") });
            std::thread::scope(|threads| {
                threads.spawn(|| wake_from_afar.send(()).unwrap());
            });
        }
        if skip && !local.has_scheduled_tasks() && rt.skip_idle_tick(TICK).is_some() {
            local.count_idle_turns(1);
            skipped += 1;
            continue;
        }
        rt.block_on(local.run_until(async { time::sleep(TICK).await }));
    }
    let log = log.lock().unwrap().clone();
    (log, skipped)
}

#[test]
fn skipping_is_the_same_run() {
    let (stepped, none) = run(false);
    let (skipping, skipped) = run(true);
    assert_eq!(none, 0);
    assert!(skipped > 300, "only {skipped} ticks of 600 skipped");
    assert_eq!(stepped.len(), 2 * 80 + 80 + 2 * 86);
    assert_eq!(skipping, stepped);
}
