//! The framer's side of quiet statements (quiet.rs): the calls the relay makes on it.
use std::sync::Arc;

use super::{Framer, Side};
use crate::quiet::QuietSet;
use crate::quiet_client::{ClientQuiet, QuietSummary};

impl Framer {
    /// Client side of an observed session: quiet statements of this set are not observed;
    /// `groups`: extended-protocol groups may be quiet too (not with strict durability: a held
    /// group's early answer reaches the client before it is observed).
    pub fn with_quiet(mut self, set: Option<Arc<QuietSet>>, groups: bool) -> Framer {
        if self.observe && self.side == Side::Client {
            self.cq = set.map(|s| ClientQuiet::new(s, groups));
        }
        self
    }

    /// Client side: ReadyForQuery messages the server has sent (the server framer's
    /// `sync_points`), before each chunk.
    pub fn set_answered(&mut self, n: u64) {
        if let Some(cq) = self.cq.as_mut() {
            cq.answered = n;
        }
    }

    /// Client side: Query, Sync and FunctionCall messages seen; server side: ReadyForQuery.
    pub fn sync_points(&self) -> u64 {
        self.cq
            .as_ref()
            .map_or(self.sync_points, |cq| cq.sync_points)
    }

    /// Server side: the server's next messages, up to its ReadyForQuery, answer a quiet
    /// statement; what was framed of that answer so far is dropped too. `tag`: the statement is
    /// summarized (its CommandComplete's tag is kept: `take_quiet_tag`).
    pub fn begin_quiet_answer(&mut self, tag: bool) {
        self.quiet_answer = true;
        self.tag_wanted = tag;
        self.quiet_tag = None;
        self.out.clear();
        self.copy_start = 0;
        self.copied = false;
        self.run_count = 0;
        self.run_bytes = 0;
        if self.hdr_len == 5 {
            self.dropping = true;
            self.skipping = false;
        }
    }

    /// Client side: the last quiet statement (whole messages), for an answer that failed.
    pub fn quiet_query(&self) -> &[u8] {
        self.cq.as_ref().map_or(&[], |cq| &cq.quiet_query)
    }

    #[cfg(test)]
    pub fn take_quiet_query(&mut self) -> Vec<u8> {
        self.cq
            .as_mut()
            .map(|cq| std::mem::take(&mut cq.quiet_query))
            .unwrap_or_default()
    }

    /// Client side: the last quiet statement's summary, if it has one.
    pub fn take_quiet_summary(&mut self) -> Option<QuietSummary> {
        self.cq.as_mut().and_then(|cq| cq.quiet_summary.take())
    }

    /// Server side: the tag of a summarized statement's CommandComplete framed in the last chunk
    /// (without its NUL).
    pub fn take_quiet_tag(&mut self) -> Option<Vec<u8>> {
        if self.tag_capture {
            return None; // still coming
        }
        let mut tag = self.quiet_tag.take()?;
        if tag.last() == Some(&0) {
            tag.pop();
        }
        Some(tag)
    }

    pub(super) fn capture_tag(&mut self, body: &[u8]) {
        /// A command tag is a few words: more is not kept.
        const MAX_TAG: usize = 64;
        if let Some(tag) = self.quiet_tag.as_mut() {
            let room = MAX_TAG.saturating_sub(tag.len());
            tag.extend_from_slice(&body[..body.len().min(room)]);
        }
    }

    /// Client side: an extended-protocol group is held apart, not yet observed.
    pub fn group_pending(&self) -> bool {
        self.cq.as_ref().is_some_and(ClientQuiet::group_pending)
    }

    /// Client side: a held group is observed after all (the session ends).
    pub fn release_group(&mut self) {
        if let Some(cq) = self.cq.as_mut() {
            cq.release(&mut self.out);
        }
    }
}
