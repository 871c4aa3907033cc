//! record.rs against what JavaScript writes (the values below are node's).
use super::*;

fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut j = Vec::new();
    f(&mut j);
    String::from_utf8(j).unwrap()
}

#[test]
fn strings_as_json_stringify_writes_them() {
    assert_eq!(
        s(|j| json_string(j, "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f} é 😀")),
        "\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f} é 😀\""
    );
    assert_eq!(s(|j| json_string(j, "")), "\"\"");
    // The copy of a text with nothing to escape, and texts with one thing to escape at either end.
    assert_eq!(
        s(|j| json_string(j, "SELECT abalance FROM t WHERE aid = 42; é")),
        "\"SELECT abalance FROM t WHERE aid = 42; é\""
    );
    assert_eq!(s(|j| json_string(j, "\"x")), "\"\\\"x\"");
    assert_eq!(s(|j| json_string(j, "x\n")), "\"x\\n\"");
}

#[test]
fn decimals_as_javascript_writes_whole_numbers() {
    for (n, text) in [
        (0, "0"),
        (7, "7"),
        (10, "10"),
        (1_000_000, "1000000"),
        (u64::MAX, "18446744073709551615"),
    ] {
        assert_eq!(s(|j| j.extend_from_slice(decimal(n, &mut [0u8; 20]))), text);
    }
}

#[test]
fn times_as_to_iso_string_writes_them() {
    for (ms, iso) in [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_733_450_000_123, "2024-12-06T01:53:20.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
    ] {
        assert_eq!(s(|j| iso_time(j, ms)), iso);
    }
}

#[test]
fn durations_to_the_microsecond_shortest() {
    for (ms, text) in [
        (0.0, "0"),
        (0.25, "0.25"),
        (1.5, "1.5"),
        (0.0005, "0.001"),
        (0.0004, "0"),
        (12.3456, "12.346"),
        (0.1, "0.1"),
        (7.0, "7"),
        (100.010, "100.01"),
        (-3.0, "0"),
        (0.002, "0.002"),
        (0.02, "0.02"),
        (1.2, "1.2"),
        (10.105, "10.105"),
        (12345.678, "12345.678"),
        (1000.0, "1000"),
    ] {
        assert_eq!(s(|j| duration_ms(j, ms)), text, "{ms}");
    }
}

#[test]
fn rows_of_counted_tags_only() {
    for (tag, rows) in [
        (&b"SELECT 5"[..], Some(5)),
        (b"INSERT 0 300", Some(300)),
        (b"UPDATE 0", Some(0)),
        (b"MERGE 12", Some(12)),
        (b"SET", None),
        (b"SELECT ", None),
        (b"SELECT 5x", None),
        (b"BEGIN", None),
        (b"CREATE TABLE", None),
        (b"SHOW 5", None),
    ] {
        assert_eq!(rows_of(tag), rows, "{}", String::from_utf8_lossy(tag));
    }
}

fn parts(list: &[&str], numbers: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in list {
        b.extend_from_slice(&(p.len() as u32).to_le_bytes());
        b.extend_from_slice(p.as_bytes());
    }
    for n in numbers {
        b.extend_from_slice(&n.to_le_bytes());
    }
    b
}

fn session(max_text: u32) -> SessionParts {
    SessionParts::decode(&parts(
        &[
            "{\"applicationName\":\"app\",",
            ",\"connection\":{\"connId\":\"c1\"}",
            ",\"database\":\"postgres\",\"durationMs\":",
            "",
            ",\"server\":\"s1\",\"text\":",
            ",\"type\":\"statement\",\"user\":\"alice\"}",
        ],
        &[max_text],
    ))
    .unwrap()
}

#[test]
fn a_record_from_its_parts() {
    let shape = ShapeParts::decode(&parts(
        &[
            "\"class\":\"READ\",\"classes\":[\"READ\"],\"commandTag\":\"SELECT\"",
            ",\"objects\":[],\"outcome\":\"success\",\"protocol\":\"simple\"",
        ],
        &[1, 1],
    ))
    .unwrap();
    let at = now_ms();
    let json = build(
        &session(8192),
        &shape,
        b" SELECT 1;",
        at,
        at + 0.25,
        Some(b"SELECT 1"),
    )
    .unwrap();
    let json = String::from_utf8(json).unwrap();
    let (before, time) = json.split_once(",\"time\":\"").unwrap();
    assert_eq!(
        before,
        "{\"applicationName\":\"app\",\"class\":\"READ\",\"classes\":[\"READ\"],\"commandTag\":\"SELECT\",\
         \"connection\":{\"connId\":\"c1\"},\"database\":\"postgres\",\"durationMs\":0.25,\"objects\":[],\
         \"outcome\":\"success\",\"protocol\":\"simple\",\"rows\":1,\"server\":\"s1\",\"text\":\"SELECT 1\""
    );
    assert!(
        time.ends_with("Z\",\"type\":\"statement\",\"user\":\"alice\"}"),
        "{time}"
    );
    assert_eq!(time.len(), 24 + 36);
    // Not here: text that is not UTF-8, text longer than a record keeps, lead and trail past the text.
    assert!(build(&session(8192), &shape, b" SELECT '\xff';", at, at, None).is_none());
    assert!(build(&session(4), &shape, b" SELECT 1;", at, at, None).is_none());
    assert!(build(&session(8192), &shape, b" ", at, at, None).is_none());
}

#[test]
fn parts_that_do_not_decode_are_refused() {
    assert!(SessionParts::decode(&parts(&["{", "", "", "", "", ""], &[])).is_none());
    assert!(SessionParts::decode(&parts(&["{", "", "", "", "", "}"], &[1, 2])).is_none());
    assert!(ShapeParts::decode(&[9, 0, 0, 0, b'a']).is_none());
    assert!(ShapeParts::decode(&parts(&["\u{e9}", ""], &[0, 0])).is_some());
    let mut bad = parts(&["a", "b"], &[0, 0]);
    bad[4] = 0xff; // not UTF-8
    assert!(ShapeParts::decode(&bad).is_none());
}
