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
use std::cell::{Cell, OnceCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What a thread's poller shares with the connections on its thread.
struct Poller {
    /// A chunk was relayed since the poller last looked.
    relayed: Cell<bool>,
    /// The poller's waker while it sleeps until the next chunk.
    asleep: Cell<Option<Waker>>,
    /// The relay's connections, on every thread.
    total: Arc<AtomicUsize>,
    /// The most connections with which a thread polls.
    max: usize,
}

impl Poller {
    fn few_connections(&self) -> bool {
        self.total.load(Ordering::Relaxed) <= self.max
    }
}

thread_local! {
    /// Set by the thread's poller; unset where none runs (polling off, the multi-threaded runtime).
    static POLLER: OnceCell<Poller> = const { OnceCell::new() };
}

fn poller<R>(f: impl FnOnce(&Poller) -> R) -> R {
    POLLER.with(|p| f(p.get().expect("the poller is set on its thread")))
}

/// Called by a connection after each chunk it relays: starts (or extends) the thread's polling,
/// if the relay serves few enough connections (else the poller is not woken for nothing).
pub fn active() {
    POLLER.with(|p| {
        let Some(p) = p.get() else { return };
        p.relayed.set(true);
        if p.few_connections() {
            if let Some(w) = p.asleep.take() {
                w.wake();
            }
        }
    });
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
    POLLER.with(|p| {
        let _ = p.set(Poller {
            relayed: Cell::new(false),
            asleep: Cell::new(None),
            total,
            max: spin.max_connections,
        });
    });
    loop {
        Asleep { registered: false }.await;
        poller(|p| p.relayed.set(false));
        let mut until = Instant::now() + spin.budget;
        while poller(Poller::few_connections) {
            tokio::task::yield_now().await;
            let now = Instant::now();
            if poller(|p| p.relayed.replace(false)) {
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
        // `active` takes the waker to wake it: registered and no waker left means woken.
        let woken = poller(|p| {
            let woken = self.registered && p.asleep.take().is_none();
            if !woken {
                p.asleep.set(Some(cx.waker().clone()));
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
        poller(|p| {
            let w = p.asleep.take();
            let some = w.is_some();
            p.asleep.set(w);
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
