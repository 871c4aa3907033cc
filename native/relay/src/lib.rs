//! The N-API boundary of the native relay (the contract: src/gateway/native/addon.ts). Every
//! function here only checks its arguments, duplicates descriptors and hands a command to the
//! connection's task (conn.rs); events come back through one threadsafe function.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod framer;

mod batch;
mod chain;
mod commands;
mod conn;
mod events;
mod observe;
mod quiet;
pub mod quiet_api;
mod quiet_client;
mod record;
mod relay;
mod runtimes;
mod seal;
mod seen;
mod shape_key;
mod spin;
mod stream;
mod tls;
pub mod writer_api;

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use napi::bindgen_prelude::{Buffer, Either};
use napi::threadsafe_function::{
    ErrorStrategy, ThreadSafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, Error, JsFunction, Result, Status};
use napi_derive::napi;

use conn::{Cmd, Commands, Event, Host, Mode, Unwritten};

struct Addon {
    rt: runtimes::Runtimes,
    events: RwLock<Option<ThreadsafeFunction<(), ErrorStrategy::Fatal>>>,
    /// Events encoded since JavaScript last took them (events.rs), whether a call or a delay is
    /// under way, and the backlog bound (batch.rs).
    batch: Arc<batch::Shared>,
    conns: Mutex<HashMap<u32, (Commands, Arc<Unwritten>)>>,
    certs: tls::Certificates,
    quiet: quiet::QuietSets,
    next_id: AtomicU32,
}

impl Addon {
    /// Asks JavaScript to take the batch (it runs the callback of `start` on its thread).
    fn call(&self) {
        let events = self.events.read().unwrap_or_else(|p| p.into_inner());
        if let Some(tsfn) = events.as_ref() {
            // Non-blocking on an unbounded queue: never fails but when Node is shutting down.
            tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

static ADDON: OnceLock<Arc<Addon>> = OnceLock::new();

/// The per-connection side of the addon, as conn.rs sees it.
struct AddonHost(Arc<Addon>);

impl Host for AddonHost {
    fn emit(&self, event: Event) {
        let rt = tokio::runtime::Handle::try_current().ok();
        // An observe event that holds nothing may wait a little for others (batch.rs); off a
        // relay thread there is no timer to wait on, so every event calls at once there.
        // What holds nothing (an observe event without a held chunk, a summary) can wait for the
        // batch's delay: the relay has passed its bytes on already.
        let urgent = rt.is_none()
            || !matches!(
                event,
                Event::Observe { hold: false, .. } | Event::Summary { .. } | Event::Record { .. }
            );
        let wake = match event {
            // Records of every connection of one audit log in one run (batch.rs add_record).
            Event::Record { json, sink } => self.0.batch.add_record(sink, &json, urgent),
            event => self
                .0
                .batch
                .add(urgent, |bytes| events::encode(bytes, event)),
        };
        match (wake, rt) {
            (batch::Wake::Now, _) => self.0.call(),
            (batch::Wake::Later(delay, number), Some(rt)) => {
                let addon = self.0.clone();
                rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    if addon.batch.delay_over(number) {
                        addon.call();
                    }
                });
            }
            _ => {}
        }
    }
    fn backlog(&self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        if !self.0.batch.over() {
            return None;
        }
        let batch = self.0.batch.clone();
        Some(Box::pin(async move { batch.under().await }))
    }
    fn forget(&self, id: u32) {
        self.0
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

fn addon() -> Result<&'static Arc<Addon>> {
    ADDON.get().ok_or_else(|| {
        Error::new(
            Status::GenericFailure,
            "pgwarden-relay: start() was not called",
        )
    })
}

fn send(id: u32, cmd: Cmd) {
    let Some(a) = ADDON.get() else { return };
    let conns = a.conns.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((tx, _)) = conns.get(&id) {
        // A task that has just ended: its 'closed' event is on its way, the command is moot.
        let _ = tx.send(cmd);
    }
}

/// A duplicate of a descriptor JavaScript owns, made before this call returns.
fn dup(fd: i32) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(Error::new(
            Status::InvalidArg,
            format!("bad file descriptor {fd}"),
        ));
    }
    // SAFETY: the contract has the caller keep `fd` open until this call returns, and it is
    // only borrowed for the F_DUPFD_CLOEXEC below (an invalid number gives EBADF, not UB in
    // Rust terms: the kernel checks it); the duplicate is a descriptor of our own.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd as RawFd) };
    borrowed
        .try_clone_to_owned()
        .map_err(|e| Error::new(Status::InvalidArg, format!("file descriptor {fd}: {e}")))
}

/// Starts the relay threads (once per process; `threads` 0: one per core), with the bound of the
/// events JavaScript has not taken (`backlog_bytes`, default batch::BACKLOG_ABOVE). A second call
/// only replaces the event callback.
#[napi]
pub fn start(
    env: Env,
    threads: u32,
    on_events: JsFunction,
    backlog_bytes: Option<u32>,
) -> Result<()> {
    let batch = ADDON.get().map(|a| a.batch.clone()).unwrap_or_else(|| {
        Arc::new(batch::Shared::new(
            backlog_bytes.map_or(batch::BACKLOG_ABOVE, |n| n as usize),
        ))
    });
    // Called without arguments: JavaScript takes the batch with take_events, into a buffer of its
    // own kept from call to call. A new buffer per call (external over the batch's memory, or a
    // copy) cost the event loop more to make than the copy, and came to several MB/s of
    // ArrayBuffers for V8 to collect (which, measured, set off a full GC every second or so).
    let mut tsfn: ThreadsafeFunction<(), ErrorStrategy::Fatal> = on_events
        .create_threadsafe_function(0, |_: ThreadSafeCallContext<()>| {
            Ok(Vec::<napi::JsUndefined>::new())
        })?;
    // Idle connections must not keep Node's event loop alive.
    tsfn.unref(&env)?;
    if let Some(a) = ADDON.get() {
        *a.events.write().unwrap_or_else(|p| p.into_inner()) = Some(tsfn);
        return Ok(());
    }
    let workers = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads as usize
    };
    let rt = runtimes::Runtimes::start(workers, runtimes::Kind::from_env()).map_err(|e| {
        Error::new(
            Status::GenericFailure,
            format!("pgwarden-relay: runtime: {e}"),
        )
    })?;
    let addon = Arc::new(Addon {
        rt,
        events: RwLock::new(Some(tsfn)),
        batch,
        conns: Mutex::new(HashMap::new()),
        certs: tls::Certificates::default(),
        quiet: quiet::QuietSets::default(),
        next_id: AtomicU32::new(1),
    });
    // Two racing first calls (not possible from one JS thread): the loser's runtime is dropped.
    let _ = ADDON.set(addon);
    Ok(())
}

/// What the backpressure towards JavaScript did so far (batch.rs).
#[napi(object)]
pub struct BacklogStats {
    /// Times a relay direction waited for JavaScript to take the events.
    pub waits: f64,
    /// The most bytes of events JavaScript took at once.
    pub largest: f64,
}

/// The events of the batch (start's callback asks for them): copied into `into` when they fit
/// (their length is returned), else handed over in a buffer of their own.
#[napi]
pub fn take_events(mut into: Buffer) -> Result<Either<u32, Buffer>> {
    Ok(addon()?
        .batch
        .take_with(|bytes| match u32::try_from(bytes.len()) {
            Ok(n) if bytes.len() <= into.len() => {
                into[..bytes.len()].copy_from_slice(bytes);
                Either::A(n)
            }
            _ => Either::B(Buffer::from(bytes.to_vec())),
        }))
}

/// The relay's clock (ms), which observe events' times are on: JavaScript maps it onto
/// performance.now() once.
#[napi]
pub fn monotonic_ms() -> f64 {
    seen::now_ms()
}

#[napi]
pub fn backlog_stats() -> BacklogStats {
    match ADDON.get() {
        Some(a) => BacklogStats {
            waits: a.batch.waits.load(Ordering::Relaxed) as f64,
            largest: a.batch.largest.load(Ordering::Relaxed) as f64,
        },
        None => BacklogStats {
            waits: 0.0,
            largest: 0.0,
        },
    }
}

/// Loads a certificate chain and its key (PEM) under `certId`. Throws on bad PEM.
#[napi]
pub fn set_certificate(cert_id: u32, chain_pem: Buffer, key_pem: Buffer) -> Result<()> {
    addon()?
        .certs
        .set(cert_id, &chain_pem, &key_pem)
        .map_err(|e| Error::new(Status::InvalidArg, format!("pgwarden-relay: {e}")))
}

#[napi]
pub fn drop_certificate(cert_id: u32) -> Result<()> {
    if let Some(a) = ADDON.get() {
        a.certs.drop_cert(cert_id);
    }
    Ok(())
}

/// Takes over an accepted TCP socket (duplicated at once); returns the connection's id.
#[napi]
pub fn adopt(fd: i32, prefix: Buffer, tls: String) -> Result<u32> {
    let a = addon()?;
    let mode = match tls.as_str() {
        "starttls" => Mode::StartTls,
        "direct" => Mode::Direct,
        "none" => Mode::None,
        other => {
            return Err(Error::new(
                Status::InvalidArg,
                format!("pgwarden-relay: tls '{other}'"),
            ))
        }
    };
    let fd = dup(fd)?;
    let mut id = a.next_id.fetch_add(1, Ordering::Relaxed);
    if id == 0 {
        id = a.next_id.fetch_add(1, Ordering::Relaxed);
    }
    let host: Arc<dyn Host> = Arc::new(AddonHost(a.clone()));
    // The map is locked while the task starts, so that its 'closed' (forget) comes after.
    let mut conns = a.conns.lock().unwrap_or_else(|p| p.into_inner());
    let tx = conn::spawn(a.rt.place(), host, id, fd, prefix.to_vec(), mode);
    conns.insert(id, (tx, Arc::default()));
    Ok(id)
}

/// Completes the TLS handshake with a loaded certificate, or (null) closes the connection.
#[napi]
pub fn tls_answer(id: u32, cert_id: Option<u32>) {
    let Some(a) = ADDON.get() else { return };
    let answer = match cert_id {
        None => Ok(None),
        Some(c) => a
            .certs
            .get(c)
            .map(Some)
            .ok_or_else(|| format!("no certificate {c} loaded")),
    };
    send(id, Cmd::TlsAnswer(answer));
}

/// Queues plaintext for the client; returns the bytes given to `write` not on the socket yet
/// (above 64 KiB, a 'drain' event follows once they all are). 0 for an unknown id.
#[napi]
pub fn write(id: u32, data: Buffer) -> f64 {
    let Some(a) = ADDON.get() else { return 0.0 };
    let conns = a.conns.lock().unwrap_or_else(|p| p.into_inner());
    let Some((tx, unwritten)) = conns.get(&id) else {
        return 0.0;
    };
    let unwritten = unwritten.clone();
    let after = unwritten.queued(data.len());
    let _ = tx.send(Cmd::Write(data.to_vec(), unwritten));
    after as f64
}

#[napi]
pub fn end(id: u32) {
    send(id, Cmd::End);
}

#[napi]
pub fn destroy(id: u32) {
    send(id, Cmd::Destroy);
}

#[napi]
pub fn pause(id: u32, paused: bool) {
    send(id, Cmd::Pause(paused));
}

#[napi]
pub fn freeze(id: u32) {
    send(id, Cmd::Freeze);
}

#[napi(object)]
pub struct RelayOptions {
    pub client_rest: Buffer,
    pub server_rest: Buffer,
    pub observe: bool,
    pub hold: bool,
    pub server_gone: Buffer,
    pub client_framing_error: Buffer,
    pub pooled: bool,
    /// A quiet set (`quietSet`), or 0.
    pub quiet_set: u32,
    /// The session's record parts (record.rs): summarized statements come as records.
    pub record: Option<Buffer>,
    /// Which of JavaScript's audit logs takes them (runs of records name it, batch.rs).
    pub record_sink: Option<u32>,
}

fn bad_parts() -> Error {
    Error::new(
        Status::InvalidArg,
        "pgwarden-relay: record parts that do not decode",
    )
}

/// Relays client ⇄ server (the server socket is duplicated at once).
#[napi]
pub fn relay(id: u32, server_fd: i32, options: RelayOptions) -> Result<()> {
    let fd = dup(server_fd)?;
    send(
        id,
        Cmd::Relay(
            fd,
            conn::RelayOptions {
                client_rest: options.client_rest.to_vec(),
                server_rest: options.server_rest.to_vec(),
                observe: options.observe,
                hold: options.hold,
                server_gone: options.server_gone.to_vec(),
                client_framing_error: options.client_framing_error.to_vec(),
                pooled: options.pooled,
                quiet: match options.quiet_set {
                    0 => None,
                    set => ADDON.get().and_then(|a| a.quiet.get(set)),
                },
                record: match options.record {
                    Some(b) => {
                        let mut parts = record::SessionParts::decode(&b).ok_or_else(bad_parts)?;
                        parts.sink = options.record_sink.unwrap_or(0);
                        Some(Arc::new(parts))
                    }
                    None => None,
                },
            },
        ),
    );
    Ok(())
}

#[napi]
pub fn release(id: u32) {
    send(id, Cmd::Release);
}

#[napi]
pub fn terminate(id: u32, fatal: Buffer) {
    send(id, Cmd::Terminate(fatal.to_vec()));
}
