//! What each direction of a relay hands JavaScript after framing a chunk ('observe' events), with
//! quiet statements (quiet.rs, quiet_client.rs) in between: a quiet statement's answer is not
//! observed; what the client sends while it is pending is observed after it (`withheld`), the
//! statement itself first when the answer fails; while an extended-protocol group is held apart,
//! the server's early answers wait for its decision (`server_withheld`). Each direction's bytes go
//! with the time the relay saw them (seen.rs). A summarized statement's answer that succeeded
//! becomes a 'summary' event, before what was withheld meanwhile.
use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::conn::{Event, Host};
use crate::framer::{records, Fed, Framer, QuietEnd};
use crate::record::{self, SessionParts, ShapeParts};
use crate::seen::{now_ms, Seen};

/// Flags shared by the two directions of a relay (one task: relaxed atomics are enough).
#[derive(Default)]
pub(crate) struct Flags {
    /// The client half-closed (or closed).
    pub client_eof: AtomicBool,
    /// PgBouncer's "ready": set by a whole ReadyForQuery 'I' ending a server chunk at a
    /// boundary, cleared by any client byte passed to the server.
    pub server_ready: AtomicBool,
    /// A server chunk is being written to the client.
    pub writing: AtomicBool,
    /// Every byte written to the client so far ends a whole server message.
    pub client_at_boundary: AtomicBool,
    /// A server chunk waits for `release`.
    pub holding: AtomicBool,
    /// The server reads the client's messages in copy mode (set from its CopyInResponse before
    /// the client can see it; cleared by the copy's end on either side).
    pub copy_in: AtomicBool,
    /// ReadyForQuery messages the server sent (the client framer keys a statement only when it
    /// has had as many Query, Sync and FunctionCall messages answered).
    pub readys: AtomicU64,
    /// The client framer passed on a quiet statement: the server framer drops its answer.
    pub quiet: AtomicBool,
    /// The quiet statement is summarized: the server framer keeps its CommandComplete's tag.
    pub quiet_tag: AtomicBool,
    /// From a quiet statement until its answer ends.
    quiet_pending: AtomicBool,
    /// The pending quiet statement's summary.
    summary: Mutex<Option<Summary>>,
    withheld: Mutex<Seen>,
    quiet_query: Mutex<Seen>,
    /// The client framer holds an extended-protocol group apart.
    group_pending: AtomicBool,
    server_withheld: Mutex<Seen>,
    pub from_client: AtomicU64,
    pub to_client: AtomicU64,
    /// The session's record parts: a summarized statement with its shape's parts comes as a record.
    pub record: Option<Arc<SessionParts>>,
}

impl Flags {
    pub(crate) fn with_record(record: Option<Arc<SessionParts>>) -> Flags {
        Flags {
            record,
            ..Flags::default()
        }
    }
}

/// A summarized statement until its answer ends.
struct Summary {
    shape: u32,
    parts: Option<Arc<ShapeParts>>,
    text: Vec<u8>,
    at: f64,
    /// Its CommandComplete's tag, and when the relay read it.
    tag: Option<(Vec<u8>, f64)>,
}

/// A summarized statement answered with success: its record when the session and its shape
/// have record parts (and record.rs can make it), else its summary.
fn answered(id: u32, s: Summary, session: Option<&SessionParts>) -> Event {
    let (tag, end) = match s.tag {
        Some((tag, at)) => (Some(tag), at),
        None => (None, now_ms()),
    };
    let record = match (session, &s.parts) {
        (Some(session), Some(shape)) => {
            record::build(session, shape, &s.text, s.at, end, tag.as_deref())
                .map(|json| (json, session.sink))
        }
        _ => None,
    };
    match record {
        Some((json, sink)) => Event::Record { json, sink },
        None => Event::Summary {
            id,
            shape: s.shape,
            text: s.text,
            at: s.at,
            end,
            tag,
        },
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Emits an observe event if there is anything to observe; true when it did.
fn emit(host: &dyn Host, id: u32, client: Option<Seen>, server: Option<Seen>, hold: bool) -> bool {
    let any = client.is_some() || server.is_some();
    if any {
        host.emit(Event::Observe {
            id,
            client,
            server,
            hold,
        });
    }
    any
}

fn some(v: Seen) -> Option<Seen> {
    (!v.is_empty()).then_some(v)
}

/// After a client chunk was framed (before it is passed to the server): true when an event was
/// emitted.
pub(crate) fn client_chunk(
    host: &dyn Host,
    id: u32,
    f: &mut Framer,
    fed: &Fed,
    flags: &Flags,
) -> bool {
    // The chunk's time, read once and only when something is kept or observed.
    let at = OnceCell::new();
    let now = || *at.get_or_init(now_ms);
    let mut client = Seen::default();
    let mut server = Seen::default();
    if fed.quieted {
        let summary = f.take_quiet_summary();
        let at = now();
        let early = std::mem::take(&mut *lock(&flags.server_withheld));
        if records(&early.bytes).iter().any(|(t, _)| *t == b'E') {
            // A group whose answer failed before its Sync came: observed as it is.
            client = Seen::new(f.quiet_query().to_vec(), at);
            server = early;
        } else {
            // Before the statement reaches the server: the rest of its answer is the server's
            // next messages.
            flags.quiet_tag.store(summary.is_some(), Relaxed);
            flags.quiet.store(true, Relaxed);
            flags.quiet_pending.store(true, Relaxed);
            *lock(&flags.summary) = summary.map(|s| Summary {
                shape: s.shape,
                parts: s.parts,
                text: s.text,
                at,
                tag: None,
            });
            // Copied into the buffer the last quiet statement left (no allocation per statement).
            let mut kept = lock(&flags.quiet_query);
            kept.bytes.clear();
            kept.bytes.extend_from_slice(f.quiet_query());
            kept.at = at;
        }
    }
    flags.group_pending.store(f.group_pending(), Relaxed);
    if fed.released {
        server.append_server(&mut lock(&flags.server_withheld));
    }
    if let Some(o) = f.take_observed() {
        if flags.quiet_pending.load(Relaxed) {
            lock(&flags.withheld).add_client(&o.buf, now());
        } else {
            client.add_client(&o.buf, now());
        }
    }
    emit(host, id, some(client), some(server), false)
}

/// What a server chunk's observation did.
pub(crate) struct Observed {
    /// The chunk waits for `release` (strict durability).
    pub hold: bool,
    /// An event was emitted.
    pub emitted: bool,
}

/// After a server chunk was framed (before it is written to the client).
pub(crate) fn server_chunk(
    host: &dyn Host,
    id: u32,
    f: &mut Framer,
    fed: &Fed,
    flags: &Flags,
    hold: bool,
) -> Observed {
    flags.readys.store(f.sync_points(), Relaxed);
    if let Some(tag) = f.take_quiet_tag() {
        if let Some(s) = lock(&flags.summary).as_mut() {
            s.tag = Some((tag, now_ms()));
        }
    }
    // The answer to a quiet statement ended: what the client sent meanwhile is observed now,
    // after the statement itself when the answer failed (its failure is observed), or after
    // its summary when it succeeded.
    let mut client = Seen::default();
    let mut summarized = false;
    if let Some(end) = fed.quiet_end {
        flags.quiet_pending.store(false, Relaxed);
        let summary = lock(&flags.summary).take();
        if end == QuietEnd::Failed {
            client = std::mem::take(&mut *lock(&flags.quiet_query));
        } else {
            // Answered: the statement is not observed; its buffer serves the next one.
            lock(&flags.quiet_query).bytes.clear();
            if let Some(s) = summary {
                host.emit(answered(id, s, flags.record.as_deref()));
                summarized = true;
            }
        }
        client.append_client(&mut lock(&flags.withheld));
    }
    let Some(o) = f.take_observed() else {
        let emitted = emit(host, id, some(client), None, false) || summarized;
        return Observed {
            hold: false,
            emitted,
        };
    };
    if flags.group_pending.load(Relaxed) {
        lock(&flags.server_withheld).add_server(&o.buf, now_ms());
        let emitted = emit(host, id, some(client), None, false) || summarized;
        return Observed {
            hold: false,
            emitted,
        };
    }
    let hold = hold && o.copied;
    if hold {
        flags.holding.store(true, Relaxed);
    }
    let emitted = emit(
        host,
        id,
        some(client),
        Some(Seen::new(o.buf, now_ms())),
        hold,
    ) || summarized;
    Observed { hold, emitted }
}

/// The relay ended: what is still withheld is observed (on the JavaScript relay it would have
/// been, and reported unanswered).
pub(crate) fn relay_end(host: &dyn Host, id: u32, cf: &mut Framer, flags: &Flags) {
    cf.release_group();
    // A summarized statement without its answer: observed, so it is recorded unanswered (a quiet
    // one is not).
    let mut client = if lock(&flags.summary).take().is_some() {
        std::mem::take(&mut *lock(&flags.quiet_query))
    } else {
        Seen::default()
    };
    client.append_client(&mut lock(&flags.withheld));
    if let Some(o) = cf.take_observed() {
        client.add_client(&o.buf, now_ms());
    }
    let server = std::mem::take(&mut *lock(&flags.server_withheld));
    emit(host, id, some(client), some(server), false);
}
