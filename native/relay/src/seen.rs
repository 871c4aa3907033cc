//! Observed bytes and when the relay saw them. An 'observe' event carries each direction's time
//! (the relay's clock, `now_ms`), so that the statement audit measures a statement from the
//! relay's reads, not from when JavaScript took the batch (a query and its answer often arrive
//! in one batch, a millisecond apart or less).
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds on a monotonic clock (from the first call). JavaScript maps it onto
/// performance.now() once (`monotonicMs`).
pub fn now_ms() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Bytes of one direction with the time they stand for: the client's the first time of what
/// they hold (a statement starts when the relay saw it), the server's the last (an answer ends
/// when the relay saw its end).
#[derive(Default)]
pub struct Seen {
    pub bytes: Vec<u8>,
    pub at: f64,
}

impl Seen {
    pub fn new(bytes: Vec<u8>, at: f64) -> Seen {
        Seen { bytes, at }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Client bytes seen at `at`, after what it holds: the time stays the first.
    pub fn add_client(&mut self, bytes: &[u8], at: f64) {
        self.add(bytes, at, f64::min);
    }

    /// Server bytes seen at `at`, after what it holds: the time becomes the last.
    pub fn add_server(&mut self, bytes: &[u8], at: f64) {
        self.add(bytes, at, f64::max);
    }

    /// Moves `later` (client bytes) after these: the earliest time of the two.
    pub fn append_client(&mut self, later: &mut Seen) {
        self.add(&later.bytes, later.at, f64::min);
        later.bytes.clear();
    }

    /// Moves `later` (server bytes) after these: the latest time of the two.
    pub fn append_server(&mut self, later: &mut Seen) {
        self.add(&later.bytes, later.at, f64::max);
        later.bytes.clear();
    }

    /// `bytes` after these; the time is `at` if nothing was held, else `pick` of the two.
    fn add(&mut self, bytes: &[u8], at: f64, pick: fn(f64, f64) -> f64) {
        if bytes.is_empty() {
            return;
        }
        self.at = if self.bytes.is_empty() {
            at
        } else {
            pick(self.at, at)
        };
        self.bytes.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bytes_keep_their_first_time_server_bytes_their_last() {
        let mut c = Seen::default();
        c.add_client(b"", 1.0);
        assert!(c.is_empty());
        c.add_client(b"Q1", 2.0);
        c.add_client(b"Q2", 3.0);
        assert_eq!((c.bytes.as_slice(), c.at), (&b"Q1Q2"[..], 2.0));
        let mut earlier = Seen::new(b"Q0".to_vec(), 1.5);
        c.append_client(&mut earlier);
        assert_eq!((c.bytes.as_slice(), c.at), (&b"Q1Q2Q0"[..], 1.5));
        assert!(earlier.is_empty());

        let mut s = Seen::default();
        s.add_server(b"C", 4.0);
        s.add_server(b"Z", 5.0);
        assert_eq!((s.bytes.as_slice(), s.at), (&b"CZ"[..], 5.0));
        let mut older = Seen::new(b"E".to_vec(), 4.5);
        s.append_server(&mut older);
        assert_eq!((s.bytes.as_slice(), s.at), (&b"CZE"[..], 5.0));
        let mut none = Seen::default();
        s.append_server(&mut none);
        assert_eq!(s.at, 5.0);
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now_ms();
        assert!(b - a >= 2.0, "{a} then {b}");
    }
}
