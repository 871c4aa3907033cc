//! The framer's quiet-statement tests (framer.rs, quiet.rs).
use super::*;
use crate::quiet::shape_key;

fn msg(code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![code];
    m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn query(text: &str) -> Vec<u8> {
    let mut body = text.as_bytes().to_vec();
    body.push(0);
    msg(b'Q', &body)
}

fn key_of(text: &str) -> crate::quiet::ShapeKey {
    let mut body = text.as_bytes().to_vec();
    body.push(0);
    shape_key(&body).unwrap()
}

fn key_record(text: &str) -> Vec<u8> {
    let mut r = vec![0];
    r.extend_from_slice(&24i32.to_be_bytes());
    r.extend_from_slice(&i32::from(b'k').to_be_bytes());
    r.extend_from_slice(&key_of(text));
    r
}

fn client(set: &Arc<QuietSet>) -> Framer {
    Framer::new(Side::Client, true).with_quiet(Some(set.clone()))
}

fn answer(rows: usize) -> Vec<u8> {
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
    set.insert(key_of("SELECT abalance FROM a WHERE aid = 100;"));
    let mut c = client(&set);
    let mut s = Framer::new(Side::Server, true);
    // Split anywhere: the Query still goes unobserved once whole.
    let q = query("SELECT abalance FROM a WHERE aid = 4711;");
    assert!(!c.feed(&q[..7]).unwrap().quieted);
    assert!(c.feed(&q[7..]).unwrap().quieted);
    assert!(c.take_observed().is_none());
    assert_eq!(c.sync_points(), 1);
    s.begin_quiet_answer();
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
    // A shape the set does not hold is observed, with its key.
    c.set_answered(2);
    c.feed(&query("DROP TABLE a")).unwrap();
    assert_eq!(
        c.take_observed().unwrap().buf,
        [key_record("DROP TABLE a"), query("DROP TABLE a")].concat()
    );
}

#[test]
fn only_a_query_sent_when_all_is_answered_is_keyed() {
    let set = Arc::new(QuietSet::default());
    set.insert(key_of("SELECT 100"));
    // Two pipelined: the first is quiet, the second (its predecessor unanswered) is observed
    // without a key.
    let mut c = client(&set);
    let q1 = query("SELECT 123");
    let q2 = query("SELECT 456");
    let fed = c.feed(&[q1.clone(), q2.clone()].concat()).unwrap();
    assert!(fed.quieted);
    assert_eq!(c.take_observed().unwrap().buf, q2);

    // After an extended-protocol message with no Sync yet: the server owes its answers first.
    let mut c = client(&set);
    let p = msg(b'P', b"\0select 1\0\0\0");
    let fed = c.feed(&[p.clone(), q1.clone()].concat()).unwrap();
    assert!(!fed.quieted);
    assert_eq!(c.take_observed().unwrap().buf, [p, q1.clone()].concat());
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
    s.begin_quiet_answer();
    let e = s.feed(&msg(b'G', b"\0\0\0")).unwrap_err();
    assert!(e.in_quiet);
    assert!(e
        .to_string()
        .contains("a copy response (type 0x47) to a statement the audit skipped"));
}

#[test]
fn a_quiet_answer_ends_at_its_ready_or_is_observed_from_its_error() {
    let set = Arc::new(QuietSet::default());
    set.insert(key_of("SELECT 100 / 0"));
    let mut c = client(&set);
    let q = query("SELECT 123 / 0");
    assert!(c.feed(&q).unwrap().quieted);
    assert_eq!(c.take_quiet_query(), q, "the relay keeps the quiet Query");
    assert!(c.take_quiet_query().is_empty());

    let mut s = Framer::new(Side::Server, true);
    s.begin_quiet_answer();
    let error = msg(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0");
    let z = msg(b'Z', b"I");
    let fed = s.feed(&[error.clone(), z.clone()].concat()).unwrap();
    assert_eq!(fed.quiet_end, Some(QuietEnd::Failed));
    assert_eq!(s.take_observed().unwrap().buf, [error, z].concat());

    let mut s = Framer::new(Side::Server, true);
    s.begin_quiet_answer();
    let a = answer(1);
    assert_eq!(s.feed(&a[..a.len() - 6]).unwrap().quiet_end, None);
    assert_eq!(
        s.feed(&a[a.len() - 6..]).unwrap().quiet_end,
        Some(QuietEnd::Answered)
    );
    assert!(s.take_observed().is_none());
}
