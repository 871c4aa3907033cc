//! Statement records built in the relay: the audit record of a summarized statement (quiet.rs),
//! made from the parts JavaScript serialized once (src/audit/statement-json.ts: the session's, at
//! the relay's start; the shape's, when it summarized it) and the statement's own values: its
//! duration, its row count, its text and the time of its answer. The text is exactly what
//! JavaScript's `statementExecuted` makes of the same statement (canonical JSON, RFC 8785), so the
//! audit store takes it as is. Statements it cannot vouch for (text that is not UTF-8, or longer
//! than the audit keeps) get no record here: their summary goes to JavaScript instead.
//!
//! Session parts: six `u32 length` + UTF-8 strings, then `u32` the most text bytes a record keeps:
//! head (`{` and applicationName), connection (from its key on), duration (database and the
//! durationMs key), objectId, text (server and the text key), tail (type, user, the closing brace).
//! Shape parts: two such strings, class (`"class":…,"classes":…,"commandTag":…`) and objects
//! (`,"objects":…,"outcome":"success","protocol":"simple"`), then `u32 lead`, `u32 trail`: the
//! Query's bytes before and after the statement's own (blanks and semicolons).
use std::time::{SystemTime, UNIX_EPOCH};

use crate::seen::now_ms;

pub struct SessionParts {
    head: Vec<u8>,
    connection: Vec<u8>,
    duration: Vec<u8>,
    object_id: Vec<u8>,
    text: Vec<u8>,
    tail: Vec<u8>,
    max_text: usize,
    /// Where JavaScript takes this session's records (its audit log): RelayOptions.recordSink.
    pub sink: u32,
}

pub struct ShapeParts {
    class: Vec<u8>,
    objects: Vec<u8>,
    lead: usize,
    trail: usize,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*n))
    }

    fn part(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return None;
        }
        let (p, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(p).ok()?;
        Some(p.to_vec())
    }
}

impl SessionParts {
    pub fn decode(buf: &[u8]) -> Option<SessionParts> {
        let mut r = Reader(buf);
        let parts = SessionParts {
            head: r.part()?,
            connection: r.part()?,
            duration: r.part()?,
            object_id: r.part()?,
            text: r.part()?,
            tail: r.part()?,
            max_text: r.u32()? as usize,
            sink: 0,
        };
        r.0.is_empty().then_some(parts)
    }
}

impl ShapeParts {
    pub fn decode(buf: &[u8]) -> Option<ShapeParts> {
        let mut r = Reader(buf);
        let parts = ShapeParts {
            class: r.part()?,
            objects: r.part()?,
            lead: r.u32()? as usize,
            trail: r.u32()? as usize,
        };
        r.0.is_empty().then_some(parts)
    }
}

/// The record of a summarized statement whose answer succeeded: `query` the Query's text, `at`
/// and `end` when the relay read it and its CommandComplete (now_ms's clock), `tag` that
/// message's tag. None: JavaScript makes it (from the summary).
pub fn build(
    session: &SessionParts,
    shape: &ShapeParts,
    query: &[u8],
    at: f64,
    end: f64,
    tag: Option<&[u8]>,
) -> Option<Vec<u8>> {
    let text = query.get(shape.lead..query.len().checked_sub(shape.trail)?)?;
    let text = std::str::from_utf8(text).ok()?;
    if text.len() > session.max_text {
        return None; // cut by the audit, with its length and hash: JavaScript's
    }
    let mut j = Vec::with_capacity(
        session.head.len()
            + shape.class.len()
            + session.connection.len()
            + session.duration.len()
            + session.object_id.len()
            + shape.objects.len()
            + session.text.len()
            + session.tail.len()
            + text.len()
            + 96,
    );
    j.extend_from_slice(&session.head);
    j.extend_from_slice(&shape.class);
    j.extend_from_slice(&session.connection);
    j.extend_from_slice(&session.duration);
    duration_ms(&mut j, end - at);
    j.extend_from_slice(&session.object_id);
    j.extend_from_slice(&shape.objects);
    if let Some(rows) = tag.and_then(rows_of) {
        j.extend_from_slice(b",\"rows\":");
        j.extend_from_slice(decimal(rows, &mut [0u8; 20]));
    }
    j.extend_from_slice(&session.text);
    json_string(&mut j, text);
    j.extend_from_slice(b",\"time\":\"");
    iso_time(&mut j, wall_ms(end));
    j.push(b'"');
    j.extend_from_slice(&session.tail);
    Some(j)
}

/// JavaScript's Math.round: halves up.
fn js_round(x: f64) -> f64 {
    (x + 0.5).floor()
}

/// The wall-clock time (ms since the epoch, rounded) of a time on now_ms's clock.
fn wall_ms(at: f64) -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    js_round(wall - (now_ms() - at)) as i64
}

/// A duration in ms to the microsecond, as the audit writes it (statement-json.ts `ms`): the
/// shortest decimal of a whole number of microseconds, never below 0.
fn duration_ms(j: &mut Vec<u8>, ms: f64) {
    let k = js_round(ms * 1000.0).max(0.0) as u64;
    let (whole, mut frac) = (k / 1000, k % 1000);
    let mut buf = [0u8; 20];
    j.extend_from_slice(decimal(whole, &mut buf));
    if frac > 0 {
        // Three digits with their leading zeros, less the trailing ones.
        let mut width = 3;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let digits = decimal(frac, &mut buf);
        j.push(b'.');
        j.resize(j.len() + width - digits.len(), b'0');
        j.extend_from_slice(digits);
    }
}

/// The row count of a CommandComplete tag of a command that counts rows (the observer's
/// splitTag): "SELECT 5", "INSERT 0 5", "UPDATE 5", "DELETE 5", "MERGE 5", "COPY 5", "FETCH 5",
/// "MOVE 5".
fn rows_of(tag: &[u8]) -> Option<u64> {
    let space = tag.iter().rposition(|&b| b == b' ')?;
    let digits = &tag[space + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let command = &tag[..space];
    let counted = command.starts_with(b"INSERT ")
        || matches!(
            command,
            b"SELECT" | b"UPDATE" | b"DELETE" | b"MERGE" | b"COPY" | b"FETCH" | b"MOVE"
        );
    // JavaScript's number: exact to 2^53, beyond any row count.
    counted.then(|| {
        digits.iter().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        })
    })
}

/// JSON.stringify of a string (valid UTF-8: no lone surrogates to escape).
fn json_string(j: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    j.push(b'"');
    // Most statement texts need no escape: copied whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        j.extend_from_slice(s.as_bytes());
        j.push(b'"');
        return;
    }
    for &b in s.as_bytes() {
        match b {
            b'"' => j.extend_from_slice(b"\\\""),
            b'\\' => j.extend_from_slice(b"\\\\"),
            0x08 => j.extend_from_slice(b"\\b"),
            0x0c => j.extend_from_slice(b"\\f"),
            b'\n' => j.extend_from_slice(b"\\n"),
            b'\r' => j.extend_from_slice(b"\\r"),
            b'\t' => j.extend_from_slice(b"\\t"),
            0..=0x1f => {
                j.extend_from_slice(b"\\u00");
                j.push(HEX[usize::from(b >> 4)]);
                j.push(HEX[usize::from(b & 15)]);
            }
            _ => j.push(b),
        }
    }
    j.push(b'"');
}

/// Date.prototype.toISOString of ms since the epoch (years 0 to 9999).
pub(crate) fn iso_time(j: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    for (n, width, after) in [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (h, 2, b':'),
        (m, 2, b':'),
        (s, 2, b'.'),
        (milli, 3, b'Z'),
    ] {
        let mut digits = [b'0'; 4];
        let mut v = n;
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        j.extend_from_slice(&digits[..width]);
        j.push(after);
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;

/// `n` in decimal, as JavaScript writes a whole number (no String on the way). Here, not in
/// chain.rs, so that the fuzz target (which compiles record.rs in without aws-lc) has it too.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}
