//! The two ends as single stream types: the client (plaintext or TLS, with the bytes read
//! before adoption served first) and the server (Unix or TCP socket).
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;

/// A TCP stream with some bytes in front of it (read by JavaScript before adoption).
pub struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    tcp: TcpStream,
}

impl Prefixed {
    pub fn new(prefix: Vec<u8>, tcp: TcpStream) -> Prefixed {
        Prefixed {
            prefix,
            pos: 0,
            tcp,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            if self.pos == self.prefix.len() {
                self.prefix = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

pub enum Client {
    Plain(Prefixed),
    Tls(Box<TlsStream<Prefixed>>),
}

pub enum Server {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Server {
    /// The server's socket (a duplicate owned by the addon), Unix or TCP by its address family.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Server> {
        let tcp = std::net::TcpStream::from(fd);
        // getsockname: an AF_UNIX address is not an inet one, and std says so.
        if tcp.local_addr().is_ok() {
            tcp.set_nodelay(true)?;
            tcp.set_nonblocking(true)?;
            return Ok(Server::Tcp(TcpStream::from_std(tcp)?));
        }
        let unix = std::os::unix::net::UnixStream::from(OwnedFd::from(tcp));
        unix.local_addr()?;
        unix.set_nonblocking(true)?;
        Ok(Server::Unix(UnixStream::from_std(unix)?))
    }
}

/// AsyncRead / AsyncWrite of an enum of streams, by its variants.
macro_rules! delegate_read {
    ($ty:ident $(<$lt:lifetime>)?, $($variant:ident),+) => {
        impl AsyncRead for $ty $(<$lt>)? {
            fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($ty:ident $(<$lt:lifetime>)?, $($variant:ident),+) => {
        impl AsyncWrite for $ty $(<$lt>)? {
            fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_flush(cx),)+
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($ty::$variant(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

macro_rules! delegate {
    ($ty:ident, $($variant:ident),+) => {
        delegate_read!($ty, $($variant),+);
        delegate_write!($ty, $($variant),+);
    };
}

delegate!(Client, Plain, Tls);
delegate!(Server, Unix, Tcp);

/// The server socket's two halves, borrowed: no lock between them (tokio::io::split's is paid on
/// every read and write), and no shutdown when they drop (a pooled session's socket stays open).
pub enum ServerRead<'a> {
    Unix(tokio::net::unix::ReadHalf<'a>),
    Tcp(tokio::net::tcp::ReadHalf<'a>),
}

pub enum ServerWrite<'a> {
    Unix(tokio::net::unix::WriteHalf<'a>),
    Tcp(tokio::net::tcp::WriteHalf<'a>),
}

impl Server {
    pub fn halves(&mut self) -> (ServerRead<'_>, ServerWrite<'_>) {
        match self {
            Server::Unix(s) => {
                let (r, w) = s.split();
                (ServerRead::Unix(r), ServerWrite::Unix(w))
            }
            Server::Tcp(s) => {
                let (r, w) = s.split();
                (ServerRead::Tcp(r), ServerWrite::Tcp(w))
            }
        }
    }
}

delegate_read!(ServerRead<'_>, Unix, Tcp);
delegate_write!(ServerWrite<'_>, Unix, Tcp);
