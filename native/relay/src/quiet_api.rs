//! Quiet sets from JavaScript (quiet.rs): shapes whose statements a session's observers need
//! nothing of, or only a summary.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::Buffer;
use napi::{Error, Result, Status};
use napi_derive::napi;

use crate::{addon, bad_parts, quiet, record, ADDON};

/// A new quiet set (statements its sessions' observers need nothing of); returns its id.
#[napi]
pub fn quiet_set() -> Result<u32> {
    let a = addon()?;
    let id = a.next_id.fetch_add(1, Ordering::Relaxed);
    a.quiet.create(id);
    Ok(id)
}

/// Forgets a quiet set (sessions relayed with it keep it).
#[napi]
pub fn drop_quiet_set(set: u32) {
    if let Some(a) = ADDON.get() {
        a.quiet.drop_set(set);
    }
}

/// Adds a shape key (from a key record) to a quiet set: quiet, or (`summary` > 0) summarized as
/// that shape, with its record parts (record.rs) if given. A key of another length, or parts that
/// do not decode, are refused.
#[napi]
pub fn quiet(set: u32, key: Buffer, summary: Option<u32>, parts: Option<Buffer>) -> Result<()> {
    let key: quiet::ShapeKey = key.as_ref().try_into().map_err(|_| {
        Error::new(
            Status::InvalidArg,
            format!(
                "pgwarden-relay: a shape key has 16 bytes, not {}",
                key.len()
            ),
        )
    })?;
    let shape = match summary.unwrap_or(0) {
        0 => quiet::Shape::Quiet,
        n => {
            let parts = match parts {
                Some(b) => Some(Arc::new(
                    record::ShapeParts::decode(&b).ok_or_else(bad_parts)?,
                )),
                None => None,
            };
            quiet::Shape::Summarized(n, parts)
        }
    };
    if let Some(s) = addon()?.quiet.get(set) {
        s.insert(key, shape);
    }
    Ok(())
}
