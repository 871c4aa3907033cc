//! What comes before TLS: libpq's 8-byte SSLRequest (or GSSENCRequest, refused with 'N'), or a
//! TLS ClientHello straight away (PostgreSQL 17's sslnegotiation=direct). Anything else is not
//! for the floor (it is TLS only) and the connection is closed.
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Ok(true): the client's next bytes are a TLS ClientHello. Ok(false): close the connection.
pub async fn negotiate(tcp: &mut TcpStream) -> io::Result<bool> {
    loop {
        // Peek, so a direct ClientHello stays in the socket for the TLS library to read.
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await? == 0 {
            return Ok(false);
        }
        if first[0] == TLS_HANDSHAKE {
            return Ok(true);
        }
        let mut head = [0u8; 8];
        tcp.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let code = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        match (len, code) {
            (8, SSL_REQUEST) => {
                tcp.write_all(b"S").await?;
                return Ok(true);
            }
            // libpq tries GSS encryption first when it has credentials; 'N' makes it ask for TLS.
            (8, GSSENC_REQUEST) => tcp.write_all(b"N").await?,
            _ => return Ok(false),
        }
    }
}
