//! One adopted connection, as one tokio task: the TLS handshake (with the 'hello' round trip to
//! JavaScript), the plaintext phase (JavaScript's commands in order, the client's bytes as
//! 'data'), then the relay (relay.rs). Every way out ends in `finish`: one 'closed' event, id
//! forgotten.
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use crate::commands::{commands, Cmd, Commands, Event, Host, Inbox, Mode, Unwritten};
pub use crate::relay::RelayOptions;
use crate::relay::{linger, relay, write_and_close};
use crate::stream::{Client, Prefixed};
use crate::tls::{cipher_name, version_name, ALPN_POSTGRESQL};

/// Large reads: a batch of pipelined messages or a big result in one read and one write.
pub(crate) const BUFFER: usize = 64 * 1024;

/// Starts a connection's task where `place` says (the task holds its count); returns the
/// sender of its commands.
pub fn spawn(
    place: crate::runtimes::Place,
    host: Arc<dyn Host>,
    id: u32,
    fd: OwnedFd,
    prefix: Vec<u8>,
    mode: Mode,
) -> Commands {
    let (tx, rx) = commands();
    let live = place.live;
    place.handle.spawn(async move {
        let _live = live;
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
pub(crate) struct Closed {
    pub(crate) from_client: u64,
    pub(crate) to_client: u64,
    pub(crate) reusable: bool,
    pub(crate) error: Option<String>,
}

impl Closed {
    pub(crate) fn error(from_client: u64, to_client: u64, e: impl ToString) -> Closed {
        Closed {
            from_client,
            to_client,
            reusable: false,
            error: Some(e.to_string()),
        }
    }
}

pub(crate) fn is_eof(e: &io::Error) -> bool {
    // A client that closes without TLS close_notify (libpq often does) ends the stream too.
    e.kind() == io::ErrorKind::UnexpectedEof
}

async fn connection(
    host: Arc<dyn Host>,
    id: u32,
    fd: OwnedFd,
    prefix: Vec<u8>,
    mode: Mode,
    mut rx: Inbox,
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
    rx: &mut Inbox,
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

/// One step of the TLS handshake, while commands are taken: `destroy` or `end` (or the channel
/// closed) abandon it; the others wait for the session.
async fn tls_step<T>(
    step: impl Future<Output = io::Result<T>>,
    rx: &mut Inbox,
) -> Result<T, Closed> {
    tokio::pin!(step);
    loop {
        let w = tokio::select! {
            r = &mut step => Wait::Done(r),
            c = rx.recv() => Wait::Cmd(c),
        };
        match w {
            Wait::Done(Ok(v)) => return Ok(v),
            Wait::Done(Err(e)) => return Err(Closed::error(0, 0, format!("TLS: {e}"))),
            Wait::Cmd(None | Some(Cmd::Destroy | Cmd::End)) => return Err(Closed::default()),
            Wait::Cmd(Some(_)) => {}
        }
    }
}

/// The TLS handshake: ClientHello, 'hello', the answer, the rest, 'secure'.
async fn handshake(
    host: &dyn Host,
    id: u32,
    io: Prefixed,
    mode: Mode,
    rx: &mut Inbox,
) -> Result<Client, Closed> {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = tls_step(acceptor, rx).await?;
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
    let tls = tls_step(start.into_stream(config), rx).await?;
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

/// Before the relay: JavaScript runs the startup and authentication over the plaintext.
async fn plaintext(
    host: &dyn Host,
    id: u32,
    mut client: Client,
    rx: &mut Inbox,
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
                // Flushed too: TLS records rustls could not put on a full socket wait in its
                // buffer until a flush.
                let write = async {
                    client.write_all(&data).await?;
                    client.flush().await
                };
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
