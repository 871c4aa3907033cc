//! The relay phase of a connection (conn.rs hands it over): client ⇄ server, each direction
//! framed (framer.rs) and observed, until a side closes or JavaScript ends it; then the close.
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::conn::{is_eof, Closed, Cmd, Host, Inbox, BUFFER};
use crate::framer::{Framer, Side};
use crate::observe::{self, Flags};
use crate::quiet::QuietSet;
use crate::stream::{Client, Server, ServerRead, ServerWrite};

/// How long a closing side may take to take the last bytes (fatal, serverGone, close_notify).
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After our FIN, how long the client's unread bytes are drained so that closing the socket
/// does not reset it (a reset can make the client drop the last bytes it was sent).
const LINGER: Duration = Duration::from_secs(2);

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
    /// Quiet statements of this set are relayed without being observed (quiet.rs).
    pub quiet: Option<std::sync::Arc<QuietSet>>,
    /// The session's record parts: summarized statements come as records (record.rs).
    pub record: Option<std::sync::Arc<crate::record::SessionParts>>,
}

/// Writes, then FIN (TLS close_notify first), within CLOSE_WRITE_TIMEOUT; true when written.
pub(crate) async fn write_and_close<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> bool {
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
pub(crate) async fn linger<R: AsyncRead + Unpin>(r: &mut R) {
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

/// After a chunk: read on only once JavaScript keeps up with what was observed (batch.rs); a
/// chunk that added nothing to observe (quiet statements) does not wait.
async fn keep_up(host: &dyn Host, emitted: bool) {
    if emitted {
        if let Some(wait) = host.backlog() {
            wait.await;
        }
    }
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

struct C2s<'a, 'b> {
    host: &'a dyn Host,
    id: u32,
    r: &'a mut ReadHalf<Client>,
    w: &'a mut ServerWrite<'b>,
    framer: &'a mut Framer,
    flags: &'a Flags,
    pooled: bool,
}

impl C2s<'_, '_> {
    /// Frames, observes and passes on one chunk; Ok(true) when the client's Terminate ends it
    /// (pooled: not passed on).
    async fn chunk(&mut self, data: &[u8]) -> Result<bool, DirEnd> {
        let copying = self.flags.copy_in.load(Relaxed);
        self.framer.set_copy_in(copying);
        self.framer.set_answered(self.flags.readys.load(Relaxed));
        let fed = self
            .framer
            .feed(data)
            .map_err(|e| DirEnd::Framing(format!("client {e}")))?;
        if copying && !self.framer.copy_in() {
            self.flags.copy_in.store(false, Relaxed);
        }
        let (end, stop) = match fed.terminate_at {
            Some(x) if self.pooled => (x, true),
            _ => (data.len(), false),
        };
        let emitted = observe::client_chunk(self.host, self.id, self.framer, &fed, self.flags);
        if end > 0 {
            self.flags.server_ready.store(false, Relaxed);
            self.w
                .write_all(&data[..end])
                .await
                .map_err(DirEnd::WriteError)?;
            self.flags.from_client.fetch_add(end as u64, Relaxed);
        }
        keep_up(self.host, emitted).await;
        crate::spin::active();
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

struct S2c<'a, 'b> {
    host: &'a dyn Host,
    id: u32,
    r: &'a mut ServerRead<'b>,
    w: &'a mut WriteHalf<Client>,
    framer: &'a mut Framer,
    flags: &'a Flags,
    hold: bool,
    released: &'a mut UnboundedReceiver<()>,
}

impl S2c<'_, '_> {
    async fn chunk(&mut self, data: &[u8]) -> Result<(), DirEnd> {
        let f = &mut *self.framer;
        if self.flags.quiet.swap(false, Relaxed) {
            f.begin_quiet_answer(self.flags.quiet_tag.swap(false, Relaxed));
        }
        let fed = f
            .feed(data)
            .map_err(|e| DirEnd::Framing(format!("server {e}")))?;
        if let Some(on) = fed.copy_in {
            // Before the chunk reaches the client: what it sends after the CopyInResponse is
            // read in copy mode.
            self.flags.copy_in.store(on, Relaxed);
        }
        let ready = f.at_boundary() && f.last_type() == b'Z' && f.ready_status() == b'I';
        self.flags.server_ready.store(ready, Relaxed);
        let observed = observe::server_chunk(self.host, self.id, f, &fed, self.flags, self.hold);
        if observed.hold {
            // Cancelled with the relay if `release` never comes.
            let _ = self.released.recv().await;
            self.flags.holding.store(false, Relaxed);
        }
        self.flags.writing.store(true, Relaxed);
        self.w.write_all(data).await.map_err(DirEnd::WriteError)?;
        // TLS: write_all returns once rustls took the plaintext; records it could not put on a
        // full socket wait in its buffer until a flush (without it the last answer can sit
        // there while the client waits for it: a hang seen under load).
        self.w.flush().await.map_err(DirEnd::WriteError)?;
        self.flags.writing.store(false, Relaxed);
        self.flags
            .client_at_boundary
            .store(self.framer.at_boundary(), Relaxed);
        self.flags.to_client.fetch_add(data.len() as u64, Relaxed);
        keep_up(self.host, observed.emitted).await;
        crate::spin::active();
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

pub(crate) async fn relay(
    host: &dyn Host,
    id: u32,
    client: Client,
    client_eof: bool,
    server_fd: OwnedFd,
    opts: RelayOptions,
    rx: &mut Inbox,
) -> Closed {
    let mut server = match Server::from_fd(server_fd) {
        Ok(s) => s,
        Err(e) => {
            let (_, mut cw) = tokio::io::split(client);
            write_and_close(&mut cw, &[]).await;
            return Closed::error(0, 0, format!("server socket: {e}"));
        }
    };
    let pooled = opts.pooled;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = server.halves();
    let mut cf = Framer::new(Side::Client, opts.observe).with_quiet(opts.quiet, !opts.hold);
    let mut sf = Framer::new(Side::Server, opts.observe);
    // Handed over after the greeting's ReadyForQuery 'I': a pooled client that leaves at once
    // leaves a reusable connection (the JavaScript relay counts it so too).
    sf.assume_ready_idle();
    let flags = Flags::with_record(opts.record);
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
                c = tokio::task::unconstrained(std::future::poll_fn(|cx| rx.poll_cheap(cx))) => W::Cmd(c),
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
    observe::relay_end(host, id, &mut cf, &flags);
    let from_client = flags.from_client.load(Relaxed);
    let mut to_client = flags.to_client.load(Relaxed);
    let client_writable = !flags.writing.load(Relaxed) && flags.client_at_boundary.load(Relaxed);
    let mut error = None;
    let mut server_closed = false;
    let mut reusable_possible = false;
    // `destroy` closes at once: no FIN first, no draining afterwards.
    let linger_after = !matches!(stop, Stop::Destroy) && !flags.client_eof.load(Relaxed);
    // The client's last words, written when the stream to it is between two messages.
    let at_boundary = client_writable && sf.at_boundary();
    let words_if = |words: &'_ [u8], ok: bool| -> Vec<u8> {
        if ok {
            words.to_vec()
        } else {
            Vec::new()
        }
    };
    let last = match stop {
        Stop::ClientGone(e) => {
            error = e;
            reusable_possible = true;
            Some(Vec::new())
        }
        Stop::ServerGone(e) => {
            error = e;
            server_closed = true;
            let expects = !cf.terminate_seen() && !flags.client_eof.load(Relaxed);
            Some(words_if(
                &opts.server_gone,
                expects && at_boundary && sf.last_type() != b'E',
            ))
        }
        Stop::Broken(e) => {
            error = Some(e);
            Some(Vec::new())
        }
        Stop::ClientFraming(e) => {
            error = Some(e);
            Some(words_if(&opts.client_framing_error, at_boundary))
        }
        Stop::Terminate(fatal) => Some(words_if(&fatal, at_boundary)),
        Stop::Destroy => None,
    };
    if let Some(words) = last {
        if write_and_close(&mut cw, &words).await {
            to_client += words.len() as u64;
        }
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
    drop(server);
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
