//! The relay's threads: one single-threaded tokio runtime per thread (the default), each with
//! its own epoll and a connection's task on one thread for its whole life (as PgBouncer's one
//! loop per process: no work stealing, no wake-ups between workers, none of the multi-threaded
//! scheduler's per-batch bookkeeping); a new connection goes to the thread with the fewest. With
//! `PGWARDEN_RELAY_RUNTIME=multi`, tokio's multi-threaded, work-stealing runtime. Measured on 2
//! cores in alternating runs (README, session 18), per core served more and used less CPU per
//! transaction.
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::{Builder, Handle, Runtime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    PerCore,
    Multi,
}

impl Kind {
    pub fn from_env() -> Kind {
        match std::env::var("PGWARDEN_RELAY_RUNTIME").as_deref() {
            Ok("multi") => Kind::Multi,
            _ => Kind::PerCore,
        }
    }
}

pub enum Runtimes {
    Multi(Runtime),
    /// The runtimes run on their own threads until the process ends; with each, the
    /// connections whose task runs on it; then the connections of all of them.
    PerCore(Vec<(Handle, Arc<AtomicUsize>)>, Arc<AtomicUsize>),
}

/// Where a connection's task runs. While `live` is held (the task owns it), the connection
/// counts on its thread.
pub struct Place {
    pub handle: Handle,
    pub live: Option<Live>,
    /// The thread, per core (0 on the multi-threaded runtime): for the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub thread: usize,
}

/// One connection counted on a thread and in the total, until dropped.
pub struct Live(Arc<AtomicUsize>, Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        self.1.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Runtimes {
    pub fn start(threads: usize, kind: Kind) -> io::Result<Runtimes> {
        let threads = threads.max(1);
        if kind == Kind::Multi {
            let rt = Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("pgwarden-relay")
                .enable_io()
                .enable_time()
                .build()?;
            return Ok(Runtimes::Multi(rt));
        }
        let spin = crate::spin::Spin::from_env(threads);
        let total = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let live = Arc::new(AtomicUsize::new(0));
            let polled = total.clone();
            let (tx, rx) = std::sync::mpsc::channel::<io::Result<Handle>>();
            std::thread::Builder::new()
                .name(format!("pgwarden-relay-{i}"))
                .spawn(move || {
                    match Builder::new_current_thread()
                        .enable_io()
                        .enable_time()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = tx.send(Ok(rt.handle().clone()));
                            match spin {
                                Some(spin) => {
                                    rt.block_on(crate::spin::poll_before_parking(spin, polled))
                                }
                                None => rt.block_on(std::future::pending::<()>()),
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                })?;
            handles.push((rx.recv().map_err(io::Error::other)??, live));
        }
        Ok(Runtimes::PerCore(handles, total))
    }

    /// Where a new connection's task runs: per core, the thread with the fewest connections
    /// (the first of them), so that connections that stay do not pile up on one thread while
    /// short ones come and go on the others. Called from JavaScript's thread only.
    pub fn place(&self) -> Place {
        match self {
            Runtimes::Multi(rt) => Place {
                handle: rt.handle().clone(),
                live: None,
                thread: 0,
            },
            Runtimes::PerCore(threads, total) => {
                let (thread, (handle, live)) = threads
                    .iter()
                    .enumerate()
                    .min_by_key(|(i, (_, live))| (live.load(Ordering::Relaxed), *i))
                    .expect("at least one thread");
                live.fetch_add(1, Ordering::Relaxed);
                total.fetch_add(1, Ordering::Relaxed);
                Place {
                    handle: handle.clone(),
                    live: Some(Live(live.clone(), total.clone())),
                    thread,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_goes_to_the_thread_with_the_fewest() {
        let rts = Runtimes::start(2, Kind::PerCore).unwrap();
        let a = rts.place();
        let b = rts.place();
        let c = rts.place();
        assert_eq!((a.thread, b.thread, c.thread), (0, 1, 0));
        // Short connections on thread 1 come and go; the next long one still goes there.
        drop(b);
        let d = rts.place();
        assert_eq!(d.thread, 1);
        drop(a);
        drop(c);
        assert_eq!(rts.place().thread, 0);
        // The count goes with the task: it ends, its thread is free again.
        let e = rts.place();
        assert_eq!(e.thread, 0);
        let live = e.live;
        let done = e.handle.spawn(async move { drop(live) });
        let rt = Builder::new_current_thread().build().unwrap();
        rt.block_on(done).unwrap();
        assert_eq!(rts.place().thread, 0);
        drop(d);
        let multi = Runtimes::start(2, Kind::Multi).unwrap();
        assert!(multi.place().live.is_none());
    }
}
