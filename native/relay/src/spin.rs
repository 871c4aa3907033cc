//! Polling before sleeping. A relay thread with nothing to do parks in epoll_wait and its core
//! goes idle; on a virtual machine whose guest does not poll before halting (Linux's
//! `haltpoll.guest_halt_poll_ns`, 200 µs by default, is 0 on the machines pgwarden is measured
//! on) the next readiness then waits for an interrupt to wake the core: paid twice per relayed
//! transaction, and seen as latency by a client that waits for each answer. So after each
//! relayed chunk the thread keeps polling its epoll without blocking (`yield_now`: tokio's park
//! with a zero timeout) until a budget passes with nothing relayed, then parks.
//!
//! A polling thread holds a whole core. It polls only while the relay serves few connections,
//! idle ones included (by default at most half as many as it has threads, at least one): with
//! more, the cores are needed by PostgreSQL and the clients, and a busy thread seldom parks
//! anyway. Measured on 2 cores (README): one client's added latency went from 0.06–0.08 ms to
//! below direct; polling with two clients on two cores cost them a third of their rate, which
//! the limit prevents. `PGWARDEN_RELAY_SPIN_US` sets the budget (0: never poll),
//! `PGWARDEN_RELAY_SPIN_CONNECTIONS` the limit.
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Chunks relayed on this thread (wrapping).
    static ACTIVITY: Cell<u64> = const { Cell::new(0) };
    /// The poller's waker while it sleeps until the next chunk.
    static ASLEEP: Cell<Option<Waker>> = const { Cell::new(None) };
    /// The relay's connections and the most with which a thread polls (set by the poller).
    static GATE: RefCell<Option<(Arc<AtomicUsize>, usize)>> = const { RefCell::new(None) };
}

/// Called by a connection after each chunk it relays: starts (or extends) the thread's polling,
/// if the relay serves few enough connections (else the poller is not woken for nothing).
pub fn active() {
    ACTIVITY.with(|a| a.set(a.get().wrapping_add(1)));
    let open = GATE.with(|g| {
        g.borrow()
            .as_ref()
            .is_some_and(|(total, max)| total.load(Ordering::Relaxed) <= *max)
    });
    if open {
        ASLEEP.with(|s| {
            if let Some(w) = s.take() {
                w.wake();
            }
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spin {
    pub budget: Duration,
    pub max_connections: usize,
}

impl Spin {
    pub const DEFAULT_US: u64 = 200;

    /// The settings for a relay with `threads` threads; None when polling is off.
    pub fn from_env(threads: usize) -> Option<Spin> {
        let num = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let us = num("PGWARDEN_RELAY_SPIN_US").unwrap_or(Self::DEFAULT_US);
        let max =
            num("PGWARDEN_RELAY_SPIN_CONNECTIONS").map_or((threads / 2).max(1), |n| n as usize);
        (us > 0 && max > 0).then(|| Spin {
            budget: Duration::from_micros(us),
            max_connections: max,
        })
    }
}

/// The thread's poller, run as its runtime's main future: sleeps until a chunk is relayed, then
/// yields to the driver until `budget` passes without one or the relay's connections (`total`)
/// are more than the limit.
pub async fn poll_before_parking(spin: Spin, total: Arc<AtomicUsize>) {
    GATE.with(|g| *g.borrow_mut() = Some((total.clone(), spin.max_connections)));
    loop {
        Asleep { registered: false }.await;
        let mut seen = ACTIVITY.with(Cell::get);
        let mut until = Instant::now() + spin.budget;
        while total.load(Ordering::Relaxed) <= spin.max_connections {
            tokio::task::yield_now().await;
            let now = Instant::now();
            let a = ACTIVITY.with(Cell::get);
            if a != seen {
                seen = a;
                until = now + spin.budget;
            } else if now >= until {
                break;
            }
        }
    }
}

/// Ready once `active` has woken it.
struct Asleep {
    registered: bool,
}

impl Future for Asleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let woken = ASLEEP.with(|s| {
            let w = s.take();
            let woken = self.registered && w.is_none();
            if !woken {
                s.set(Some(cx.waker().clone()));
            }
            woken
        });
        if woken {
            return Poll::Ready(());
        }
        self.registered = true;
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asleep() -> bool {
        ASLEEP.with(|s| {
            let w = s.take();
            let some = w.is_some();
            s.set(w);
            some
        })
    }

    #[test]
    fn polls_while_chunks_come_and_sleeps_after_the_budget() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let live = Arc::new(AtomicUsize::new(1));
        let spin = Spin {
            budget: Duration::from_millis(20),
            max_connections: 1,
        };
        rt.block_on(async {
            let poller = tokio::spawn(poll_before_parking(spin, live.clone()));
            let yields = |n: usize| async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            };
            yields(3).await;
            assert!(asleep(), "nothing relayed yet");
            active();
            yields(3).await;
            assert!(!asleep(), "polling after a chunk");
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert!(asleep(), "asleep again after the budget");
            // With more connections than the limit, no thread polls.
            live.store(2, Ordering::Relaxed);
            active();
            yields(3).await;
            assert!(asleep(), "too many connections to poll");
            // One goes: the next chunk starts the polling again.
            live.store(1, Ordering::Relaxed);
            active();
            yields(3).await;
            assert!(!asleep(), "polling with one connection again");
            poller.abort();
        });
    }
}
