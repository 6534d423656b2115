//! Waits whose timeout `epoll_wait`'s milliseconds keep well enough go without the timerfd
//! (the vendored patch): they still last their whole time, and a timer an earlier wait left
//! armed does not end them early.

use std::io;
use std::time::{Duration, Instant};

use polling::{Events, Poller};

#[test]
fn a_long_timeout_lasts_its_whole_time() -> io::Result<()> {
    let poller = Poller::new()?;
    let mut events = Events::new();
    for dur in [Duration::from_micros(150_500), Duration::from_millis(120)] {
        let now = Instant::now();
        let n = poller.wait(&mut events, Some(dur))?;
        let elapsed = now.elapsed();
        assert_eq!(n, 0);
        assert!(elapsed >= dur, "{elapsed:?} < {dur:?}");
        assert!(elapsed < dur + Duration::from_secs(1), "{elapsed:?}");
    }
    Ok(())
}

#[test]
fn a_timer_left_armed_does_not_end_a_later_wait() -> io::Result<()> {
    let poller = Poller::new()?;
    let mut events = Events::new();
    for later in [Some(Duration::from_millis(200)), None] {
        // A short timeout sets the timer; the notification ends the wait before it fires.
        poller.notify()?;
        let now = Instant::now();
        poller.wait(&mut events, Some(Duration::from_micros(30_500)))?;
        assert!(now.elapsed() < Duration::from_micros(30_500));

        let now = Instant::now();
        match later {
            Some(dur) => {
                poller.wait(&mut events, Some(dur))?;
                assert!(now.elapsed() >= dur, "{:?} < {dur:?}", now.elapsed());
            }
            None => {
                // Waits forever unless woken: a notification 100 ms on ends it.
                std::thread::scope(|s| -> io::Result<()> {
                    s.spawn(|| {
                        std::thread::sleep(Duration::from_millis(100));
                        poller.notify()
                    });
                    poller.wait(&mut events, None)?;
                    Ok(())
                })?;
                let elapsed = now.elapsed();
                assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
            }
        }
    }
    Ok(())
}
