//! Events for JavaScript, encoded into one batch buffer (src/gateway/native/addon.ts
//! `decodeEvents` reads it): one N-API call and one Buffer per batch instead of an object per
//! event (building objects through N-API cost more than the relay itself). Little-endian:
//!
//! `u32 id, u8 kind`, then by kind:
//! 1 hello    `str sni?`, `u8 n`, n × `str alpn`
//! 2 secure   `str version`, `str cipher`, `str sni?`, `str alpn?`
//! 3 data     `bytes`
//! 4 end, 5 frozen, 6 drain: nothing
//! 7 observe  `u8 flags` (1 hold, 2 client, 4 server), then for client and server if set
//!            `f64 time` (ms, the relay's clock: seen.rs) and `bytes`
//! 8 closed   `f64 from client`, `f64 to client`, `u8 reusable`, `str error?`
//! 9 summary  `u32 shape`, `f64 at`, `f64 end` (the relay's clock), `bytes tag?` (`u32::MAX`:
//!            none), `bytes text`
//! 11 records (in place of a connection id: the audit log's sink, RelayOptions.recordSink)
//!            `u32 count`, count × `bytes json` (summarized statements' audit records, canonical
//!            JSON, of any connections of that log: batch.rs `add_record` adds to a run)
//!
//! `str` is `u32 length` then UTF-8 (`u32::MAX`: null); `bytes` is `u32 length` then the bytes.
use crate::conn::Event;

const NULL: u32 = u32::MAX;

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    // A message is at most 1 GiB (the framer's limit), well within a u32.
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
}

fn put_str(b: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => put_bytes(b, s.as_bytes()),
        None => put_u32(b, NULL),
    }
}

fn head(b: &mut Vec<u8>, id: u32, kind: u8) {
    put_u32(b, id);
    b.push(kind);
}

/// Starts a run of statement records for audit log `sink` (kind 11, in place of a connection id):
/// `count u32`, then each record as `len u32, bytes`. Returns where its count is.
pub fn begin_records(b: &mut Vec<u8>, sink: u32) -> usize {
    head(b, sink, 11);
    let at = b.len();
    put_u32(b, 0);
    at
}

/// Adds a record to the run whose count is at `count_at`.
pub fn add_to_records(b: &mut Vec<u8>, count_at: usize, json: &[u8]) {
    let mut count = [0u8; 4];
    count.copy_from_slice(&b[count_at..count_at + 4]);
    b[count_at..count_at + 4].copy_from_slice(&(u32::from_le_bytes(count) + 1).to_le_bytes());
    put_bytes(b, json);
}

/// Appends one event to a batch.
pub fn encode(b: &mut Vec<u8>, event: Event) {
    match event {
        Event::Hello { id, sni, alpn } => {
            head(b, id, 1);
            put_str(b, sni.as_deref());
            b.push(alpn.len().min(255) as u8);
            for p in alpn.iter().take(255) {
                put_str(b, Some(p));
            }
        }
        Event::Secure {
            id,
            version,
            cipher,
            sni,
            alpn,
        } => {
            head(b, id, 2);
            put_str(b, Some(&version));
            put_str(b, Some(&cipher));
            put_str(b, sni.as_deref());
            put_str(b, alpn.as_deref());
        }
        Event::Data { id, data } => {
            head(b, id, 3);
            put_bytes(b, &data);
        }
        Event::End { id } => head(b, id, 4),
        Event::Frozen { id } => head(b, id, 5),
        Event::Drain { id } => head(b, id, 6),
        Event::Observe {
            id,
            client,
            server,
            hold,
        } => {
            head(b, id, 7);
            b.push(
                u8::from(hold)
                    | (u8::from(client.is_some()) << 1)
                    | (u8::from(server.is_some()) << 2),
            );
            for seen in [&client, &server].into_iter().flatten() {
                b.extend_from_slice(&seen.at.to_le_bytes());
                put_bytes(b, &seen.bytes);
            }
        }
        Event::Summary {
            id,
            shape,
            text,
            at,
            end,
            tag,
        } => {
            head(b, id, 9);
            put_u32(b, shape);
            b.extend_from_slice(&at.to_le_bytes());
            b.extend_from_slice(&end.to_le_bytes());
            match tag {
                Some(t) => put_bytes(b, &t),
                None => put_u32(b, NULL),
            }
            put_bytes(b, &text);
        }
        Event::Record { json, sink } => {
            let at = begin_records(b, sink);
            add_to_records(b, at, &json);
        }
        Event::Closed {
            id,
            bytes_from_client,
            bytes_to_client,
            reusable,
            error,
        } => {
            head(b, id, 8);
            // Exact up to 2^53 as a JS number.
            b.extend_from_slice(&(bytes_from_client as f64).to_le_bytes());
            b.extend_from_slice(&(bytes_to_client as f64).to_le_bytes());
            b.push(u8::from(reusable));
            put_str(b, error.as_deref());
        }
    }
}
