//! A sealed segment's frame (src/audit/store/seal.ts, FORMAT.md), for the audit writer thread:
//! AES-256-GCM through aws-lc into a buffer the writer keeps, instead of a cipher object, a nonce
//! and two new buffers per frame in JavaScript (about 50 µs a frame there). seal.ts stays the
//! fallback and reads both.
//!
//! `'PWSF' | u32 length | u32 !length | nonce (12) | ciphertext (length) | tag (16)`, big-endian;
//! additional data: the frame's offset in the file (u64) followed by its 12 header bytes.
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

const MAGIC: u32 = 0x5057_5346; // 'PWSF'
const HEAD: usize = 12;
const NONCE: usize = 12;
const TAG: usize = 16;
/// Bytes a frame adds to its data.
pub const OVERHEAD: usize = HEAD + NONCE + TAG;

/// Writes the frame of `data` at file offset `offset` into `out`; returns its length.
pub fn seal_frame(
    key: &[u8],
    nonce: &[u8; NONCE],
    offset: u64,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, String> {
    let n = u32::try_from(data.len())
        .ok()
        .filter(|&n| n > 0 && n <= 0x7fff_ffff - OVERHEAD as u32)
        .ok_or("a frame holds 1 byte to 2 GiB")?;
    let total = OVERHEAD + data.len();
    if out.len() < total {
        return Err("no room for the frame".into());
    }
    let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| "a file key has 32 bytes")?;
    let key = LessSafeKey::new(key);
    out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    out[4..8].copy_from_slice(&n.to_be_bytes());
    out[8..12].copy_from_slice(&(!n).to_be_bytes());
    out[HEAD..HEAD + NONCE].copy_from_slice(nonce);
    let mut aad = [0u8; 8 + HEAD];
    aad[..8].copy_from_slice(&offset.to_be_bytes());
    aad[8..].copy_from_slice(&out[..HEAD]);
    let body = &mut out[HEAD + NONCE..HEAD + NONCE + data.len()];
    body.copy_from_slice(data);
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), body)
        .map_err(|_| "AES-GCM refused the frame")?;
    out[total - TAG..total].copy_from_slice(tag.as_ref());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::aead::{Aad, Nonce};

    #[test]
    fn a_frame_opens_with_its_offset_only() {
        let key = [7u8; 32];
        let nonce = [9u8; 12];
        let data = b"{\"seq\":1}\n{\"seq\":2}\n";
        let mut out = vec![0u8; OVERHEAD + data.len()];
        let n = seal_frame(&key, &nonce, 24, data, &mut out).unwrap();
        assert_eq!(n, out.len());
        assert_eq!(&out[..4], b"PWSF");
        let open = |offset: u64| {
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
            let mut aad = offset.to_be_bytes().to_vec();
            aad.extend_from_slice(&out[..HEAD]);
            let mut body = out[HEAD + NONCE..].to_vec();
            k.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map(|p| p.to_vec())
        };
        assert_eq!(open(24).unwrap(), data);
        assert!(open(25).is_err());
        assert!(seal_frame(&key, &nonce, 24, b"", &mut out).is_err());
        assert!(seal_frame(&key, &nonce, 24, data, &mut out[..10]).is_err());
    }
}
