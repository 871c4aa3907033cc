//! The framer's quiet-statement tests (framer.rs, quiet.rs).
use super::*;
use std::sync::Arc;

use crate::quiet::{shape_key, QuietSet, Shape};
use crate::quiet_client::UNNAMED_RECORD as UNNAMED;

pub(super) fn msg(code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![code];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

pub(super) fn query(text: &str) -> Vec<u8> {
    let mut body = text.as_bytes().to_vec();
    body.push(0);
    msg(b'Q', &body)
}

pub(super) fn key_of(text: &str) -> crate::quiet::ShapeKey {
    let mut body = text.as_bytes().to_vec();
    body.push(0);
    shape_key(&body).unwrap()
}

pub(super) fn key_record(text: &str) -> Vec<u8> {
    let mut r = vec![0];
    r.extend_from_slice(&24i32.to_be_bytes());
    r.extend_from_slice(&i32::from(b'k').to_be_bytes());
    r.extend_from_slice(&key_of(text));
    r
}

pub(super) fn client(set: &Arc<QuietSet>) -> Framer {
    Framer::new(Side::Client, true).with_quiet(Some(set.clone()), true)
}

pub(super) fn answer(rows: usize) -> Vec<u8> {
    let mut a = msg(b'T', b"\0\x01a\0");
    for _ in 0..rows {
        a.extend(msg(b'D', b"\0\x01\0\0\0\x011"));
    }
    a.extend(msg(b'C', b"SELECT 1\0"));
    a.extend(msg(b'Z', b"I"));
    a
}

#[test]
fn an_unknown_shape_is_observed_after_its_key() {
    let set = Arc::new(QuietSet::default());
    let mut c = client(&set);
    let q = query("SELECT abalance FROM a WHERE aid = 4711;");
    let fed = c.feed(&q).unwrap();
    assert!(!fed.quieted);
    let o = c.take_observed().unwrap();
    assert_eq!(
        o.buf,
        [key_record("SELECT abalance FROM a WHERE aid = 4711;"), q].concat()
    );
    assert!(o.copied);
}

#[test]
fn a_quiet_shape_and_its_answer_are_not_observed() {
    let set = Arc::new(QuietSet::default());
    set.insert(
        key_of("SELECT abalance FROM a WHERE aid = 100;"),
        Shape::Quiet,
    );
    let mut c = client(&set);
    let mut s = Framer::new(Side::Server, true);
    // Split anywhere: the Query still goes unobserved once whole.
    let q = query("SELECT abalance FROM a WHERE aid = 4711;");
    assert!(!c.feed(&q[..7]).unwrap().quieted);
    assert!(c.feed(&q[7..]).unwrap().quieted);
    assert!(c.take_observed().is_none());
    assert_eq!(c.sync_points(), 1);
    s.begin_quiet_answer(false);
    let a = answer(3);
    let notice = msg(b'N', b"SNOTICE\0\0");
    s.feed(&a[..10]).unwrap();
    s.feed(&[&a[10..], &notice[..]].concat()).unwrap();
    assert_eq!(s.sync_points(), 1);
    assert_eq!((s.last_type(), s.ready_status()), (b'N', b'I'));
    // Only what follows the answer's ReadyForQuery is observed.
    assert_eq!(s.take_observed().unwrap().buf, notice);

    // Answered: the next Query is keyed again, and quiet again.
    c.set_answered(s.sync_points());
    assert!(
        c.feed(&query("SELECT abalance FROM a WHERE aid = 999;"))
            .unwrap()
            .quieted
    );
    // A shape the set does not hold is observed, with its key, after the unnamed record (the
    // quiet Queries replaced the unnamed statement and portal unobserved).
    c.set_answered(2);
    c.feed(&query("DROP TABLE a")).unwrap();
    assert_eq!(
        c.take_observed().unwrap().buf,
        [
            UNNAMED.to_vec(),
            key_record("DROP TABLE a"),
            query("DROP TABLE a")
        ]
        .concat()
    );
}

#[test]
fn only_a_query_sent_when_all_is_answered_is_keyed() {
    let set = Arc::new(QuietSet::default());
    set.insert(key_of("SELECT 100"), Shape::Quiet);
    // Two pipelined: the first is quiet, the second (its predecessor unanswered) is observed
    // without a key.
    let mut c = client(&set);
    let q1 = query("SELECT 123");
    let q2 = query("SELECT 456");
    let fed = c.feed(&[q1.clone(), q2.clone()].concat()).unwrap();
    assert!(fed.quieted);
    assert_eq!(c.take_observed().unwrap().buf, [&UNNAMED[..], &q2].concat());

    // After an extended-protocol message with no Sync yet: the server owes its answers first.
    let mut c = client(&set);
    let p = msg(b'P', b"\0select 1\0\0\0");
    let fed = c.feed(&[p.clone(), q1.clone()].concat()).unwrap();
    assert!(!fed.quieted);
    // (A Parse is keyed too, and a group it started is released by the Query.)
    assert_eq!(
        c.take_observed().unwrap().buf,
        [key_record("select 1"), p, q1.clone()].concat()
    );
    // Sync answered: keyed again.
    let mut c = client(&set);
    c.feed(&[msg(b'P', b"\0select 1\0\0\0"), msg(b'S', b"")].concat())
        .unwrap();
    c.take_observed();
    assert!(
        !c.feed(&q1).unwrap().quieted,
        "the Sync is not answered yet"
    );
    c.take_observed();
    c.set_answered(2);
    assert!(c.feed(&q1).unwrap().quieted);

    // Without a set (or unobserved) nothing is keyed.
    let mut c = Framer::new(Side::Client, true);
    c.feed(&q1).unwrap();
    assert_eq!(c.take_observed().unwrap().buf, q1);
}

#[test]
fn a_copy_answer_to_a_quiet_query_fails_closed() {
    let mut s = Framer::new(Side::Server, true);
    s.begin_quiet_answer(false);
    let e = s.feed(&msg(b'G', b"\0\0\0")).unwrap_err();
    assert!(e.in_quiet);
    assert!(e
        .to_string()
        .contains("a copy response (type 0x47) to a statement the audit skipped"));
}

#[test]
fn a_quiet_answer_ends_at_its_ready_or_is_observed_from_its_error() {
    let set = Arc::new(QuietSet::default());
    set.insert(key_of("SELECT 100 / 0"), Shape::Quiet);
    let mut c = client(&set);
    let q = query("SELECT 123 / 0");
    assert!(c.feed(&q).unwrap().quieted);
    assert_eq!(c.take_quiet_query(), q, "the relay keeps the quiet Query");
    assert!(c.take_quiet_query().is_empty());

    let mut s = Framer::new(Side::Server, true);
    s.begin_quiet_answer(false);
    let error = msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0");
    let z = msg(b'Z', b"I");
    let fed = s.feed(&[error.clone(), z.clone()].concat()).unwrap();
    assert_eq!(fed.quiet_end, Some(QuietEnd::Failed));
    assert_eq!(s.take_observed().unwrap().buf, [error, z].concat());

    let mut s = Framer::new(Side::Server, true);
    s.begin_quiet_answer(false);
    let a = answer(1);
    assert_eq!(s.feed(&a[..a.len() - 6]).unwrap().quiet_end, None);
    assert_eq!(
        s.feed(&a[a.len() - 6..]).unwrap().quiet_end,
        Some(QuietEnd::Answered)
    );
    assert!(s.take_observed().is_none());
}

pub(super) fn cstring(s: &str) -> Vec<u8> {
    [s.as_bytes(), &[0]].concat()
}

pub(super) fn parse(name: &str, text: &str) -> Vec<u8> {
    msg(b'P', &[cstring(name), cstring(text), vec![0, 0]].concat())
}

pub(super) fn bind(statement: &str) -> Vec<u8> {
    msg(
        b'B',
        &[cstring(""), cstring(statement), vec![0, 0, 0, 0, 0, 0]].concat(),
    )
}

pub(super) fn execute(max_rows: i32) -> Vec<u8> {
    msg(
        b'E',
        &[cstring(""), max_rows.to_be_bytes().to_vec()].concat(),
    )
}

pub(super) fn describe() -> Vec<u8> {
    msg(b'D', b"P\0")
}

pub(super) fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

#[test]
fn an_unnamed_extended_group_is_held_until_its_sync_then_quiet_or_observed() {
    let set = Arc::new(QuietSet::default());
    let text = "SELECT * FROM t WHERE id = $1";
    let group = [parse("", text), bind(""), describe(), execute(0), sync()].concat();
    let mut c = client(&set);
    // Unknown shape: released whole at its Sync, the Parse after its key record.
    let cut = parse("", text).len() + bind("").len() + 3;
    let fed = c.feed(&group[..cut]).unwrap();
    assert!(!fed.released && c.group_pending());
    assert!(c.take_observed().is_none(), "held apart until its Sync");
    let fed = c.feed(&group[cut..]).unwrap();
    assert!(fed.released && !fed.quieted && !c.group_pending());
    assert_eq!(
        c.take_observed().unwrap().buf,
        [key_record(text), group.clone()].concat()
    );
    // Known: the group goes unobserved; its bytes are kept for an answer that fails.
    set.insert(key_of(text), Shape::Quiet);
    c.set_answered(1);
    let fed = c.feed(&group).unwrap();
    assert!(fed.quieted && !fed.released);
    assert!(c.take_observed().is_none());
    assert_eq!(
        c.take_quiet_query(),
        [key_record(text), group.clone()].concat()
    );
    // The next observed bytes start with the unnamed record.
    c.set_answered(2);
    c.feed(&query("SELECT 1 -- not keyed")).unwrap();
    assert_eq!(
        c.take_observed().unwrap().buf,
        [&UNNAMED[..], &query("SELECT 1 -- not keyed")].concat()
    );
}

#[test]
fn a_bind_to_a_named_statement_is_quiet_when_its_parse_was_keyed_and_nothing_redefined_it() {
    let set = Arc::new(QuietSet::default());
    let text = "SELECT a FROM t WHERE id = $1";
    set.insert(key_of(text), Shape::Quiet);
    let mut c = client(&set);
    // postgres.js: Parse named, Describe, Sync (observed), then Bind/Execute/Sync.
    let prepare = [parse("s1", text), msg(b'D', b"Ss1\0"), sync()].concat();
    c.feed(&prepare).unwrap();
    assert_eq!(
        c.take_observed().unwrap().buf,
        [key_record(text), prepare].concat()
    );
    let run = [bind("s1"), execute(0), sync()].concat();
    c.set_answered(1);
    assert!(c.feed(&run).unwrap().quieted);
    // A Query may PREPARE or DEALLOCATE by SQL: named statements are forgotten.
    c.set_answered(2);
    c.feed(&query("DEALLOCATE s1")).unwrap();
    c.take_observed();
    c.set_answered(3);
    let fed = c.feed(&run).unwrap();
    assert!(fed.released && !fed.quieted);
    // Close forgets one.
    let mut c = client(&set);
    c.feed(&[parse("s2", text), sync()].concat()).unwrap();
    c.set_answered(1);
    c.feed(&[msg(b'C', b"Ss2\0"), sync()].concat()).unwrap();
    c.set_answered(2);
    assert!(
        !c.feed(&[bind("s2"), execute(0), sync()].concat())
            .unwrap()
            .quieted
    );
}

#[test]
fn groups_that_cannot_be_quiet_are_released_in_order() {
    let set = Arc::new(QuietSet::default());
    let text = "SELECT 1 FROM t";
    set.insert(key_of(text), Shape::Quiet);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a Flush waits for answers",
            [parse("", text), bind(""), execute(0), msg(b'H', b"")].concat(),
        ),
        (
            "a row limit (a cursor)",
            [parse("", text), bind(""), execute(10), sync()].concat(),
        ),
        (
            "a named portal",
            [parse("", text), msg(b'B', b"p1\0\0\0\0\0\0\0\0"), sync()].concat(),
        ),
        (
            "two executions",
            [parse("", text), bind(""), execute(0), execute(0), sync()].concat(),
        ),
        ("no execution", [parse("", text), bind(""), sync()].concat()),
        (
            "a named Parse",
            [parse("s9", text), bind("s9"), execute(0), sync()].concat(),
        ),
        (
            "a Close",
            [
                parse("", text),
                bind(""),
                execute(0),
                msg(b'C', b"Ss1\0"),
                sync(),
            ]
            .concat(),
        ),
    ];
    for (why, bytes) in cases {
        let mut c = client(&set);
        let fed = c.feed(&bytes).unwrap();
        assert!(!fed.quieted, "{why}");
        let got = c.take_observed().unwrap().buf;
        let k = key_record(text);
        // Every message, in order (a keyed Parse after its key record).
        let stripped: Vec<u8> = if got.starts_with(&k) {
            got[k.len()..].to_vec()
        } else {
            got
        };
        assert_eq!(stripped, bytes, "{why}");
        assert!(!c.group_pending(), "{why}");
    }
    // A group sent before the server answered what came before it is never held.
    let mut c = client(&set);
    c.feed(&query("SELECT 2 -- first")).unwrap();
    c.take_observed();
    let fed = c
        .feed(&[parse("", text), bind(""), execute(0), sync()].concat())
        .unwrap();
    assert!(!fed.quieted && !c.group_pending());
}

#[test]
fn a_summarized_shape_keeps_its_text_and_tag() {
    let set = Arc::new(QuietSet::default());
    set.insert(
        key_of("SELECT abalance FROM a WHERE aid = 100;"),
        Shape::Summarized(7, None),
    );
    let mut c = client(&set);
    let mut s = Framer::new(Side::Server, true);
    let q = query("SELECT abalance FROM a WHERE aid = 4711;");
    assert!(c.feed(&q).unwrap().quieted);
    assert!(c.take_observed().is_none());
    assert_eq!(
        c.take_quiet_summary().map(|s| (s.shape, s.text)),
        Some((7, b"SELECT abalance FROM a WHERE aid = 4711;".to_vec()))
    );
    assert!(c.take_quiet_summary().is_none());
    // The tag, split across chunks anywhere, is kept once the CommandComplete is whole.
    s.begin_quiet_answer(true);
    let a = answer(1);
    let cc = a.len() - 6 - 14; // the CommandComplete's start
    let fed = s.feed(&a[..cc + 8]).unwrap();
    assert_eq!(fed.quiet_end, None);
    assert_eq!(s.take_quiet_tag(), None, "not whole yet");
    s.feed(&a[cc + 8..a.len() - 2]).unwrap();
    assert_eq!(s.take_quiet_tag(), Some(b"SELECT 1".to_vec()));
    assert_eq!(s.take_quiet_tag(), None);
    let fed = s.feed(&a[a.len() - 2..]).unwrap();
    assert_eq!(fed.quiet_end, Some(QuietEnd::Answered));
    assert!(s.take_observed().is_none());
    // A quiet answer without `tag` keeps none.
    c.set_answered(s.sync_points());
    assert!(
        c.feed(&query("SELECT abalance FROM a WHERE aid = 12345;"))
            .unwrap()
            .quieted
    );
    s.begin_quiet_answer(false);
    s.feed(&answer(1)).unwrap();
    assert_eq!(s.take_quiet_tag(), None);
}

#[test]
fn a_summarized_shape_is_observed_in_a_group_or_under_strict_durability() {
    let set = Arc::new(QuietSet::default());
    set.insert(key_of("SELECT 100"), Shape::Summarized(3, None));
    // Strict durability (no groups): its statements are observed, with their key.
    let mut strict = Framer::new(Side::Client, true).with_quiet(Some(set.clone()), false);
    let q = query("SELECT 42");
    assert!(!strict.feed(&q).unwrap().quieted);
    assert_eq!(
        strict.take_observed().unwrap().buf,
        [key_record("SELECT 42"), q].concat()
    );
    // An extended-protocol group of that shape is released, observed.
    let mut c = client(&set);
    let mut parse = vec![0u8];
    parse.extend_from_slice(b"SELECT 42\0\0\0");
    let group = [
        msg(b'P', &parse),
        msg(b'B', b"\0\0\0\0\0\0\0\0"),
        msg(b'E', b"\0\0\0\0\0"),
        msg(b'S', b""),
    ]
    .concat();
    let fed = c.feed(&group).unwrap();
    assert!(!fed.quieted);
    assert!(fed.released);
    assert!(c.take_quiet_summary().is_none());
}
