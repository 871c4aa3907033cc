use super::*;

fn sha(parts: &[&[u8]]) -> [u8; HASH] {
    let mut c = Context::new(&SHA256);
    for p in parts {
        c.update(p);
    }
    let mut out = [0u8; HASH];
    out.copy_from_slice(c.finish().as_ref());
    out
}

fn hexed(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// RFC 6962's Merkle Tree Hash, as the RFC states it.
fn mth(leaves: &[[u8; HASH]]) -> [u8; HASH] {
    match leaves.len() {
        0 => sha(&[]),
        1 => sha(&[&[0], &leaves[0]]),
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let (l, r) = (mth(&leaves[..k]), mth(&leaves[k..]));
            sha(&[&[1], &l, &r])
        }
    }
}

fn root(frontier: &[u8], size: u64) -> [u8; HASH] {
    let n = size.count_ones() as usize;
    if n == 0 {
        return sha(&[]);
    }
    let node = |i: usize| &frontier[i * HASH..(i + 1) * HASH];
    let mut r: [u8; HASH] = node(n - 1).try_into().unwrap();
    for i in (0..n - 1).rev() {
        r = sha(&[&[1], node(i), &r]);
    }
    r
}

#[test]
fn lines_hashes_and_frontier_match_the_format_across_batches() {
    let events: Vec<String> = (0..300)
        .map(|i| format!("{{\"type\":\"statement\",\"text\":\"SELECT {i} \u{e9}\"}}"))
        .collect();
    let mut frontier = vec![0u8; MAX_NODES * HASH];
    let mut prev = [0u8; HASH];
    let mut all: Vec<[u8; HASH]> = Vec::new();
    let mut seq = 1u64;
    // Batches of 1, 2, 3, ... records; times shared within a millisecond.
    let mut at = 0usize;
    for size in 1.. {
        if at >= events.len() {
            break;
        }
        let batch = &events[at..(at + size).min(events.len())];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        let mut times = Vec::new();
        for (k, e) in batch.iter().enumerate() {
            buf.extend_from_slice(e.as_bytes());
            ends.push(buf.len() as u32);
            times.push(1_733_400_000_000.0 + ((at + k) / 3) as f64);
        }
        let mut out = vec![0u8; buf.len() + batch.len() * LINE_OVERHEAD];
        let mut hashes = vec![0u8; batch.len() * HASH];
        let n = chain(
            &buf,
            &ends,
            &times,
            seq,
            &prev,
            &mut frontier,
            all.len() as u64,
            &mut out,
            &mut hashes,
        )
        .unwrap();
        let text = String::from_utf8(out[..n].to_vec()).unwrap();
        let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
        assert_eq!(lines.len(), batch.len());
        for (k, e) in batch.iter().enumerate() {
            let ms = times[k] as i64;
            let mut t = Vec::new();
            crate::record::iso_time(&mut t, ms);
            let t = String::from_utf8(t).unwrap();
            let p = hexed(&prev);
            let input =
                format!("{{\"event\":{e},\"prev\":\"{p}\",\"seq\":{seq},\"time\":\"{t}\"}}");
            let h = sha(&[input.as_bytes()]);
            assert_eq!(&hashes[k * HASH..(k + 1) * HASH], &h);
            let want = format!(
                "{{\"seq\":{seq},\"time\":\"{t}\",\"prev\":\"{p}\",\"hash\":\"{}\",\"event\":{e}}}",
                hexed(&h)
            );
            assert_eq!(lines[k], want);
            all.push(h);
            prev = h;
            seq += 1;
        }
        assert_eq!(
            root(&frontier, all.len() as u64),
            mth(&all),
            "after {} leaves",
            all.len()
        );
        at += size;
    }
}

#[test]
fn refuses_what_is_not_a_batch() {
    let mut f = vec![0u8; MAX_NODES * HASH];
    let p = [0u8; HASH];
    let mut l = vec![0u8; 1024];
    let mut h = vec![0u8; 64];
    let mut go = |e: &[u8], ends: &[u32], t: &[f64], seq: u64, room: usize| {
        chain(e, ends, t, seq, &p, &mut f[..room], 0, &mut l, &mut h)
    };
    let all = MAX_NODES * HASH;
    assert!(go(b"{}", &[2], &[], 1, all).is_err()); // a time per event
    assert!(go(b"{}", &[3], &[0.0], 1, all).is_err()); // past the buffer
    assert!(go(b"[]", &[2], &[0.0], 1, all).is_err()); // not an object
    assert!(go(b"{}{}", &[2], &[0.0], 1, all).is_err()); // bytes left over
    assert!(go(b"{}", &[2], &[f64::NAN], 1, all).is_err());
    assert!(go(b"{}", &[2], &[0.0], 0, all).is_err()); // seq starts at 1
    assert!(go(b"{}", &[2], &[0.0], 1, HASH).is_err()); // no room in the frontier
    assert_eq!(go(b"{}", &[2], &[0.0], 1, all), Ok(2 + LINE_OVERHEAD - 15));
    let mut small = vec![0u8; 100];
    assert!(chain(b"{}", &[2], &[0.0], 1, &p, &mut f, 0, &mut small, &mut h).is_err());
    // no room for the line
}
