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
//! Quiet statements (quiet.rs): the client side's decisions are quiet_client.rs's, fed one
//! message at a time; the server side drops the answer to a quiet statement (up to and including
//! its ReadyForQuery) from the observe buffer, or observes it from its ErrorResponse on.
//!
//! Nothing here panics on any input: lengths are checked before use, indexes stay in bounds.

use crate::quiet_client::ClientQuiet;

/// The largest length field accepted (PostgreSQL's own limit for a message is 1 GiB).
pub const MAX_LENGTH: u32 = 1 << 30;
/// A run record's byte count stays an Int32.
const RUN_MAX_BYTES: u64 = i32::MAX as u64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    Client,
    Server,
}

/// What one chunk held that the relay acts on at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Client side: where in the chunk the first Terminate ('X') message's type byte is.
    pub terminate_at: Option<usize>,
    /// Server side: the chunk started (Some(true): CopyInResponse or CopyBothResponse) or ended
    /// (Some(false): CommandComplete, ErrorResponse, ReadyForQuery) the server's reading of the
    /// client's messages in copy mode; the last of them in the chunk.
    pub copy_in: Option<bool>,
    /// Client side: a quiet statement was passed on uncopied (its answer is the server's next).
    pub quieted: bool,
    /// Client side: a held extended-protocol group was released into the observe buffer.
    pub released: bool,
    /// Server side: the answer to a quiet Query ended in this chunk.
    pub quiet_end: Option<QuietEnd>,
}

/// How the answer to a quiet Query ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuietEnd {
    /// Its ReadyForQuery, every message of it dropped.
    Answered,
    /// An ErrorResponse: from it on the answer is observed (the relay hands JavaScript the Query
    /// first, so that the statement audit and the SQL watch see the failure as they would have).
    Failed,
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
    /// Client side, observed sessions: the server reads the client's messages in copy mode.
    copy_in: bool,
    /// Server side: the copy transition of the chunk being fed.
    copy_change: Option<bool>,
    /// Client side of an observed session with a quiet set.
    cq: Option<ClientQuiet>,
    /// Server side: ReadyForQuery messages finished.
    sync_points: u64,
    /// Server side: the answer to a quiet Query is being dropped; `dropping`: the current message.
    quiet_answer: bool,
    dropping: bool,
    quiet_end: Option<QuietEnd>,
    /// Server side: the quiet answer's CommandComplete tag is wanted (a summarized statement);
    /// `tag_capture`: the current message is one; `quiet_tag`: the last one's tag.
    tag_wanted: bool,
    tag_capture: bool,
    quiet_tag: Option<Vec<u8>>,
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
            copy_in: false,
            copy_change: None,
            cq: None,
            sync_points: 0,
            quiet_answer: false,
            dropping: false,
            quiet_end: None,
            tag_wanted: false,
            tag_capture: false,
            quiet_tag: None,
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

    /// Client side: the server now reads (or no longer reads) the client's messages in copy
    /// mode. While it does, an observed session's client may send only CopyData, CopyDone,
    /// CopyFail, Sync, Flush and Terminate: anything else is a framing error (the statement
    /// audit could not follow it: PostgreSQL would refuse it and then run what comes after).
    pub fn set_copy_in(&mut self, on: bool) {
        self.copy_in = on;
    }

    /// Client side: still in copy mode after the last chunk (a CopyDone or CopyFail ends it).
    pub fn copy_in(&self) -> bool {
        self.copy_in
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
        self.copy_change = None;
        self.quiet_end = None;
        if let Some(cq) = self.cq.as_mut() {
            cq.quieted = false;
            cq.released = false;
        }
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
                if self.observe && !self.skipping && !self.dropping {
                    self.out.extend_from_slice(body);
                }
                if self.tag_capture {
                    self.capture_tag(body);
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
        fed.copy_in = self.copy_change;
        fed.quiet_end = self.quiet_end;
        if let Some(cq) = &self.cq {
            fed.quieted = cq.quieted;
            fed.released = cq.released;
        }
        Ok(fed)
    }

    fn start_message(&mut self, at: u64) -> Result<(), FrameError> {
        let code = self.hdr[0];
        let length = i32::from_be_bytes([self.hdr[1], self.hdr[2], self.hdr[3], self.hdr[4]]);
        let bad_length = length < 4 || length as u32 > MAX_LENGTH;
        let intruder = !bad_length
            && self.side == Side::Client
            && self.observe
            && self.copy_in
            && !matches!(code, b'd' | b'c' | b'f' | b'S' | b'H' | b'X');
        let in_quiet = !bad_length
            && self.side == Side::Server
            && self.quiet_answer
            && matches!(code, b'G' | b'H' | b'W');
        // Records in the observe buffer are type 0x00 messages: one from a peer would pass as
        // the addon's own (a forged key, unnamed or skip-run record).
        let forged = !bad_length && self.observe && code == 0x00;
        if bad_length || intruder || in_quiet || forged {
            let e = FrameError {
                offset: at,
                msg_type: code,
                length,
                during_copy: intruder,
                in_quiet,
                forged,
            };
            self.failed = Some(e.clone());
            return Err(e);
        }
        match (self.side, code) {
            (Side::Client, b'c' | b'f') => self.copy_in = false,
            (Side::Server, b'G' | b'W') => self.copy_change = Some(true),
            (Side::Server, b'C' | b'E' | b'Z') => self.copy_change = Some(false),
            _ => {}
        }
        self.remaining = length as u32 - 4;
        self.body_read = 0;
        if self.side == Side::Client && code == b'X' {
            self.terminate = true;
        }
        if let Some(cq) = self.cq.as_mut() {
            cq.start(code, length, &mut self.out);
        }
        if self.quiet_answer && code == b'E' {
            self.quiet_answer = false;
            self.quiet_end = Some(QuietEnd::Failed);
        }
        self.tag_capture = self.quiet_answer && self.tag_wanted && code == b'C';
        if self.tag_capture {
            self.quiet_tag = Some(Vec::new());
        }
        self.dropping = self.quiet_answer;
        self.skipping =
            !self.dropping && (code == b'd' || (self.side == Side::Server && code == b'D'));
        if self.observe && !self.dropping {
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
        if self.side == Side::Server && code == b'Z' {
            self.sync_points += 1;
            if self.quiet_answer {
                self.quiet_answer = false;
                self.quiet_end = Some(QuietEnd::Answered);
            }
        }
        self.tag_capture = false;
        if self.dropping {
            self.dropping = false;
            self.body_read = 0;
            return;
        }
        if !self.skipping {
            if let Some(cq) = self.cq.as_mut() {
                if cq.finish(code, &mut self.out, self.copy_start) {
                    self.body_read = 0;
                    return;
                }
            }
        }
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
        let in_copy = self.hdr_len == 5 && !self.skipping && !self.dropping;
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
        let mut buf = std::mem::replace(&mut self.out, tail);
        self.copy_start = 0;
        if let Some(cq) = self.cq.as_mut() {
            buf = cq.prefix(buf);
        }
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

#[path = "framer_quiet.rs"]
mod quiet_api;

#[path = "framer_error.rs"]
mod error;
pub use error::FrameError;

#[cfg(test)]
#[path = "framer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "framer_quiet_tests.rs"]
mod quiet_tests;

#[cfg(test)]
#[path = "framer_quiet_random_tests.rs"]
mod quiet_random_tests;
