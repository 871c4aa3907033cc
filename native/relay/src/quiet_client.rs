//! The client side of quiet statements (quiet.rs), driven by the client framer (framer.rs) one
//! message at a time: which messages start from an answered state, their shape keys, and the
//! decision to relay a statement unobserved.
//!
//! Answered: the server has sent as many ReadyForQuery as the client sent Query, Sync and
//! FunctionCall messages, and the client sent nothing else since the last of them. Then:
//! - a simple Query is keyed: a known quiet shape is taken out of the observe buffer (the relay
//!   keeps its bytes in case its answer fails); so is a summarized shape (with `groups`: never
//!   with strict durability, whose held replies wait for records JavaScript writes), whose text
//!   is kept for its summary; any other is preceded by a key record;
//! - with `groups` (no strict durability), an extended-protocol group is held apart until its
//!   Sync: Parse of the unnamed statement, Bind of the unnamed portal (to the group's unnamed
//!   statement or to a named one whose Parse was keyed), Describe, Execute of the unnamed portal
//!   without a row limit, Sync. Its statement's key in the set: the group goes unobserved (as a
//!   quiet Query); anything else in it, or no key: it is released, in order, observed.
//!
//! Every keyed Parse is preceded by a key record too; named ones are remembered by name
//! (forgotten on Close, and all of them on any Query or FunctionCall, which may PREPARE or
//! DEALLOCATE by SQL). A quiet group replaces the unnamed statement and portal without
//! JavaScript seeing it: the next observed client bytes then start with an unnamed record
//! `0x00, Int32 8, Int32 'u'`, and JavaScript forgets them.
use std::collections::HashMap;
use std::sync::Arc;

use crate::quiet::{shape_key_in, Known, QuietSet, Shape, ShapeKey, MAX_KEYED};
use crate::record::ShapeParts;

/// Named statements remembered per session.
const MAX_NAMED: usize = 256;

pub const UNNAMED_RECORD: [u8; 9] = [0, 0, 0, 0, 8, 0, 0, 0, b'u'];

/// A summarized Query taken out: its shape's number and record parts, and its text.
pub struct QuietSummary {
    pub shape: u32,
    pub parts: Option<Arc<ShapeParts>>,
    pub text: Vec<u8>,
}

#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    key: Option<ShapeKey>,
    /// The unnamed statement was parsed in the group (a Bind to it is the group's statement).
    parsed: bool,
    bound: bool,
    executed: bool,
}

pub struct ClientQuiet {
    set: Arc<QuietSet>,
    groups: bool,
    pub sync_points: u64,
    pub answered: u64,
    open: bool,
    keyed: bool,
    group_start: bool,
    group: Option<Group>,
    named: HashMap<Vec<u8>, ShapeKey>,
    unnamed_dirty: bool,
    /// The last quiet statement's bytes (a Query, or a group), for an answer that fails.
    pub quiet_query: Vec<u8>,
    /// The last quiet statement's summary (a summarized Query).
    pub quiet_summary: Option<QuietSummary>,
    /// In the chunk being fed: a quiet statement was taken out / a held group was released.
    pub quieted: bool,
    pub released: bool,
    /// Where shape keys are made (shape_key_in).
    scratch: Vec<u8>,
    /// What this session learned of `set`.
    known: Known,
}

/// A C string at the start of `b`: (its bytes, what follows its NUL).
fn cstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let nul = b.iter().position(|&c| c == 0)?;
    Some((&b[..nul], &b[nul + 1..]))
}

fn key_record(key: &ShapeKey) -> [u8; 25] {
    let mut r = [0u8; 25];
    r[1..5].copy_from_slice(&24i32.to_be_bytes());
    r[5..9].copy_from_slice(&i32::from(b'k').to_be_bytes());
    r[9..].copy_from_slice(key);
    r
}

impl ClientQuiet {
    pub fn new(set: Arc<QuietSet>, groups: bool) -> ClientQuiet {
        ClientQuiet {
            set,
            groups,
            sync_points: 0,
            answered: 0,
            open: false,
            keyed: false,
            group_start: false,
            group: None,
            named: HashMap::new(),
            unnamed_dirty: false,
            quiet_query: Vec::new(),
            quiet_summary: None,
            quieted: false,
            released: false,
            scratch: Vec::new(),
            known: Known::default(),
        }
    }

    /// A group is held apart (not yet in the observe buffer).
    pub fn group_pending(&self) -> bool {
        self.group.is_some()
    }

    /// A message's header was read; `out` is the observe buffer (a held group that this message
    /// ends is released into it first).
    pub fn start(&mut self, code: u8, length: i32, out: &mut Vec<u8>) {
        let answered = !self.open && self.sync_points == self.answered;
        self.keyed = code == b'Q' && answered && length as usize <= MAX_KEYED + 5;
        self.group_start = self.groups
            && answered
            && self.group.is_none()
            && matches!(code, b'P' | b'B' | b'D' | b'E');
        if self.group.is_some() && !matches!(code, b'P' | b'B' | b'D' | b'E' | b'S') {
            self.release(out);
        }
        let sync = matches!(code, b'Q' | b'S' | b'F');
        if sync {
            self.sync_points += 1;
        }
        self.open = !sync;
        if matches!(code, b'Q' | b'F') {
            self.named.clear();
        }
    }

    /// A whole message is at `out[at..]`. True when it was taken out of `out` (quiet, or held
    /// in a group).
    pub fn finish(&mut self, code: u8, out: &mut Vec<u8>, at: usize) -> bool {
        if std::mem::take(&mut self.group_start) {
            self.group = Some(Group::default());
        }
        if code == b'Q' && std::mem::take(&mut self.keyed) {
            return self.query(out, at);
        }
        let body = &out[at + 5..];
        let parsed = if code == b'P' { self.parse(body) } else { None };
        if code == b'C' {
            if let Some((b'S', rest)) = body.split_first() {
                if let Some((name, _)) = cstr(rest) {
                    self.named.remove(name);
                }
            }
        }
        let step = self
            .group
            .as_ref()
            .and_then(|g| fit(g, &self.named, code, body, parsed));
        if let Some(k) = parsed {
            out.splice(at..at, key_record(&k));
        }
        if self.group.is_none() {
            return false;
        }
        let Some(step) = step else {
            // The message stays where it is; what the group held goes before it.
            let rest = out.split_off(at);
            self.release(out);
            out.extend_from_slice(&rest);
            return false;
        };
        let msg = out.split_off(at);
        let Some(g) = self.group.as_mut() else {
            return false;
        };
        g.buf.extend_from_slice(&msg);
        match step {
            Step::Parse(k) => {
                g.parsed = true;
                g.key = Some(k);
            }
            Step::Bind(k) => {
                g.bound = true;
                g.key = Some(k);
            }
            Step::Execute => g.executed = true,
            Step::Describe => {}
            Step::Sync => {
                let Some(g) = self.group.take() else {
                    return false;
                };
                // Only quiet shapes: a group's summary is not made (its statement is observed).
                if g.key.is_some_and(|k| {
                    matches!(
                        self.set.lookup_known(&mut self.known, &k),
                        Some(Shape::Quiet)
                    )
                }) {
                    self.take_quiet(&g.buf);
                } else {
                    out.extend_from_slice(&g.buf);
                    self.released = true;
                }
            }
        }
        true
    }

    /// What a held group holds goes to `out`, observed.
    pub fn release(&mut self, out: &mut Vec<u8>) {
        if let Some(g) = self.group.take() {
            out.extend_from_slice(&g.buf);
            self.released = true;
        }
    }

    /// Client bytes about to be observed: after an unobserved group, the unnamed record first.
    pub fn prefix(&mut self, buf: Vec<u8>) -> Vec<u8> {
        if !std::mem::take(&mut self.unnamed_dirty) {
            return buf;
        }
        let mut b = Vec::with_capacity(UNNAMED_RECORD.len() + buf.len());
        b.extend_from_slice(&UNNAMED_RECORD);
        b.extend_from_slice(&buf);
        b
    }

    /// `msg` is the quiet statement: kept in `quiet_query`, whose buffer serves each quiet
    /// statement in turn (no allocation per statement once it has grown).
    fn take_quiet(&mut self, msg: &[u8]) {
        self.quiet_query.clear();
        // A group replaces the unnamed statement and portal (a Query does too, with its own).
        if self.unnamed_dirty {
            self.quiet_query.extend_from_slice(&UNNAMED_RECORD);
        }
        self.quiet_query.extend_from_slice(msg);
        self.unnamed_dirty = true;
        self.quieted = true;
        self.quiet_summary = None;
    }

    /// A keyed Query: true when quiet (taken out), else its key record goes before it.
    fn query(&mut self, out: &mut Vec<u8>, at: usize) -> bool {
        let Some(key) = shape_key_in(&out[at + 5..], &mut self.scratch) else {
            return false;
        };
        match self.set.lookup_known(&mut self.known, &key) {
            Some(Shape::Quiet) => {
                self.take_quiet(&out[at..]);
                out.truncate(at);
                return true;
            }
            Some(Shape::Summarized(shape, parts)) if self.groups => {
                let msg = &out[at..];
                // The body is the text and its NUL (a keyed text has no NUL inside).
                let text = msg[5..msg.len().saturating_sub(1).max(5)].to_vec();
                self.take_quiet(msg);
                out.truncate(at);
                self.quiet_summary = Some(QuietSummary { shape, parts, text });
                return true;
            }
            _ => {}
        }
        out.splice(at..at, key_record(&key));
        false
    }

    /// A Parse's shape key, if it has one; a named one is remembered by name.
    fn parse(&mut self, body: &[u8]) -> Option<ShapeKey> {
        let (name, rest) = cstr(body)?;
        let key = cstr(rest)
            .filter(|(text, _)| text.len() <= MAX_KEYED)
            .and_then(|(text, _)| shape_key_in(&rest[..=text.len()], &mut self.scratch));
        if !name.is_empty() {
            self.named.remove(name);
            if let Some(k) = key.filter(|_| self.named.len() < MAX_NAMED) {
                self.named.insert(name.to_vec(), k);
            }
        }
        key
    }
}

/// What a message does in a held group, or None when it cannot be in one.
enum Step {
    Parse(ShapeKey),
    Bind(ShapeKey),
    Describe,
    Execute,
    Sync,
}

fn fit(
    g: &Group,
    named: &HashMap<Vec<u8>, ShapeKey>,
    code: u8,
    body: &[u8],
    parsed: Option<ShapeKey>,
) -> Option<Step> {
    match code {
        // The unnamed statement, once, before the Bind.
        b'P' if body.first() == Some(&0) && !g.parsed && !g.bound => parsed.map(Step::Parse),
        b'B' => {
            let (portal, rest) = cstr(body)?;
            let (stmt, _) = cstr(rest)?;
            if !portal.is_empty() || g.bound {
                return None;
            }
            let key = if stmt.is_empty() {
                g.key.filter(|_| g.parsed)
            } else if g.parsed {
                None
            } else {
                named.get(stmt).copied()
            };
            key.map(Step::Bind)
        }
        b'D' => Some(Step::Describe),
        // The unnamed portal, run to completion, once.
        b'E' => {
            let (portal, rest) = cstr(body)?;
            (portal.is_empty() && g.bound && !g.executed && rest == [0, 0, 0, 0])
                .then_some(Step::Execute)
        }
        b'S' => g.executed.then_some(Step::Sync),
        _ => None,
    }
}
