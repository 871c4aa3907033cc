//! The relay's threads: one single-threaded tokio runtime per thread (the default), each with
//! its own epoll and a connection's task on one thread for its whole life (as PgBouncer's one
//! loop per process: no work stealing, no wake-ups between workers, none of the multi-threaded
//! scheduler's per-batch bookkeeping); connections are dealt out to the threads in turn. With
//! `PGWARDEN_RELAY_RUNTIME=multi`, tokio's multi-threaded, work-stealing runtime. Measured on 2
//! cores in alternating runs (README, session 18), per core served more and used less CPU per
//! transaction.
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// The runtimes run on their own threads until the process ends.
    PerCore {
        handles: Vec<Handle>,
        next: AtomicUsize,
    },
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
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
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
                            rt.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                })?;
            handles.push(rx.recv().map_err(io::Error::other)??);
        }
        Ok(Runtimes::PerCore {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// Where a new connection's task runs: per core, the threads in turn.
    pub fn handle(&self) -> &Handle {
        match self {
            Runtimes::Multi(rt) => rt.handle(),
            Runtimes::PerCore { handles, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed) % handles.len();
                &handles[i]
            }
        }
    }
}
