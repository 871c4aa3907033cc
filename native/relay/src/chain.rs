//! The audit store's hash chain and Merkle frontier over a batch of records, for its writer
//! thread (src/audit/store/FORMAT.md): the same record lines and hashes as record-lines.ts and
//! merkle.ts make in JavaScript, which stay the fallback and the tests' oracle.
//!
//! Record `seq` with canonical event E, time T and the previous record's hash P (hex):
//!   line  `{"seq":S,"time":"T","prev":"P","hash":"H","event":E}\n`
//!   H     SHA-256 of `{"event":E,"prev":"P","seq":S,"time":"T"}`
//! Merkle (RFC 6962): leaf = SHA-256(0x00 ‖ H), node = SHA-256(0x01 ‖ left ‖ right); the frontier
//! holds the roots of the perfect subtrees of the leaves so far, largest first.
use aws_lc_rs::digest::{Context, SHA256};

use crate::record::decimal;

/// Bytes of one hash.
pub const HASH: usize = 32;
/// Most frontier nodes (a tree of fewer than 2^64 leaves).
pub const MAX_NODES: usize = 64;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes a line takes beyond its event: the keys, a seq of up to 16 digits, the time, two hashes.
pub const LINE_OVERHEAD: usize = 216;

/// One batch. `events` holds the canonical events end to end, event i ending at `ends[i]`;
/// `times_ms[i]` is when the store accepted it. `prev` is the hash of the record before
/// `first_seq`; `frontier` holds the frontier of `size` leaves (popcount(size) nodes of 32
/// bytes, then room up to MAX_NODES) and is updated in place. The lines go to `lines` (room for
/// the events and LINE_OVERHEAD per record), the hashes to `hashes` (32 bytes per record); the
/// result is the lines' length.
#[allow(clippy::too_many_arguments)]
pub fn chain(
    events: &[u8],
    ends: &[u32],
    times_ms: &[f64],
    first_seq: u64,
    prev: &[u8; HASH],
    frontier: &mut [u8],
    size: u64,
    lines: &mut [u8],
    hashes: &mut [u8],
) -> Result<usize, String> {
    if ends.len() != times_ms.len() {
        return Err("one time per event".into());
    }
    if frontier.len() < MAX_NODES * HASH {
        return Err(format!("the frontier needs room for {MAX_NODES} nodes"));
    }
    if first_seq == 0
        || first_seq
            .checked_add(ends.len() as u64)
            .is_none_or(|s| s > MAX_SAFE)
    {
        return Err("seq out of range".into());
    }
    if lines.len() < events.len() + ends.len() * LINE_OVERHEAD || hashes.len() < ends.len() * HASH {
        return Err("no room for the lines or hashes".into());
    }
    let mut nodes = size.count_ones() as usize;
    let mut out = 0usize;
    let mut prev_hex = [0u8; 2 * HASH];
    hex(prev, &mut prev_hex);
    let mut time = Vec::with_capacity(24);
    let mut time_ms = f64::NAN;
    let mut start = 0usize;
    for (i, (&end, &ms)) in ends.iter().zip(times_ms).enumerate() {
        let end = end as usize;
        if end < start || end > events.len() {
            return Err(format!("event {i} ends out of its buffer"));
        }
        let event = &events[start..end];
        start = end;
        if event.first() != Some(&b'{') {
            return Err(format!("event {i} is not a JSON object"));
        }
        if ms != time_ms {
            if !(ms.is_finite() && (0.0..=MAX_TIME_MS).contains(&ms)) {
                return Err(format!("event {i} has no time"));
            }
            time_ms = ms;
            time.clear();
            crate::record::iso_time(&mut time, ms.trunc() as i64);
        }
        let mut digits = [0u8; 20];
        let seq = decimal(first_seq + i as u64, &mut digits);
        let mut ctx = Context::new(&SHA256);
        ctx.update(b"{\"event\":");
        ctx.update(event);
        ctx.update(b",\"prev\":\"");
        ctx.update(&prev_hex);
        ctx.update(b"\",\"seq\":");
        ctx.update(seq);
        ctx.update(b",\"time\":\"");
        ctx.update(&time);
        ctx.update(b"\"}");
        let digest = ctx.finish();
        let h: &[u8] = digest.as_ref();
        let mut h_hex = [0u8; 2 * HASH];
        hex(h, &mut h_hex);
        for part in [
            b"{\"seq\":".as_slice(),
            seq,
            b",\"time\":\"",
            &time,
            b"\",\"prev\":\"",
            &prev_hex,
            b"\",\"hash\":\"",
            &h_hex,
            b"\",\"event\":",
            event,
            b"}\n",
        ] {
            lines[out..out + part.len()].copy_from_slice(part);
            out += part.len();
        }
        hashes[i * HASH..(i + 1) * HASH].copy_from_slice(h);
        prev_hex = h_hex;
        // The Merkle leaf, merged with the subtrees it completes.
        let mut node = hash_of(0, h, &[]);
        let mut s = size + i as u64;
        while s % 2 == 1 {
            nodes -= 1;
            let left = &frontier[nodes * HASH..(nodes + 1) * HASH];
            node = hash_of(1, left, &node);
            s = (s - 1) / 2;
        }
        frontier[nodes * HASH..(nodes + 1) * HASH].copy_from_slice(&node);
        nodes += 1;
    }
    if start != events.len() {
        return Err("bytes after the last event".into());
    }
    Ok(out)
}

/// Number.MAX_SAFE_INTEGER: seqs are JavaScript numbers.
const MAX_SAFE: u64 = (1 << 53) - 1;
/// 9999-12-31T23:59:59.999Z, the last time toISOString writes with four digits.
const MAX_TIME_MS: f64 = 253_402_300_799_999.0;

fn hash_of(prefix: u8, a: &[u8], b: &[u8]) -> [u8; HASH] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[prefix]);
    ctx.update(a);
    ctx.update(b);
    let d = ctx.finish();
    let mut out = [0u8; HASH];
    out.copy_from_slice(d.as_ref());
    out
}

fn hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
