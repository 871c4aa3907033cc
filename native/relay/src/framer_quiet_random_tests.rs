//! Random client sessions through the framer with a quiet set (framer.rs, quiet_client.rs):
//! no client message is lost, and what is observed keeps its order.
use std::sync::Arc;

use super::quiet_tests::{
    bind, client, cstring, describe, execute, key_of, msg, parse, query, sync,
};
use super::*;
use crate::quiet::{QuietSet, Shape};

/// A small deterministic generator (no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whole client messages from `stream`, without the relay's records.
fn strip_records(buf: &[u8]) -> Vec<u8> {
    records(buf)
        .into_iter()
        .filter(|(t, _)| *t != 0)
        .flat_map(|(_, m)| m.to_vec())
        .collect()
}

#[test]
fn random_sessions_lose_no_client_message() {
    let texts = [
        "SELECT 1 FROM t WHERE a = 123",
        "SELECT $1::int",
        "DROP TABLE t",
        "SELECT 'x'",
    ];
    let set = Arc::new(QuietSet::default());
    for t in &texts[..2] {
        set.insert(key_of(t), Shape::Quiet);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut quiet_total, mut released_total) = (0, 0);
    for _ in 0..300 {
        let mut input = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            let text = texts[rng.below(texts.len())];
            let name = ["", "s1", "s2"][rng.below(3)];
            input.extend(match rng.below(9) {
                0 => query(text),
                1 => parse(name, text),
                2 => bind(name),
                3 => describe(),
                4 => execute(if rng.below(4) == 0 { 5 } else { 0 }),
                5 => sync(),
                6 => msg(b'H', b""),
                7 => msg(b'C', &[b"S".to_vec(), cstring(name)].concat()),
                _ => [parse("", text), bind(""), execute(0), sync()].concat(),
            });
        }
        let mut c = client(&set);
        let (mut observed, mut quiet) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < input.len() {
            let end = (at + rng.below(40) + 1).min(input.len());
            // The server answers some of what was sent.
            let answered = c.sync_points().saturating_sub(rng.below(2) as u64);
            c.set_answered(answered);
            let fed = c.feed(&input[at..end]).unwrap();
            if fed.quieted {
                quiet_total += 1;
                quiet.extend(strip_records(&c.take_quiet_query()));
            }
            released_total += usize::from(fed.released);
            if let Some(o) = c.take_observed() {
                observed.extend(strip_records(&o.buf));
            }
            at = end;
        }
        c.release_group();
        if let Some(o) = c.take_observed() {
            observed.extend(strip_records(&o.buf));
        }
        assert_eq!(
            observed.len() + quiet.len(),
            input.len(),
            "every byte observed or quiet"
        );
        // What is observed is the input without the quiet statements, in order.
        let mut rest = input.as_slice();
        for (_, m) in records(&observed) {
            let i = rest
                .windows(m.len())
                .position(|w| w == m)
                .expect("in order");
            rest = &rest[i + m.len()..];
        }
    }
    assert!(
        quiet_total > 20 && released_total > 20,
        "quiet {quiet_total}, released {released_total}"
    );
}
