//! The batch of events JavaScript has not taken yet, and when to call it (one call per batch).
//!
//! Most events want JavaScript at once: the login's data, a drain, a close, and an observe event
//! whose server chunk is held until its records are on disk (strict durability). An observe event
//! that holds nothing does not: the relay has already passed its bytes on, and JavaScript only
//! records them. Such an event starts a short delay instead, so that under load JavaScript is
//! woken once for the statements of many sessions, not once or twice per statement (each wake-up
//! costs both threads a context switch and the relay thread a write to Node's event loop); any
//! urgent event ends the delay at once, with everything before it in the same batch.

/// How long an observe event that holds nothing may wait for JavaScript (tokio's timer rounds it
/// up to its 1 ms tick).
pub const DELAY: std::time::Duration = std::time::Duration::from_micros(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing waits (the batch is empty).
    Idle,
    /// Events wait for the delay to end.
    Delayed,
    /// JavaScript was called and has not taken the batch yet.
    Called,
}

/// What the emitter of an event does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Call JavaScript now.
    Now,
    /// Start the delay; call JavaScript when `delay_over` says so.
    Later,
    /// A call or a delay is already under way: the event rides along.
    Nothing,
}

pub struct Batch {
    pub bytes: Vec<u8>,
    state: State,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            bytes: Vec::new(),
            state: State::Idle,
        }
    }
}

impl Batch {
    /// After an event was encoded into `bytes`.
    pub fn after_event(&mut self, urgent: bool) -> Wake {
        match (self.state, urgent) {
            (State::Idle | State::Delayed, true) => {
                self.state = State::Called;
                Wake::Now
            }
            (State::Idle, false) => {
                self.state = State::Delayed;
                Wake::Later
            }
            _ => Wake::Nothing,
        }
    }

    /// A delay ended: true when JavaScript is to be called now (no call since). A delay of an
    /// earlier batch may end early the delay of the current one: a call a little sooner.
    pub fn delay_over(&mut self) -> bool {
        if self.state == State::Delayed {
            self.state = State::Called;
            true
        } else {
            false
        }
    }

    /// JavaScript takes the events: the next event starts a new batch.
    pub fn take(&mut self) -> Vec<u8> {
        self.state = State::Idle;
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_per_batch_urgent_events_end_a_delay() {
        let mut b = Batch::default();
        // Urgent first: called at once; what follows rides along until JavaScript takes it.
        assert_eq!(b.after_event(true), Wake::Now);
        assert_eq!(b.after_event(false), Wake::Nothing);
        assert_eq!(b.after_event(true), Wake::Nothing);
        assert!(!b.delay_over());
        b.take();
        // An observe event starts a delay; more ride along; the delay's end calls once.
        assert_eq!(b.after_event(false), Wake::Later);
        assert_eq!(b.after_event(false), Wake::Nothing);
        assert!(b.delay_over());
        assert!(!b.delay_over());
        assert_eq!(b.after_event(true), Wake::Nothing);
        b.take();
        // An urgent event during a delay calls at once; the delay's end then does nothing.
        assert_eq!(b.after_event(false), Wake::Later);
        assert_eq!(b.after_event(true), Wake::Now);
        assert!(!b.delay_over());
        b.take();
        // A delay of an earlier batch ending during this one's delay: called, once.
        assert_eq!(b.after_event(false), Wake::Later);
        assert!(b.delay_over());
        assert_eq!(b.after_event(false), Wake::Nothing);
        b.take();
        assert_eq!(b.after_event(false), Wake::Later);
    }

    #[test]
    fn take_empties_the_batch() {
        let mut b = Batch::default();
        b.bytes.extend_from_slice(b"abc");
        assert_eq!(b.after_event(true), Wake::Now);
        assert_eq!(b.take(), b"abc");
        assert!(b.bytes.is_empty());
        assert_eq!(b.after_event(false), Wake::Later);
    }
}
