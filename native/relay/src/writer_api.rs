//! The audit store writer thread's functions (native-writer.ts): the hash chain and Merkle
//! frontier of a batch of records (chain.rs) and a sealed segment's frame (seal.rs). They keep
//! no state and need no `start`.
use napi::bindgen_prelude::{Buffer, Float64Array, Uint32Array};
use napi::{Error, Result, Status};
use napi_derive::napi;

use crate::{chain, seal};

/// An argument the audit writer's functions refuse.
fn refused(function: &str, why: &str) -> Error {
    Error::new(
        Status::InvalidArg,
        format!("pgwarden-relay: {function}: {why}"),
    )
}

/// A whole number JavaScript holds exactly (0 to 2^53 - 1).
fn whole(x: f64) -> bool {
    (0.0..=9_007_199_254_740_991.0).contains(&x) && x.fract() == 0.0
}

/// The audit store's hash chain and Merkle frontier over a batch of records (chain.rs), for its
/// writer thread. Keeps no state and needs no `init`: `frontier` is updated in place, the lines
/// are written to `lines` and the hashes (32 bytes each) to `hashes`; returns the lines' length.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn chain_records(
    events: Buffer,
    ends: Uint32Array,
    times_ms: Float64Array,
    first_seq: f64,
    prev: Buffer,
    mut frontier: Buffer,
    size: f64,
    mut lines: Buffer,
    mut hashes: Buffer,
) -> Result<u32> {
    let refused = |why: &str| refused("chainRecords", why);
    if !whole(first_seq) || !whole(size) {
        return Err(refused("seq and size are whole numbers"));
    }
    let prev: &[u8; chain::HASH] = prev
        .as_ref()
        .try_into()
        .map_err(|_| refused("prev is 32 bytes"))?;
    let n = chain::chain(
        &events,
        &ends,
        &times_ms,
        first_seq as u64,
        prev,
        &mut frontier,
        size as u64,
        &mut lines,
        &mut hashes,
    )
    .map_err(|m| refused(&m))?;
    u32::try_from(n).map_err(|_| refused("a batch of 4 GiB or more"))
}

/// A sealed audit segment's frame of `data` at file `offset` (seal.rs), written into `out`;
/// returns its length. `key` is the file's key (32 bytes), `nonce` 12 bytes used for no other
/// frame of the file.
#[napi]
pub fn seal_frame(
    key: Buffer,
    nonce: Buffer,
    offset: f64,
    data: Buffer,
    mut out: Buffer,
) -> Result<u32> {
    let refused = |why: &str| refused("sealFrame", why);
    if !whole(offset) {
        return Err(refused("the offset is a whole number"));
    }
    let nonce: &[u8; 12] = nonce
        .as_ref()
        .try_into()
        .map_err(|_| refused("a nonce is 12 bytes"))?;
    let n =
        seal::seal_frame(&key, nonce, offset as u64, &data, &mut out).map_err(|m| refused(&m))?;
    u32::try_from(n).map_err(|_| refused("a frame of 4 GiB or more"))
}
