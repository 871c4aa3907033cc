//! The batch of events JavaScript has not taken yet, and when to call it (one call per batch).
//!
//! Most events want JavaScript at once: the login's data, a drain, a close, and an observe event
//! whose server chunk is held until its records are on disk (strict durability). An observe event
//! that holds nothing does not: the relay has already passed its bytes on, and JavaScript only
//! records them. Such an event starts a short delay instead, so that under load JavaScript is
//! woken once for the statements of many sessions, not once or twice per statement (each wake-up
//! costs both threads a context switch and the relay thread a write to Node's event loop); any
//! urgent event ends the delay at once, with everything before it in the same batch. A batch of
//! nothing but statement records (summarized statements) waits longer (RECORD_DELAY), until
//! another event comes.
//!
//! The batch is also the relay's backpressure towards JavaScript: once the events it has not
//! taken reach `backlog_above` bytes, every relay direction waits after its chunk until JavaScript
//! takes them, so the relay stops reading its sockets (TCP pushes back on the peers) instead of
//! queueing without bound while the audit falls behind (a busy event loop, a flood of statements
//! from many sessions): memory stays bounded and the audit trail stays close to the wire.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use tokio::sync::Notify;

/// How long an observe event that holds nothing may wait for JavaScript (tokio's timer rounds it
/// up to its 1 ms tick). Each call costs the event loop about 50 µs whatever it carries (the
/// wake-up, the callback, the hand-off of its records to the audit writer): at 0.5 ms a busy relay
/// called it about 580 times a second, at 2 ms about 250, at 4 ms about 190 (measured, every class
/// audited: event loop 5.1 µs per statement at 0.5 ms, 3.6 at 4 ms; 5 ms was no better than 2 at a
/// fixed rate). It is kept short because JavaScript learns a new statement shape from its observe
/// event, and the relay summarizes that shape only once JavaScript has. A statement whose answer
/// is held (strict durability) is urgent and does not wait.
pub const DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// How long a batch of nothing but statement records may wait: records wait for the audit store's
/// own 64 ms window after JavaScript has them anyway (batched durability: src/audit/store/outbox.ts),
/// so a busy relay whose statements are all summarized wakes the event loop about once per window
/// instead of every DELAY (measured with every class audited at 9,000 tx/s: 64 ms against 16 ms
/// saves the event loop about 0.45 µs per statement). Any other event ends it sooner (DELAY, or
/// at once when urgent).
pub const RECORD_DELAY: std::time::Duration = std::time::Duration::from_millis(64);

/// A taken batch's buffer up to this capacity is kept for a later batch (no allocation, and no
/// page faults on its growth, per batch).
const KEEP_CAPACITY: usize = 1 << 20;

/// Default bound of the events JavaScript has not taken (bytes).
pub const BACKLOG_ABOVE: usize = 4 << 20;

/// The batch, shared by the relay threads and JavaScript's callback.
pub struct Shared {
    batch: Mutex<Batch>,
    /// The buffer of the batch taken before, emptied, for the next one (only JavaScript's thread
    /// takes: never contended).
    spare: Mutex<Vec<u8>>,
    /// Signalled each time JavaScript takes the batch.
    taken: Notify,
    /// Bytes in the batch (read without the lock by the relay after each chunk).
    pending: AtomicUsize,
    backlog_above: usize,
    /// Times a relay direction waited for JavaScript to take the batch.
    pub waits: AtomicU64,
    /// The most bytes JavaScript took at once.
    pub largest: AtomicUsize,
}

impl Shared {
    pub fn new(backlog_above: usize) -> Shared {
        Shared {
            batch: Mutex::new(Batch::default()),
            spare: Mutex::new(Vec::new()),
            taken: Notify::new(),
            pending: AtomicUsize::new(0),
            backlog_above: backlog_above.max(1),
            waits: AtomicU64::new(0),
            largest: AtomicUsize::new(0),
        }
    }

    /// Encodes an event into the batch with `encode`; what its emitter does next.
    pub fn add(&self, urgent: bool, encode: impl FnOnce(&mut Vec<u8>)) -> Wake {
        let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        encode(&mut b.bytes);
        b.run = None;
        self.pending.store(b.bytes.len(), Relaxed);
        b.after_event(urgent, false)
    }

    /// Adds a statement record (its canonical JSON) for audit log `sink` to the batch, which can
    /// wait for the delay: to the run of records the batch ends with when it is that log's, else
    /// as a new run (events.rs `begin_records`). Records of every connection of one log share a
    /// run: JavaScript then takes a run with one call, not one event per record; the order of
    /// events is kept.
    pub fn add_record(&self, sink: u32, json: &[u8], urgent: bool) -> Wake {
        let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
        let count_at = match b.run {
            Some((s, at)) if s == sink => at,
            _ => {
                let at = crate::events::begin_records(&mut b.bytes, sink);
                b.run = Some((sink, at));
                at
            }
        };
        crate::events::add_to_records(&mut b.bytes, count_at, json);
        self.pending.store(b.bytes.len(), Relaxed);
        b.after_event(urgent, true)
    }

    /// The delay of batch `batch` ended: true when JavaScript is to be called now.
    pub fn delay_over(&self, batch: u64) -> bool {
        self.batch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .delay_over(batch)
    }

    /// JavaScript takes the events (`read` gets them: it copies them out); relay directions
    /// waiting on the backlog go on. The batch's buffer is kept for a later batch.
    pub fn take_with<R>(&self, read: impl FnOnce(&[u8]) -> R) -> R {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let mut b = self.batch.lock().unwrap_or_else(|p| p.into_inner());
            self.pending.store(0, Relaxed);
            b.take(std::mem::take(&mut *spare))
        };
        self.largest.fetch_max(bytes.len(), Relaxed);
        self.taken.notify_waiters();
        let r = read(&bytes);
        if bytes.capacity() <= KEEP_CAPACITY {
            *spare = bytes;
            spare.clear();
        }
        r
    }

    #[cfg(test)]
    pub fn take(&self) -> Vec<u8> {
        self.take_with(|b| b.to_vec())
    }

    /// The events JavaScript has not taken have reached the bound.
    pub fn over(&self) -> bool {
        self.pending.load(Relaxed) >= self.backlog_above
    }

    /// Returns once the backlog is under the bound (at once if it is). A batch over the bound
    /// always has a call to JavaScript under way (after_event), so the wait ends when it is taken.
    pub async fn under(&self) {
        if !self.over() {
            return;
        }
        self.waits.fetch_add(1, Relaxed);
        loop {
            // Made before the check: a take between the two still wakes it (notify_waiters wakes
            // every Notified made before it, polled or not).
            let taken = self.taken.notified();
            if !self.over() {
                return;
            }
            taken.await;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing waits (the batch is empty).
    Idle,
    /// Events wait for a delay to end: `records_only`, so far only records (RECORD_DELAY).
    Delayed { records_only: bool },
    /// JavaScript was called and has not taken the batch yet.
    Called,
}

/// What the emitter of an event does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Call JavaScript now.
    Now,
    /// Start a delay this long for the batch numbered so; call JavaScript when `delay_over` says
    /// so.
    Later(std::time::Duration, u64),
    /// A call or a delay is already under way: the event rides along.
    Nothing,
}

pub struct Batch {
    bytes: Vec<u8>,
    state: State,
    /// This batch's number (one more per take): a delay ends only the batch it began in.
    number: u64,
    /// The audit log of the run of records the batch ends with, and where its count is.
    run: Option<(u32, usize)>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            bytes: Vec::new(),
            state: State::Idle,
            number: 0,
            run: None,
        }
    }
}

impl Batch {
    /// After an event was encoded into `bytes`; `record`, a statement record.
    pub fn after_event(&mut self, urgent: bool, record: bool) -> Wake {
        match (self.state, urgent, record) {
            (State::Called, _, _) => Wake::Nothing,
            (_, true, _) => {
                self.state = State::Called;
                Wake::Now
            }
            (State::Idle, false, true) => {
                self.state = State::Delayed { records_only: true };
                Wake::Later(RECORD_DELAY, self.number)
            }
            // The first event that is not a record: the shorter delay (the longer one's end, if
            // it came first, would call no less).
            (State::Idle | State::Delayed { records_only: true }, false, false) => {
                self.state = State::Delayed {
                    records_only: false,
                };
                Wake::Later(DELAY, self.number)
            }
            (State::Delayed { .. }, false, _) => Wake::Nothing,
        }
    }

    /// The delay of batch `batch` ended: true when JavaScript is to be called now (it is this
    /// batch, and no call since). A delay that outlived its batch ends nothing: each would
    /// otherwise cut the next batch's delay short, and the longer delays begun beside a shorter
    /// one (RECORD_DELAY, then DELAY) would keep calling every batch early.
    pub fn delay_over(&mut self, batch: u64) -> bool {
        if batch == self.number && matches!(self.state, State::Delayed { .. }) {
            self.state = State::Called;
            true
        } else {
            false
        }
    }

    /// JavaScript takes the events: the next event starts a new batch, in `empty`.
    pub fn take(&mut self, empty: Vec<u8>) -> Vec<u8> {
        self.state = State::Idle;
        self.number += 1;
        self.run = None;
        std::mem::replace(&mut self.bytes, empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_a_row_share_a_run_and_other_events_or_logs_end_it() {
        let s = Shared::new(1 << 20);
        assert_eq!(
            s.add_record(1, b"{\"a\":1}", false),
            Wake::Later(RECORD_DELAY, 0)
        );
        assert_eq!(s.add_record(1, b"{}", false), Wake::Nothing);
        s.add(false, |b| b.extend_from_slice(b"X"));
        s.add_record(1, b"{\"b\":2}", false);
        s.add_record(2, b"{\"c\":3}", false);
        let mut want = Vec::new();
        let at = crate::events::begin_records(&mut want, 1);
        crate::events::add_to_records(&mut want, at, b"{\"a\":1}");
        crate::events::add_to_records(&mut want, at, b"{}");
        want.push(b'X');
        let at = crate::events::begin_records(&mut want, 1);
        crate::events::add_to_records(&mut want, at, b"{\"b\":2}");
        let at = crate::events::begin_records(&mut want, 2);
        crate::events::add_to_records(&mut want, at, b"{\"c\":3}");
        assert_eq!(s.take(), want);
        assert_eq!(
            &want[..9],
            &[1, 0, 0, 0, 11, 2, 0, 0, 0],
            "log 1, kind 11, two records"
        );
        // A new batch starts a new run.
        s.add_record(1, b"{}", false);
        assert_eq!(&s.take()[..9], &[1, 0, 0, 0, 11, 1, 0, 0, 0]);
    }

    #[test]
    fn one_call_per_batch_urgent_events_end_a_delay() {
        let mut b = Batch::default();
        // Urgent first: called at once; what follows rides along until JavaScript takes it.
        assert_eq!(b.after_event(true, false), Wake::Now);
        assert_eq!(b.after_event(false, false), Wake::Nothing);
        assert_eq!(b.after_event(false, true), Wake::Nothing);
        assert_eq!(b.after_event(true, false), Wake::Nothing);
        assert!(!b.delay_over(0));
        b.take(Vec::new());
        // An observe event starts a delay; more ride along; the delay's end calls once.
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 1));
        assert_eq!(b.after_event(false, false), Wake::Nothing);
        assert_eq!(b.after_event(false, true), Wake::Nothing);
        assert!(b.delay_over(1));
        assert!(!b.delay_over(1));
        assert_eq!(b.after_event(true, false), Wake::Nothing);
        b.take(Vec::new());
        // An urgent event during a delay calls at once; the delay's end then does nothing.
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 2));
        assert_eq!(b.after_event(true, false), Wake::Now);
        assert!(!b.delay_over(2));
        b.take(Vec::new());
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 3));
    }

    #[test]
    fn records_alone_wait_longer_until_another_event_comes() {
        let mut b = Batch::default();
        assert_eq!(b.after_event(false, true), Wake::Later(RECORD_DELAY, 0));
        assert_eq!(b.after_event(false, true), Wake::Nothing);
        // An observe event: the shorter delay starts (the batch is no longer records alone).
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 0));
        assert_eq!(b.after_event(false, false), Wake::Nothing);
        assert_eq!(b.after_event(false, true), Wake::Nothing);
        // The shorter one ends first and calls; the longer one's end then finds nothing to do.
        assert!(b.delay_over(0));
        assert!(!b.delay_over(0));
        b.take(Vec::new());
        // Records, then an urgent event: called at once.
        assert_eq!(b.after_event(false, true), Wake::Later(RECORD_DELAY, 1));
        assert_eq!(b.after_event(true, false), Wake::Now);
        assert!(!b.delay_over(1));
        b.take(Vec::new());
        // A record that must not wait (a held answer's): at once.
        assert_eq!(b.after_event(true, true), Wake::Now);
    }

    #[test]
    fn a_delay_ends_only_the_batch_it_began_in() {
        let mut b = Batch::default();
        // Batch 0: records (RECORD_DELAY), then an observe event (DELAY), which ends it first.
        assert_eq!(b.after_event(false, true), Wake::Later(RECORD_DELAY, 0));
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 0));
        assert!(b.delay_over(0));
        b.take(Vec::new());
        // Batch 1 waits for its own delay: batch 0's longer one ending meanwhile does not call.
        assert_eq!(b.after_event(false, true), Wake::Later(RECORD_DELAY, 1));
        assert!(!b.delay_over(0), "a delay of the batch before");
        assert!(b.delay_over(1));
    }

    #[test]
    fn over_the_backlog_a_relay_waits_until_javascript_takes_the_batch() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = std::sync::Arc::new(Shared::new(8));
            assert_eq!(
                s.add(false, |b| b.extend_from_slice(b"1234")),
                Wake::Later(DELAY, 0)
            );
            assert!(!s.over());
            // Under the bound: no wait.
            s.under().await;
            assert_eq!(s.waits.load(Relaxed), 0);
            assert_eq!(
                s.add(false, |b| b.extend_from_slice(b"5678")),
                Wake::Nothing
            );
            assert!(s.over());
            let waiter = tokio::spawn({
                let s = s.clone();
                async move { s.under().await }
            });
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(
                !waiter.is_finished(),
                "waits while the batch is over the bound"
            );
            assert!(s.delay_over(0));
            assert_eq!(s.take(), b"12345678");
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("taken: the wait ends")
                .unwrap();
            assert_eq!(s.waits.load(Relaxed), 1);
            assert_eq!(s.largest.load(Relaxed), 8);
            assert!(!s.over());
        });
    }

    #[test]
    fn take_empties_the_batch() {
        let mut b = Batch::default();
        b.bytes.extend_from_slice(b"abc");
        assert_eq!(b.after_event(true, false), Wake::Now);
        assert_eq!(b.take(Vec::new()), b"abc");
        assert!(b.bytes.is_empty());
        assert_eq!(b.after_event(false, false), Wake::Later(DELAY, 1));
    }
}
