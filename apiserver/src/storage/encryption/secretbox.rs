//! The `secretbox` provider (upstream's `value/encrypt/secretbox`): NaCl's
//! XSalsa20-Poly1305 with a 32-byte key. Stored as a random 24-byte nonce,
//! then the sealed box (the 16-byte Poly1305 tag, then the ciphertext), as
//! Go's `secretbox.Seal` writes it. No authenticated data.

use super::{TransformError, Transformer, random};
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, Tag, XSalsa20Poly1305};
use std::borrow::Cow;

const NONCE: usize = 24;
const TAG: usize = 16;

/// The key size secretbox takes, in bytes.
pub const KEY_SIZES: &[usize] = &[32];

pub struct Secretbox(Box<XSalsa20Poly1305>);

impl Secretbox {
    /// None unless `key` is 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        XSalsa20Poly1305::new_from_slice(key)
            .ok()
            .map(|c| Secretbox(Box::new(c)))
    }
}

impl Transformer for Secretbox {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.len() < NONCE + TAG {
            return Err(TransformError::TooShort);
        }
        let (nonce, sealed) = data.split_at(NONCE);
        let (tag, body) = sealed.split_at(TAG);
        let mut plain = body.to_vec();
        self.0
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                b"",
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| TransformError::Authentication)?;
        Ok((Cow::Owned(plain), false))
    }

    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        _context: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut out = vec![0u8; NONCE + TAG];
        random(&mut out[..NONCE])?;
        out.extend_from_slice(&data);
        let (head, body) = out.split_at_mut(NONCE + TAG);
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(&head[..NONCE]), b"", body)
            .expect("secretbox seals any value etcd can hold");
        head[NONCE..].copy_from_slice(&tag);
        Ok(out)
    }
}
