//! One connection: preamble, TLS handshake, then bytes both ways to the server's Unix socket.
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::preamble;
use crate::tls::Acceptor;

/// Large reads: a whole batch of pipelined messages or a big result goes in one read and one
/// TLS record series, as PgBouncer's sbuf does with its packet buffer.
const BUFFER: usize = 64 * 1024;

pub async fn connection(
    mut tcp: TcpStream,
    acceptor: &Acceptor,
    socket: &str,
    timeout: Duration,
) -> io::Result<()> {
    let go = tokio::time::timeout(timeout, preamble::negotiate(&mut tcp))
        .await
        .unwrap_or(Ok(false))?;
    if !go {
        // A malformed or non-TLS first packet: a FIN, then the socket is closed.
        let _ = tcp.shutdown().await;
        return Ok(());
    }
    match acceptor {
        #[cfg(feature = "rustls")]
        Acceptor::Rustls(a) => {
            let tls = tokio::time::timeout(timeout, a.accept(tcp))
                .await
                .map_err(|_| io::ErrorKind::TimedOut)??;
            pipe(tls, socket).await
        }
        #[cfg(feature = "openssl")]
        Acceptor::Openssl(ctx) => {
            let tls = tokio::time::timeout(timeout, crate::tls::openssl_accept(ctx, tcp))
                .await
                .map_err(|_| io::ErrorKind::TimedOut)??;
            pipe(tls, socket).await
        }
    }
}

/// Both directions in one task, no per-message work. copy_bidirectional reads a side only when
/// what it read before has been written (backpressure), flushes when a read would block, and
/// on one side's end shuts the other side's write half down.
async fn pipe<T: AsyncRead + AsyncWrite + Unpin>(mut client: T, socket: &str) -> io::Result<()> {
    let mut server = UnixStream::connect(socket).await?;
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, BUFFER, BUFFER).await?;
    Ok(())
}
