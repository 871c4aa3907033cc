//! A framing error: the stream cannot be followed any further.
use std::fmt;

/// A header that is not a PostgreSQL message: the stream cannot be followed any further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Offset of the message's type byte in the direction's stream.
    pub offset: u64,
    pub msg_type: u8,
    pub length: i32,
    /// A well-formed client message the server would not take in COPY FROM STDIN (see
    /// `Framer::set_copy_in`), rather than a bad length.
    pub during_copy: bool,
    /// A copy response to a quiet statement (which JavaScript never marks quiet: a bug).
    pub in_quiet: bool,
    /// A message of type 0x00 in an observed stream: the type of the addon's own records
    /// (skip runs, shape keys, unnamed), which a peer must not be able to forge. PostgreSQL
    /// knows no such message either way.
    pub forged: bool,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_quiet {
            return write!(
                f,
                "framing error: a copy response (type 0x{:02x}) to a statement the audit skipped at byte {}",
                self.msg_type, self.offset
            );
        }
        if self.forged {
            return write!(
                f,
                "framing error: a message of type 0x00 (the relay's own records) at byte {}",
                self.offset
            );
        }
        if self.during_copy {
            return write!(
                f,
                "framing error: a message of type 0x{:02x} during COPY FROM STDIN at byte {}",
                self.msg_type, self.offset
            );
        }
        write!(
            f,
            "framing error: message type 0x{:02x} with length {} at byte {}",
            self.msg_type, self.length, self.offset
        )
    }
}
