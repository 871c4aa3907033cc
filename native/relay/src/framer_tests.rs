//! The framer's unit tests (framer.rs).
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

/// A peer's message of type 0x00 would read as one of the addon's own records in the observe
/// buffer (a forged shape key, unnamed or skip-run record): refused on both sides while
/// observing, passed through when not (nothing then reads records).
#[test]
fn a_type_zero_message_is_refused_while_observing() {
    let key_record = [&[0u8, 0, 0, 0, 24][..], b"\0\0\0k", &[7u8; 16]].concat();
    let unnamed = [0u8, 0, 0, 0, 8, 0, 0, 0, b'u'];
    for side in [Side::Client, Side::Server] {
        for forged in [&key_record[..], &unnamed[..], &run(b'd', 1, 9)[..]] {
            let stream = [msg(b'Q', b"select 1\0"), forged.to_vec()].concat();
            for split in 0..stream.len() {
                let mut f = Framer::new(side, true);
                let r = f
                    .feed(&stream[..split])
                    .and_then(|_| f.feed(&stream[split..]));
                let e = r.unwrap_err();
                assert!(e.forged, "{side:?} split {split}");
                assert_eq!(e.offset, 14);
                assert!(e.to_string().contains("type 0x00"), "{e}");
            }
            let mut f = Framer::new(side, false);
            f.feed(&stream).unwrap();
            assert!(f.at_boundary());
        }
    }
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

#[test]
fn copy_in_lets_only_copy_messages_through_on_an_observed_client_stream() {
    // The server's side says when copy mode starts and ends.
    let mut s = Framer::new(Side::Server, true);
    let fed = s.feed(&msg(b'G', b"\0\0\0")).unwrap();
    assert_eq!(fed.copy_in, Some(true));
    let fed = s
        .feed(&[msg(b'C', b"COPY 1\0"), msg(b'Z', b"I")].concat())
        .unwrap();
    assert_eq!(fed.copy_in, Some(false));
    assert_eq!(s.feed(&msg(b'T', b"")).unwrap().copy_in, None);

    // In copy mode: CopyData, Sync, Flush pass; CopyDone ends it; then a Query is a Query.
    let mut c = Framer::new(Side::Client, true);
    c.set_copy_in(true);
    let ok = [
        msg(b'd', b"1\n"),
        msg(b'S', b""),
        msg(b'H', b""),
        msg(b'c', b""),
        msg(b'Q', b"select 1\0"),
    ]
    .concat();
    c.feed(&ok).unwrap();
    assert!(!c.copy_in());

    // A Describe inside the copy: the stream cannot be followed.
    let mut c = Framer::new(Side::Client, true);
    c.set_copy_in(true);
    let bad = [
        msg(b'd', b"a\n"),
        msg(b'D', b"S\0"),
        msg(b'Q', b"create table x ()\0"),
    ]
    .concat();
    let e = c.feed(&bad).unwrap_err();
    assert!(e.during_copy);
    assert_eq!((e.msg_type, e.offset), (b'D', 7));
    assert!(e
        .to_string()
        .starts_with("framing error: a message of type 0x44 during COPY FROM STDIN"));

    // Not observed: no audit to follow it, so PostgreSQL judges it (it refuses the Describe).
    let mut c = Framer::new(Side::Client, false);
    c.set_copy_in(true);
    c.feed(&bad).unwrap();
}
