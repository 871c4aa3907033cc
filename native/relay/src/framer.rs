//! PostgreSQL message framing, headers only, as PgBouncer's sbuf does it: a type byte and an
//! Int32 length (≥ 4, counting itself, at most 1 GiB) per message; the body is skipped, not
//! parsed. One `Framer` per direction of a relayed session, fed every chunk read, in order.
//!
//! It tracks what the relay decides on (at a message boundary, the last message type, the last
//! ReadyForQuery status, the client's Terminate) and, with `observe`, builds the observe buffer
//! of `src/gateway/native/addon.ts`: every message whole and in order, except that each run of
//! DataRow ('D', server side only: a client 'D' is Describe) and CopyData ('d', both sides)
//! messages is one 17-byte record `0x00, Int32 16, Int32 code, Int32 count, Int32 bytes`.
//!
//! Records are per chunk: a run still going at the end of a chunk is recorded with the
//! messages that completed in that chunk, and goes on as a new record in the next. A skipped
//! message is counted in the chunk where its last byte is; a copied message is delivered in the
//! chunk where its last byte is (its first bytes wait here, copied once).
//!
//! Nothing here panics on any input: lengths are checked before use, indexes stay in bounds.
use std::fmt;

/// The largest length field accepted (PostgreSQL's own limit for a message is 1 GiB).
pub const MAX_LENGTH: u32 = 1 << 30;
/// A run record's byte count stays an Int32.
const RUN_MAX_BYTES: u64 = i32::MAX as u64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Client,
    Server,
}

/// A header that is not a PostgreSQL message: the stream cannot be followed any further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Offset of the message's type byte in the direction's stream.
    pub offset: u64,
    pub msg_type: u8,
    pub length: i32,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "framing error: message type 0x{:02x} with length {} at byte {}",
            self.msg_type, self.length, self.offset
        )
    }
}

/// What one chunk held that the relay acts on at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Client side: where in the chunk the first Terminate ('X') message's type byte is.
    pub terminate_at: Option<usize>,
}

/// A chunk's observe buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    pub buf: Vec<u8>,
    /// At least one message was copied (not only run records).
    pub copied: bool,
}

pub struct Framer {
    side: Side,
    observe: bool,
    /// The current header; `hdr_len` 0 means at a message boundary, 5 means in the body.
    hdr: [u8; 5],
    hdr_len: usize,
    /// Body bytes of the current message still to come.
    remaining: u32,
    /// Body bytes of the current message already read.
    body_read: u32,
    skipping: bool,
    /// Where the current copied message starts in `out` (its first bytes wait there).
    copy_start: usize,
    last_type: u8,
    ready_status: u8,
    terminate: bool,
    /// Bytes fed so far.
    offset: u64,
    run_code: u8,
    run_count: u32,
    run_bytes: u64,
    out: Vec<u8>,
    copied: bool,
    failed: Option<FrameError>,
}

impl Framer {
    pub fn new(side: Side, observe: bool) -> Framer {
        Framer {
            side,
            observe,
            hdr: [0; 5],
            hdr_len: 0,
            remaining: 0,
            body_read: 0,
            skipping: false,
            copy_start: 0,
            last_type: 0,
            ready_status: 0,
            terminate: false,
            offset: 0,
            run_code: 0,
            run_count: 0,
            run_bytes: 0,
            out: Vec::new(),
            copied: false,
            failed: None,
        }
    }

    /// At a message boundary: every byte fed so far belongs to a whole message.
    pub fn at_boundary(&self) -> bool {
        self.hdr_len == 0 && self.failed.is_none()
    }

    /// The type of the last whole message (0: none yet).
    pub fn last_type(&self) -> u8 {
        self.last_type
    }

    /// The status byte of the last whole ReadyForQuery (0: none yet).
    pub fn ready_status(&self) -> u8 {
        self.ready_status
    }

    /// The stream starts where the gateway's greeting left it: after ReadyForQuery 'I' (the
    /// gateway sent it to the client itself, before the relay).
    pub fn assume_ready_idle(&mut self) {
        self.last_type = b'Z';
        self.ready_status = b'I';
    }

    /// A Terminate ('X') was read (client side).
    pub fn terminate_seen(&self) -> bool {
        self.terminate
    }

    /// Frames one chunk. After an error every later call returns it again.
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut fed = Fed::default();
        let mut i = 0;
        while i < data.len() {
            if self.hdr_len < 5 {
                if self.hdr_len == 0
                    && self.side == Side::Client
                    && data[i] == b'X'
                    && fed.terminate_at.is_none()
                {
                    fed.terminate_at = Some(i);
                }
                let take = (5 - self.hdr_len).min(data.len() - i);
                self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[i..i + take]);
                self.hdr_len += take;
                i += take;
                if self.hdr_len == 5 {
                    // The stream offset just past the header, less the header.
                    self.start_message(self.offset + i as u64 - 5)?;
                    if self.remaining == 0 {
                        self.finish_message();
                    }
                }
            } else {
                let take = (self.remaining as usize).min(data.len() - i);
                let body = &data[i..i + take];
                if self.body_read == 0 && self.hdr[0] == b'Z' {
                    if let Some(&status) = body.first() {
                        self.ready_status = status;
                    }
                }
                if self.observe && !self.skipping {
                    self.out.extend_from_slice(body);
                }
                // take ≤ remaining, a u32.
                self.remaining -= take as u32;
                self.body_read += take as u32;
                i += take;
                if self.remaining == 0 {
                    self.finish_message();
                }
            }
        }
        self.offset += data.len() as u64;
        Ok(fed)
    }

    fn start_message(&mut self, at: u64) -> Result<(), FrameError> {
        let code = self.hdr[0];
        let length = i32::from_be_bytes([self.hdr[1], self.hdr[2], self.hdr[3], self.hdr[4]]);
        if length < 4 || length as u32 > MAX_LENGTH {
            let e = FrameError {
                offset: at,
                msg_type: code,
                length,
            };
            self.failed = Some(e.clone());
            return Err(e);
        }
        self.remaining = length as u32 - 4;
        self.body_read = 0;
        if self.side == Side::Client && code == b'X' {
            self.terminate = true;
        }
        self.skipping = code == b'd' || (self.side == Side::Server && code == b'D');
        if self.observe {
            if self.skipping {
                if self.run_count > 0 && self.run_code != code {
                    self.flush_run();
                }
            } else {
                self.flush_run();
                self.copy_start = self.out.len();
                // Grows as the body comes: a length field alone never allocates much.
                self.out.reserve((length as usize + 1).min(64 * 1024));
                self.out.extend_from_slice(&self.hdr);
            }
        }
        Ok(())
    }

    fn finish_message(&mut self) {
        let code = self.hdr[0];
        self.last_type = code;
        self.hdr_len = 0;
        if self.observe {
            if self.skipping {
                let bytes = 5 + u64::from(self.body_read);
                if self.run_count > 0
                    && (self.run_code != code || self.run_bytes + bytes > RUN_MAX_BYTES)
                {
                    self.flush_run();
                }
                self.run_code = code;
                self.run_count += 1;
                self.run_bytes += bytes;
            } else {
                self.copied = true;
            }
        }
        self.skipping = false;
        self.body_read = 0;
    }

    fn flush_run(&mut self) {
        if self.run_count == 0 {
            return;
        }
        self.out.push(0);
        self.out.extend_from_slice(&16i32.to_be_bytes());
        self.out
            .extend_from_slice(&i32::from(self.run_code).to_be_bytes());
        self.out
            .extend_from_slice(&(self.run_count as i32).to_be_bytes());
        self.out
            .extend_from_slice(&(self.run_bytes as i32).to_be_bytes());
        self.run_count = 0;
        self.run_bytes = 0;
    }

    /// The observe buffer of what was fed since the last call (whole messages and run
    /// records), or None when there is nothing whole. A copied message still coming stays.
    pub fn take_observed(&mut self) -> Option<Observed> {
        if !self.observe {
            return None;
        }
        self.flush_run();
        let in_copy = self.hdr_len == 5 && !self.skipping;
        let whole_end = if in_copy {
            self.copy_start
        } else {
            self.out.len()
        };
        if whole_end == 0 {
            return None;
        }
        let tail = if in_copy {
            self.out.split_off(whole_end)
        } else {
            Vec::new()
        };
        let buf = std::mem::replace(&mut self.out, tail);
        self.copy_start = 0;
        let copied = std::mem::replace(&mut self.copied, false);
        Some(Observed { buf, copied })
    }
}

/// Walks an observe buffer: (type, whole message) for copied messages, (0, record) for runs.
/// For tests and the fuzz target.
pub fn records(buf: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= buf.len() {
        let len = i32::from_be_bytes([buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]]) as usize;
        let end = (i + 1 + len).min(buf.len());
        out.push((buf[i], &buf[i..end]));
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(code: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![code];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn run(code: u8, count: i32, bytes: i32) -> Vec<u8> {
        let mut r = vec![0];
        for v in [16, i32::from(code), count, bytes] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        r
    }

    /// A server stream: RowDescription, 3 DataRows, CommandComplete, ReadyForQuery 'I'.
    fn server_stream() -> (Vec<u8>, Vec<u8>) {
        let t = msg(b'T', b"\0\x01a\0rowdesc");
        let d1 = msg(b'D', b"\0\x01\0\0\0\x01x");
        let d2 = msg(b'D', &[7u8; 300]);
        let d3 = msg(b'D', b"");
        let c = msg(b'C', b"SELECT 3\0");
        let z = msg(b'Z', b"I");
        let stream = [
            t.clone(),
            d1.clone(),
            d2.clone(),
            d3.clone(),
            c.clone(),
            z.clone(),
        ]
        .concat();
        let rows = (d1.len() + d2.len() + d3.len()) as i32;
        let expect = [t, run(b'D', 3, rows), c, z].concat();
        (stream, expect)
    }

    /// Merges per-chunk observe buffers the way JavaScript would read them: consecutive run
    /// records of one code summed.
    fn merged(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        let mut pending: Option<(u8, i32, i32)> = None;
        for c in chunks {
            for (code, rec) in records(c) {
                if code == 0 {
                    let rc = i32::from_be_bytes([rec[5], rec[6], rec[7], rec[8]]) as u8;
                    let n = i32::from_be_bytes([rec[9], rec[10], rec[11], rec[12]]);
                    let b = i32::from_be_bytes([rec[13], rec[14], rec[15], rec[16]]);
                    pending = match pending {
                        Some((pc, pn, pb)) if pc == rc => Some((pc, pn + n, pb + b)),
                        Some((pc, pn, pb)) => {
                            out.extend(run(pc, pn, pb));
                            Some((rc, n, b))
                        }
                        None => Some((rc, n, b)),
                    };
                } else {
                    if let Some((pc, pn, pb)) = pending.take() {
                        out.extend(run(pc, pn, pb));
                    }
                    out.extend_from_slice(rec);
                }
            }
        }
        if let Some((pc, pn, pb)) = pending {
            out.extend(run(pc, pn, pb));
        }
        out
    }

    #[test]
    fn whole_stream() {
        let (stream, expect) = server_stream();
        let mut f = Framer::new(Side::Server, true);
        f.feed(&stream).unwrap();
        let o = f.take_observed().unwrap();
        assert_eq!(o.buf, expect);
        assert!(o.copied);
        assert!(f.at_boundary());
        assert_eq!(f.last_type(), b'Z');
        assert_eq!(f.ready_status(), b'I');
        assert_eq!(f.take_observed(), None);
    }

    #[test]
    fn split_at_every_byte() {
        let (stream, expect) = server_stream();
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut f = Framer::new(Side::Server, true);
                let mut chunks = Vec::new();
                for part in [&stream[..a], &stream[a..b], &stream[b..]] {
                    f.feed(part).unwrap();
                    if let Some(o) = f.take_observed() {
                        // Every chunk's buffer holds whole messages and records only.
                        let mut n = 0;
                        for (_, r) in records(&o.buf) {
                            n += r.len();
                        }
                        assert_eq!(n, o.buf.len());
                        chunks.push(o.buf);
                    }
                }
                assert_eq!(merged(&chunks), expect, "split at {a} and {b}");
                assert!(f.at_boundary());
                assert_eq!(f.ready_status(), b'I');
            }
        }
    }

    #[test]
    fn boundary_and_last_type() {
        let mut f = Framer::new(Side::Server, false);
        let z = msg(b'Z', b"T");
        f.feed(&z[..3]).unwrap();
        assert!(!f.at_boundary());
        assert_eq!(f.last_type(), 0);
        f.feed(&z[3..5]).unwrap();
        assert!(!f.at_boundary());
        f.feed(&z[5..]).unwrap();
        assert!(f.at_boundary());
        assert_eq!(f.last_type(), b'Z');
        assert_eq!(f.ready_status(), b'T');
        let e = msg(b'E', b"SFATAL\0");
        f.feed(&e).unwrap();
        assert_eq!(f.last_type(), b'E');
        assert_eq!(f.ready_status(), b'T');
        assert_eq!(f.take_observed(), None, "no observe: nothing copied");
    }

    #[test]
    fn client_terminate_and_describe() {
        let mut f = Framer::new(Side::Client, true);
        let q = msg(b'Q', b"select 1\0");
        let d = msg(b'D', b"S\0");
        let cd = msg(b'd', b"abc");
        let x = msg(b'X', b"");
        let stream = [q.clone(), d.clone(), cd.clone(), cd.clone(), x.clone()].concat();
        let fed = f.feed(&stream).unwrap();
        assert_eq!(fed.terminate_at, Some(q.len() + d.len() + 2 * cd.len()));
        assert!(f.terminate_seen());
        let o = f.take_observed().unwrap();
        assert_eq!(o.buf, [q, d, run(b'd', 2, 2 * cd.len() as i32), x].concat());
        // A client 'X' split after its type byte is seen at once.
        let mut f = Framer::new(Side::Client, false);
        assert_eq!(f.feed(b"X").unwrap().terminate_at, Some(0));
        assert!(!f.terminate_seen());
        f.feed(&[0, 0, 0, 4]).unwrap();
        assert!(f.terminate_seen());
        assert!(f.at_boundary());
    }

    #[test]
    fn runs_of_two_codes_and_chunk_records() {
        let mut f = Framer::new(Side::Server, true);
        let d = msg(b'D', b"12");
        let cd = msg(b'd', b"345");
        f.feed(&[d.clone(), d.clone(), cd.clone()].concat())
            .unwrap();
        assert_eq!(
            f.take_observed().unwrap(),
            Observed {
                buf: [run(b'D', 2, 14), run(b'd', 1, 8)].concat(),
                copied: false
            }
        );
        // A DataRow split across chunks counts in the chunk where it ends.
        f.feed(&d[..4]).unwrap();
        assert_eq!(f.take_observed(), None);
        f.feed(&d[4..]).unwrap();
        assert_eq!(f.take_observed().unwrap().buf, run(b'D', 1, 7));
    }

    #[test]
    fn big_copied_message_is_held_until_whole() {
        let mut f = Framer::new(Side::Client, true);
        let big = msg(b'Q', &vec![b'a'; 3 << 20]);
        let z = msg(b'S', b"");
        let stream = [big.clone(), z.clone()].concat();
        let mut got = Vec::new();
        for c in stream.chunks(65536) {
            f.feed(c).unwrap();
            if let Some(o) = f.take_observed() {
                got.push(o.buf);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0], stream);
    }

    #[test]
    fn framing_errors() {
        for bad in [
            &[b'Q', 0, 0, 0, 3][..],
            &[b'Q', 0xff, 0xff, 0xff, 0xff],
            &[b'D', 0x40, 0, 0, 1],
        ] {
            for split in 0..bad.len() {
                let mut f = Framer::new(Side::Server, true);
                let r = f.feed(&bad[..split]).and_then(|_| f.feed(&bad[split..]));
                assert!(r.is_err(), "{bad:?}");
                assert!(f.feed(b"Z\0\0\0\x05I").is_err(), "stays failed");
                assert!(!f.at_boundary());
            }
        }
        // 1 GiB exactly is accepted (the body just has not come).
        let mut f = Framer::new(Side::Server, false);
        f.feed(&[b'D', 0x40, 0, 0, 0]).unwrap();
        let e = Framer::new(Side::Client, false)
            .feed(&[0, 0, 0, 0, 0])
            .unwrap_err();
        assert!(e.to_string().contains("length 0"));
        let mut f = Framer::new(Side::Client, false);
        f.feed(b"S\0\0").unwrap();
        let e = f.feed(b"\0\x04Q\0\0\0\x01").unwrap_err();
        assert_eq!((e.offset, e.msg_type, e.length), (5, b'Q', 1));
    }

    /// A small xorshift generator: random streams in random splits never panic, and framing
    /// a stream in pieces gives what framing it whole gives.
    #[test]
    fn random_bytes_random_splits() {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for round in 0..4000 {
            let n = (next() % 400) as usize;
            let mut stream: Vec<u8> = Vec::with_capacity(n);
            if round % 2 == 0 {
                // Mostly valid messages with small bodies, sometimes garbage.
                while stream.len() < n {
                    let code = [b'D', b'd', b'Z', b'E', b'C', b'X', b'Q'][(next() % 7) as usize];
                    let len = (next() % 20) as usize;
                    stream.extend(msg(code, &vec![b'I'; len]));
                    if next() % 50 == 0 {
                        stream.push((next() & 0xff) as u8);
                    }
                }
            } else {
                stream.extend((0..n).map(|_| (next() & 0xff) as u8));
            }
            for side in [Side::Client, Side::Server] {
                let mut whole = Framer::new(side, true);
                let rw = whole.feed(&stream);
                let ow = whole.take_observed().map(|o| o.buf).unwrap_or_default();
                let mut parts = Framer::new(side, true);
                let mut chunks = Vec::new();
                let mut i = 0;
                let mut rp = Ok(Fed::default());
                while i < stream.len() {
                    let k = (next() % 40) as usize + 1;
                    let end = (i + k).min(stream.len());
                    rp = parts.feed(&stream[i..end]);
                    if rp.is_err() {
                        break;
                    }
                    if let Some(o) = parts.take_observed() {
                        chunks.push(o.buf);
                    }
                    i = end;
                }
                assert_eq!(rw.is_err(), rp.is_err());
                if rw.is_ok() {
                    assert_eq!(merged(&chunks), merged(&[ow]));
                    assert_eq!(whole.at_boundary(), parts.at_boundary());
                    assert_eq!(whole.last_type(), parts.last_type());
                    assert_eq!(whole.ready_status(), parts.ready_status());
                    assert_eq!(whole.terminate_seen(), parts.terminate_seen());
                }
            }
        }
    }
}
