//! One adopted connection, as one tokio task: the TLS handshake (with the 'hello' round trip to
//! JavaScript), the plaintext phase (JavaScript's commands in order, the client's bytes as
//! 'data'), then the relay. Every way out ends in `finish`: one 'closed' event, id forgotten.
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::framer::{Framer, Side};
use crate::stream::{Client, Prefixed, Server};
use crate::tls::{cipher_name, version_name, ALPN_POSTGRESQL};

/// Large reads: a batch of pipelined messages or a big result in one read and one write.
const BUFFER: usize = 64 * 1024;
/// How long a closing side may take to take the last bytes (fatal, serverGone, close_notify).
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After our FIN, how long the client's unread bytes are drained so that closing the socket
/// does not reset it (a reset can make the client drop the last bytes it was sent).
const LINGER: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    StartTls,
    Direct,
    None,
}

pub struct RelayOptions {
    pub client_rest: Vec<u8>,
    pub server_rest: Vec<u8>,
    pub observe: bool,
    pub hold: bool,
    pub server_gone: Vec<u8>,
    /// Written to the client (when the server stream is at a boundary) when the client's own
    /// stream cannot be framed; the server never gets those bytes.
    pub client_framing_error: Vec<u8>,
    pub pooled: bool,
}

pub enum Cmd {
    TlsAnswer(Result<Option<Arc<ServerConfig>>, String>),
    /// Plaintext to the client before the relay; `Unwritten` counts it until it is written.
    Write(Vec<u8>, Arc<Unwritten>),
    End,
    Destroy,
    Pause(bool),
    Freeze,
    Relay(OwnedFd, RelayOptions),
    Release,
    Terminate(Vec<u8>),
}

pub enum Event {
    Hello {
        id: u32,
        sni: Option<String>,
        alpn: Vec<String>,
    },
    Secure {
        id: u32,
        version: String,
        cipher: String,
        sni: Option<String>,
        alpn: Option<String>,
    },
    Data {
        id: u32,
        data: Vec<u8>,
    },
    End {
        id: u32,
    },
    Frozen {
        id: u32,
    },
    /// Every byte given to `write` reached the socket, after a `write` left more than
    /// `DRAIN_ABOVE` unwritten (JavaScript's stream waits for it: backpressure).
    Drain {
        id: u32,
    },
    Observe {
        id: u32,
        client: Option<Vec<u8>>,
        server: Option<Vec<u8>>,
        hold: bool,
    },
    Closed {
        id: u32,
        bytes_from_client: u64,
        bytes_to_client: u64,
        reusable: bool,
        error: Option<String>,
    },
}

/// Where events go (the N-API threadsafe function) and how an id is forgotten.
pub trait Host: Send + Sync + 'static {
    fn emit(&self, event: Event);
    fn forget(&self, id: u32);
}

pub type Commands = UnboundedSender<Cmd>;

/// Unwritten bytes given to `write` above which the caller waits for a 'drain' event.
pub const DRAIN_ABOVE: u64 = 64 * 1024;

/// Bytes `write` queued that are not on the socket yet, shared by the N-API side and the task.
#[derive(Default)]
pub struct Unwritten {
    bytes: AtomicU64,
    want_drain: AtomicBool,
}

impl Unwritten {
    /// Counts a write being queued; returns the bytes unwritten with it.
    pub fn queued(&self, n: usize) -> u64 {
        let after = self.bytes.fetch_add(n as u64, Relaxed) + n as u64;
        if after > DRAIN_ABOVE {
            self.want_drain.store(true, Relaxed);
        }
        after
    }

    /// Counts a write done; true when a 'drain' is due (nothing left, and one was asked for).
    fn written(&self, n: usize) -> bool {
        let left = self.bytes.fetch_sub(n as u64, Relaxed) - n as u64;
        left == 0 && self.want_drain.swap(false, Relaxed)
    }
}

/// Starts a connection's task on `rt`; returns the sender of its commands.
pub fn spawn(
    rt: &tokio::runtime::Runtime,
    host: Arc<dyn Host>,
    id: u32,
    fd: OwnedFd,
    prefix: Vec<u8>,
    mode: Mode,
) -> Commands {
    let (tx, rx) = unbounded_channel();
    rt.spawn(async move {
        let h = host.clone();
        let result = CatchUnwind(Box::pin(connection(h, id, fd, prefix, mode, rx))).await;
        if result.is_err() {
            // A bug, not the network: the connection's sockets are dropped with the task.
            host.forget(id);
            host.emit(Event::Closed {
                id,
                bytes_from_client: 0,
                bytes_to_client: 0,
                reusable: false,
                error: Some("internal error in the native relay (panic)".into()),
            });
        }
    });
    tx
}

/// Catches a panic of the wrapped future, so that it ends one connection, not Node.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future<Output = ()>> Future for CatchUnwind<F> {
    type Output = Result<(), ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// How a connection ended, for its 'closed' event.
#[derive(Default)]
struct Closed {
    from_client: u64,
    to_client: u64,
    reusable: bool,
    error: Option<String>,
}

impl Closed {
    fn error(from_client: u64, to_client: u64, e: impl ToString) -> Closed {
        Closed {
            from_client,
            to_client,
            reusable: false,
            error: Some(e.to_string()),
        }
    }
}

fn is_eof(e: &io::Error) -> bool {
    // A client that closes without TLS close_notify (libpq often does) ends the stream too.
    e.kind() == io::ErrorKind::UnexpectedEof
}

async fn connection(
    host: Arc<dyn Host>,
    id: u32,
    fd: OwnedFd,
    prefix: Vec<u8>,
    mode: Mode,
    mut rx: UnboundedReceiver<Cmd>,
) {
    let closed = match run(&*host, id, fd, prefix, mode, &mut rx).await {
        Ok(c) => c,
        Err(e) => Closed::error(0, 0, e),
    };
    host.forget(id);
    host.emit(Event::Closed {
        id,
        bytes_from_client: closed.from_client,
        bytes_to_client: closed.to_client,
        reusable: closed.reusable,
        error: closed.error,
    });
}

fn tcp_from_fd(fd: OwnedFd) -> io::Result<TcpStream> {
    let tcp = std::net::TcpStream::from(fd);
    tcp.set_nodelay(true)?;
    tcp.set_nonblocking(true)?;
    TcpStream::from_std(tcp)
}

/// The connection up to the relay, then the relay; Err only before the first byte is read.
async fn run(
    host: &dyn Host,
    id: u32,
    fd: OwnedFd,
    prefix: Vec<u8>,
    mode: Mode,
    rx: &mut UnboundedReceiver<Cmd>,
) -> io::Result<Closed> {
    let io = Prefixed::new(prefix, tcp_from_fd(fd)?);
    let client = match mode {
        Mode::None => Client::Plain(io),
        Mode::StartTls | Mode::Direct => match handshake(host, id, io, mode, rx).await {
            Ok(tls) => tls,
            Err(closed) => return Ok(closed),
        },
    };
    plaintext(host, id, client, rx).await
}

enum Wait<T> {
    Done(T),
    Cmd(Option<Cmd>),
}

/// The TLS handshake: ClientHello, 'hello', the answer, the rest, 'secure'.
async fn handshake(
    host: &dyn Host,
    id: u32,
    io: Prefixed,
    mode: Mode,
    rx: &mut UnboundedReceiver<Cmd>,
) -> Result<Client, Closed> {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    tokio::pin!(acceptor);
    let start = loop {
        let w = tokio::select! {
            r = &mut acceptor => Wait::Done(r),
            c = rx.recv() => Wait::Cmd(c),
        };
        match w {
            Wait::Done(Ok(start)) => break start,
            Wait::Done(Err(e)) => return Err(Closed::error(0, 0, format!("TLS: {e}"))),
            Wait::Cmd(None | Some(Cmd::Destroy | Cmd::End)) => return Err(Closed::default()),
            Wait::Cmd(Some(_)) => {}
        }
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let alpn: Vec<String> = hello
        .alpn()
        .map(|list| {
            list.map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
        .unwrap_or_default();
    if mode == Mode::Direct && !alpn.iter().any(|p| p.as_bytes() == ALPN_POSTGRESQL) {
        return Err(Closed::error(0, 0, "direct TLS without ALPN postgresql"));
    }
    host.emit(Event::Hello {
        id,
        sni: sni.clone(),
        alpn,
    });
    let config = loop {
        match rx.recv().await {
            Some(Cmd::TlsAnswer(Ok(Some(config)))) => break config,
            Some(Cmd::TlsAnswer(Ok(None))) | Some(Cmd::Destroy | Cmd::End) | None => {
                return Err(Closed::default())
            }
            Some(Cmd::TlsAnswer(Err(e))) => return Err(Closed::error(0, 0, e)),
            Some(_) => {}
        }
    };
    let accept = start.into_stream(config);
    tokio::pin!(accept);
    let tls = loop {
        let w = tokio::select! {
            r = &mut accept => Wait::Done(r),
            c = rx.recv() => Wait::Cmd(c),
        };
        match w {
            Wait::Done(Ok(tls)) => break tls,
            Wait::Done(Err(e)) => return Err(Closed::error(0, 0, format!("TLS: {e}"))),
            Wait::Cmd(None | Some(Cmd::Destroy | Cmd::End)) => return Err(Closed::default()),
            Wait::Cmd(Some(_)) => {}
        }
    };
    let (_, conn) = tls.get_ref();
    let negotiated = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    if mode == Mode::Direct && negotiated.as_deref().map(str::as_bytes) != Some(ALPN_POSTGRESQL) {
        return Err(Closed::error(0, 0, "direct TLS without ALPN postgresql"));
    }
    host.emit(Event::Secure {
        id,
        version: version_name(conn.protocol_version()),
        cipher: cipher_name(conn.negotiated_cipher_suite()),
        sni: conn.server_name().map(str::to_owned).or(sni),
        alpn: negotiated,
    });
    Ok(Client::Tls(Box::new(tls)))
}

/// Writes, then FIN (TLS close_notify first), within CLOSE_WRITE_TIMEOUT; true when written.
async fn write_and_close<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> bool {
    tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        let ok = data.is_empty() || w.write_all(data).await.is_ok();
        let _ = w.shutdown().await;
        ok
    })
    .await
    .unwrap_or(false)
}

/// Drains what the client still sends after our FIN, for a while, so that the close is a FIN
/// and not a reset.
async fn linger<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Before the relay: JavaScript runs the startup and authentication over the plaintext.
async fn plaintext(
    host: &dyn Host,
    id: u32,
    mut client: Client,
    rx: &mut UnboundedReceiver<Cmd>,
) -> io::Result<Closed> {
    let mut buf = vec![0u8; BUFFER];
    let (mut from, mut to) = (0u64, 0u64);
    let (mut paused, mut frozen, mut eof) = (false, false, false);
    // Commands that came while a write waited for the client (kept in order).
    let mut queued: VecDeque<Cmd> = VecDeque::new();
    loop {
        let can_read = !paused && !frozen && !eof;
        let w = if let Some(c) = queued.pop_front() {
            Wait::Cmd(Some(c))
        } else {
            tokio::select! {
                biased;
                c = rx.recv() => Wait::Cmd(c),
                r = client.read(&mut buf), if can_read => Wait::Done(r),
            }
        };
        match w {
            Wait::Done(Ok(0)) => {
                eof = true;
                host.emit(Event::End { id });
            }
            Wait::Done(Ok(n)) => {
                from += n as u64;
                host.emit(Event::Data {
                    id,
                    data: buf[..n].to_vec(),
                });
            }
            Wait::Done(Err(e)) if is_eof(&e) => {
                eof = true;
                host.emit(Event::End { id });
            }
            Wait::Done(Err(e)) => return Ok(Closed::error(from, to, e)),
            Wait::Cmd(None | Some(Cmd::Destroy)) => {
                return Ok(Closed {
                    from_client: from,
                    to_client: to,
                    ..Closed::default()
                })
            }
            Wait::Cmd(Some(Cmd::Write(data, unwritten))) => {
                // A client that does not read must not make `destroy` wait: commands are taken
                // (and queued) while the write waits.
                let write = client.write_all(&data);
                tokio::pin!(write);
                let written = loop {
                    tokio::select! {
                        biased;
                        r = &mut write => break r,
                        c = rx.recv() => match c {
                            None | Some(Cmd::Destroy) => return Ok(Closed { from_client: from, to_client: to, ..Closed::default() }),
                            Some(c) => queued.push_back(c),
                        },
                    }
                };
                if let Err(e) = written {
                    return Ok(Closed::error(from, to, e));
                }
                to += data.len() as u64;
                if unwritten.written(data.len()) {
                    host.emit(Event::Drain { id });
                }
            }
            Wait::Cmd(Some(Cmd::End)) => {
                let _ = client.flush().await;
                write_and_close(&mut client, &[]).await;
                if !eof {
                    tokio::spawn(async move { linger(&mut client).await });
                }
                return Ok(Closed {
                    from_client: from,
                    to_client: to,
                    ..Closed::default()
                });
            }
            Wait::Cmd(Some(Cmd::Terminate(fatal))) => {
                if write_and_close(&mut client, &fatal).await {
                    to += fatal.len() as u64;
                }
                if !eof {
                    tokio::spawn(async move { linger(&mut client).await });
                }
                return Ok(Closed {
                    from_client: from,
                    to_client: to,
                    ..Closed::default()
                });
            }
            Wait::Cmd(Some(Cmd::Pause(p))) => paused = p,
            Wait::Cmd(Some(Cmd::Freeze)) => {
                if !frozen {
                    frozen = true;
                    host.emit(Event::Frozen { id });
                }
            }
            Wait::Cmd(Some(Cmd::Relay(fd, options))) => {
                let _ = client.flush().await;
                drop(buf);
                return Ok(relay(host, id, client, eof, fd, options, rx).await);
            }
            Wait::Cmd(Some(Cmd::Release | Cmd::TlsAnswer(_))) => {}
        }
    }
}

/// Flags shared by the two directions of a relay (one task: relaxed atomics are enough).
#[derive(Default)]
struct Flags {
    /// The client half-closed (or closed).
    client_eof: AtomicBool,
    /// PgBouncer's "ready": set by a whole ReadyForQuery 'I' ending a server chunk at a
    /// boundary, cleared by any client byte passed to the server.
    server_ready: AtomicBool,
    /// A server chunk is being written to the client.
    writing: AtomicBool,
    /// Every byte written to the client so far ends a whole server message.
    client_at_boundary: AtomicBool,
    /// A server chunk waits for `release`.
    holding: AtomicBool,
    from_client: AtomicU64,
    to_client: AtomicU64,
}

/// How a direction stopped.
enum DirEnd {
    /// Its source closed (client: EOF or, pooled, Terminate).
    Eof,
    ReadError(io::Error),
    WriteError(io::Error),
    Framing(String),
}

/// How the relay stopped.
enum Stop {
    ClientGone(Option<String>),
    ServerGone(Option<String>),
    /// A framing error or a write error: both sides are closed.
    Broken(String),
    /// The client's stream cannot be framed: `client_framing_error`, then both sides closed.
    ClientFraming(String),
    Terminate(Vec<u8>),
    Destroy,
}

struct C2s<'a> {
    host: &'a dyn Host,
    id: u32,
    r: &'a mut ReadHalf<Client>,
    w: &'a mut WriteHalf<Server>,
    framer: &'a mut Framer,
    flags: &'a Flags,
    pooled: bool,
}

impl C2s<'_> {
    /// Frames, observes and passes on one chunk; Ok(true) when the client's Terminate ends it
    /// (pooled: not passed on).
    async fn chunk(&mut self, data: &[u8]) -> Result<bool, DirEnd> {
        let fed = self
            .framer
            .feed(data)
            .map_err(|e| DirEnd::Framing(format!("client {e}")))?;
        let (end, stop) = match fed.terminate_at {
            Some(x) if self.pooled => (x, true),
            _ => (data.len(), false),
        };
        if let Some(o) = self.framer.take_observed() {
            self.host.emit(Event::Observe {
                id: self.id,
                client: Some(o.buf),
                server: None,
                hold: false,
            });
        }
        if end > 0 {
            self.flags.server_ready.store(false, Relaxed);
            self.w
                .write_all(&data[..end])
                .await
                .map_err(DirEnd::WriteError)?;
            self.flags.from_client.fetch_add(end as u64, Relaxed);
        }
        Ok(stop)
    }

    async fn run(mut self, rest: Vec<u8>) -> DirEnd {
        if !rest.is_empty() {
            match self.chunk(&rest).await {
                Ok(false) => {}
                Ok(true) => return DirEnd::Eof,
                Err(e) => return e,
            }
        }
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match self.r.read(&mut buf).await {
                Ok(0) => 0,
                Ok(n) => n,
                Err(e) if is_eof(&e) => 0,
                Err(e) => return DirEnd::ReadError(e),
            };
            if n == 0 {
                self.flags.client_eof.store(true, Relaxed);
                if !self.pooled {
                    // The server learns the client has gone (PostgreSQL ends the session).
                    let _ = self.w.shutdown().await;
                }
                return DirEnd::Eof;
            }
            match self.chunk(&buf[..n]).await {
                Ok(false) => {}
                Ok(true) => return DirEnd::Eof,
                Err(e) => return e,
            }
        }
    }
}

struct S2c<'a> {
    host: &'a dyn Host,
    id: u32,
    r: &'a mut ReadHalf<Server>,
    w: &'a mut WriteHalf<Client>,
    framer: &'a mut Framer,
    flags: &'a Flags,
    hold: bool,
    released: &'a mut UnboundedReceiver<()>,
}

impl S2c<'_> {
    async fn chunk(&mut self, data: &[u8]) -> Result<(), DirEnd> {
        let f = &mut *self.framer;
        f.feed(data)
            .map_err(|e| DirEnd::Framing(format!("server {e}")))?;
        let ready = f.at_boundary() && f.last_type() == b'Z' && f.ready_status() == b'I';
        self.flags.server_ready.store(ready, Relaxed);
        if let Some(o) = f.take_observed() {
            let hold = self.hold && o.copied;
            if hold {
                self.flags.holding.store(true, Relaxed);
            }
            self.host.emit(Event::Observe {
                id: self.id,
                client: None,
                server: Some(o.buf),
                hold,
            });
            if hold {
                // Cancelled with the relay if `release` never comes.
                let _ = self.released.recv().await;
                self.flags.holding.store(false, Relaxed);
            }
        }
        self.flags.writing.store(true, Relaxed);
        self.w.write_all(data).await.map_err(DirEnd::WriteError)?;
        self.flags.writing.store(false, Relaxed);
        self.flags
            .client_at_boundary
            .store(self.framer.at_boundary(), Relaxed);
        self.flags.to_client.fetch_add(data.len() as u64, Relaxed);
        Ok(())
    }

    async fn run(mut self, rest: Vec<u8>) -> DirEnd {
        if !rest.is_empty() {
            if let Err(e) = self.chunk(&rest).await {
                return e;
            }
        }
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match self.r.read(&mut buf).await {
                Ok(0) => return DirEnd::Eof,
                Ok(n) => n,
                Err(e) => return DirEnd::ReadError(e),
            };
            if let Err(e) = self.chunk(&buf[..n]).await {
                return e;
            }
        }
    }
}

async fn relay(
    host: &dyn Host,
    id: u32,
    client: Client,
    client_eof: bool,
    server_fd: OwnedFd,
    opts: RelayOptions,
    rx: &mut UnboundedReceiver<Cmd>,
) -> Closed {
    let server = match Server::from_fd(server_fd) {
        Ok(s) => s,
        Err(e) => {
            let (_, mut cw) = tokio::io::split(client);
            write_and_close(&mut cw, &[]).await;
            return Closed::error(0, 0, format!("server socket: {e}"));
        }
    };
    let pooled = opts.pooled;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let mut cf = Framer::new(Side::Client, opts.observe);
    let mut sf = Framer::new(Side::Server, opts.observe);
    // Handed over after the greeting's ReadyForQuery 'I': a pooled client that leaves at once
    // leaves a reusable connection (the JavaScript relay counts it so too).
    sf.assume_ready_idle();
    let flags = Flags::default();
    flags.server_ready.store(true, Relaxed);
    flags.client_at_boundary.store(true, Relaxed);
    flags.client_eof.store(client_eof, Relaxed);
    let (release_tx, mut release_rx) = unbounded_channel::<()>();
    let mut client_done = false;
    let stop = {
        let c2s = C2s {
            host,
            id,
            r: &mut cr,
            w: &mut sw,
            framer: &mut cf,
            flags: &flags,
            pooled,
        };
        let s2c = S2c {
            host,
            id,
            r: &mut sr,
            w: &mut cw,
            framer: &mut sf,
            flags: &flags,
            hold: opts.hold && opts.observe,
            released: &mut release_rx,
        };
        let c2s = c2s.run(opts.client_rest);
        let s2c = s2c.run(opts.server_rest);
        tokio::pin!(c2s);
        tokio::pin!(s2c);
        loop {
            enum W {
                C(DirEnd),
                S(DirEnd),
                Cmd(Option<Cmd>),
            }
            let w = tokio::select! {
                biased;
                c = rx.recv() => W::Cmd(c),
                e = &mut c2s, if !client_done => W::C(e),
                e = &mut s2c => W::S(e),
            };
            match w {
                W::C(DirEnd::Eof) => {
                    if pooled {
                        break Stop::ClientGone(None);
                    }
                    // Non-pooled: c2s sent the server a FIN; the server's answer to it (its
                    // close) ends the relay.
                    client_done = true;
                }
                W::C(DirEnd::ReadError(e)) => break Stop::ClientGone(Some(format!("client: {e}"))),
                W::C(DirEnd::WriteError(e)) => break Stop::Broken(format!("server: {e}")),
                W::C(DirEnd::Framing(e)) => break Stop::ClientFraming(e),
                W::S(DirEnd::Framing(e)) => break Stop::Broken(e),
                W::S(DirEnd::Eof) => break Stop::ServerGone(None),
                W::S(DirEnd::ReadError(e)) => break Stop::ServerGone(Some(format!("server: {e}"))),
                W::S(DirEnd::WriteError(e)) => {
                    if flags.client_eof.load(Relaxed) {
                        // The client closed and did not wait for the answers: its own choice.
                        break Stop::ClientGone(None);
                    }
                    break Stop::Broken(format!("client: {e}"));
                }
                W::Cmd(Some(Cmd::Release)) => {
                    if flags.holding.load(Relaxed) {
                        let _ = release_tx.send(());
                    }
                }
                W::Cmd(Some(Cmd::Terminate(fatal))) => break Stop::Terminate(fatal),
                // `end`: a graceful close (FIN, close_notify), nothing written.
                W::Cmd(Some(Cmd::End)) => break Stop::Terminate(Vec::new()),
                W::Cmd(Some(Cmd::Destroy) | None) => break Stop::Destroy,
                W::Cmd(Some(_)) => {}
            }
        }
    };
    let from_client = flags.from_client.load(Relaxed);
    let mut to_client = flags.to_client.load(Relaxed);
    let client_writable = !flags.writing.load(Relaxed) && flags.client_at_boundary.load(Relaxed);
    let mut error = None;
    let mut server_closed = false;
    let mut reusable_possible = false;
    // `destroy` closes at once: no FIN first, no draining afterwards.
    let linger_after = !matches!(stop, Stop::Destroy) && !flags.client_eof.load(Relaxed);
    match stop {
        Stop::ClientGone(e) => {
            error = e;
            reusable_possible = true;
            write_and_close(&mut cw, &[]).await;
        }
        Stop::ServerGone(e) => {
            error = e;
            server_closed = true;
            let expects = !cf.terminate_seen() && !flags.client_eof.load(Relaxed);
            let gone = if expects && client_writable && sf.at_boundary() && sf.last_type() != b'E' {
                opts.server_gone.as_slice()
            } else {
                &[]
            };
            if write_and_close(&mut cw, gone).await {
                to_client += gone.len() as u64;
            }
        }
        Stop::Broken(e) => {
            error = Some(e);
            write_and_close(&mut cw, &[]).await;
        }
        Stop::ClientFraming(e) => {
            error = Some(e);
            let words = if client_writable && sf.at_boundary() {
                opts.client_framing_error.as_slice()
            } else {
                &[]
            };
            if write_and_close(&mut cw, words).await {
                to_client += words.len() as u64;
            }
        }
        Stop::Terminate(fatal) => {
            let fatal = if client_writable && sf.at_boundary() {
                fatal.as_slice()
            } else {
                &[]
            };
            if write_and_close(&mut cw, fatal).await {
                to_client += fatal.len() as u64;
            }
        }
        Stop::Destroy => {}
    }
    let reusable = pooled
        && reusable_possible
        && !server_closed
        && flags.server_ready.load(Relaxed)
        && sf.at_boundary()
        && sf.last_type() == b'Z'
        && sf.ready_status() == b'I';
    if !pooled {
        let _ = sw.shutdown().await;
    }
    // Pooled: only the duplicate descriptor is closed (JavaScript keeps its own socket).
    drop((sr, sw));
    if linger_after {
        tokio::spawn(async move { linger(&mut cr).await });
    }
    Closed {
        from_client,
        to_client,
        reusable,
        error,
    }
}
