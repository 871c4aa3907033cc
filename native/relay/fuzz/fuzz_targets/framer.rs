//! The framer on arbitrary bytes: the first byte picks the side (and, client side, whether a
//! quiet set is in use: quiet statements and extended-protocol groups), the next ones where the
//! stream is split. It must never panic, and framing the stream in pieces must give what framing
//! it whole gives (boundary, last type, ReadyForQuery status, Terminate, error or not, quiet
//! statements, and the observe buffers once runs split at chunk ends are merged).
#![no_main]
// The relay's modules are compiled in whole; the target uses a part of each.
#![allow(dead_code)]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
#[path = "../../src/framer.rs"]
mod framer;
#[path = "../../src/quiet.rs"]
mod quiet;
#[path = "../../src/quiet_client.rs"]
mod quiet_client;
#[path = "../../src/record.rs"]
mod record;
#[path = "../../src/seen.rs"]
mod seen;
#[path = "../../src/shape_key.rs"]
mod shape_key;

use framer::{records, Fed, FrameError, Framer, Side};
use quiet::{shape_key_in, QuietSet, Shape};

/// A quiet set holding a few shapes a fuzzer finds from the dictionary-free start, quiet and
/// summarized.
fn quiet_set() -> Arc<QuietSet> {
    let set = QuietSet::default();
    for (n, text) in ["SELECT 1", "SELECT $1", "select 100", "", "x", "SELECT 100"]
        .into_iter()
        .enumerate()
    {
        let mut body = text.as_bytes().to_vec();
        body.push(0);
        if let Some(k) = shape_key_in(&body, &mut Vec::new()) {
            set.insert(
                k,
                if n % 2 == 0 {
                    Shape::Quiet
                } else {
                    Shape::Summarized(n as u32, None)
                },
            );
        }
    }
    Arc::new(set)
}

fn framer(side: Side, quiet: bool) -> Framer {
    let f = Framer::new(side, true);
    if quiet {
        f.with_quiet(Some(quiet_set()), true)
    } else {
        f
    }
}

/// Copied messages as they are, consecutive run records of one code summed.
fn merged(chunks: &[Vec<u8>]) -> Vec<(u8, Vec<u8>)> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut run: Option<(u8, i64, i64)> = None;
    for c in chunks {
        for (code, rec) in records(c) {
            if code == 0 && rec.len() == 17 {
                let rc = rec[8];
                let n = i64::from(i32::from_be_bytes([rec[9], rec[10], rec[11], rec[12]]));
                let b = i64::from(i32::from_be_bytes([rec[13], rec[14], rec[15], rec[16]]));
                run = match run {
                    Some((pc, pn, pb)) if pc == rc => Some((pc, pn + n, pb + b)),
                    Some((pc, pn, pb)) => {
                        out.push((
                            0,
                            [[pc].as_slice(), &pn.to_be_bytes(), &pb.to_be_bytes()].concat(),
                        ));
                        Some((rc, n, b))
                    }
                    None => Some((rc, n, b)),
                };
            } else {
                if let Some((pc, pn, pb)) = run.take() {
                    out.push((
                        0,
                        [[pc].as_slice(), &pn.to_be_bytes(), &pb.to_be_bytes()].concat(),
                    ));
                }
                out.push((code, rec.to_vec()));
            }
        }
    }
    if let Some((pc, pn, pb)) = run {
        out.push((
            0,
            [[pc].as_slice(), &pn.to_be_bytes(), &pb.to_be_bytes()].concat(),
        ));
    }
    out
}

/// The quiet statement a chunk passed on, if it passed one on.
fn quiet_of(f: &Framer, fed: &Result<Fed, FrameError>) -> Vec<u8> {
    match fed {
        Ok(fed) if fed.quieted => f.quiet_query().to_vec(),
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let side = if data[0] & 1 == 0 {
        Side::Client
    } else {
        Side::Server
    };
    let quiet = side == Side::Client && data[0] & 2 != 0;
    let step = usize::from(data[1]).max(1);
    let stream = &data[2..];

    let mut whole = framer(side, quiet);
    let rw = whole.feed(stream);
    let quiet_whole = quiet_of(&whole, &rw);
    whole.release_group();
    let ow: Vec<Vec<u8>> = whole
        .take_observed()
        .map(|o| vec![o.buf])
        .unwrap_or_default();

    let mut parts = framer(side, quiet);
    let mut quiet_parts = Vec::new();
    let mut chunks = Vec::new();
    let mut rp = Ok(Default::default());
    for (i, piece) in stream.chunks(step).enumerate() {
        // Varying sizes: every third piece goes byte by byte.
        if i % 3 == 2 {
            for b in piece.chunks(1) {
                rp = parts.feed(b);
                if rp.is_err() {
                    break;
                }
                quiet_parts.extend(quiet_of(&parts, &rp));
                if let Some(o) = parts.take_observed() {
                    chunks.push(o.buf);
                }
            }
        } else {
            rp = parts.feed(piece);
            quiet_parts.extend(quiet_of(&parts, &rp));
            if let Some(o) = parts.take_observed() {
                chunks.push(o.buf);
            }
        }
        if rp.is_err() {
            break;
        }
    }
    parts.release_group();
    if let Some(o) = parts.take_observed() {
        chunks.push(o.buf);
    }
    assert_eq!(rw.is_err(), rp.is_err());
    if rw.is_ok() {
        assert_eq!(merged(&ow), merged(&chunks));
        assert_eq!(quiet_whole, quiet_parts);
        assert_eq!(whole.at_boundary(), parts.at_boundary());
        assert_eq!(whole.last_type(), parts.last_type());
        assert_eq!(whole.ready_status(), parts.ready_status());
        assert_eq!(whole.terminate_seen(), parts.terminate_seen());
    }
});
