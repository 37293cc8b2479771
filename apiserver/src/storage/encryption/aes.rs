//! The `aescbc` and `aesgcm` providers, in upstream's stored format
//! (`value/encrypt/aes`):
//! - CBC: a random 16-byte IV, then the AES-CBC ciphertext of the value
//!   padded with PKCS#7. No authentication.
//! - GCM: a random 12-byte nonce, then the ciphertext and its 16-byte tag;
//!   the etcd key is the authenticated data, so a value copied to another
//!   key does not decrypt.
//!
//! Keys of 16, 24 or 32 bytes select AES-128, -192 or -256.

use super::{TransformError, Transformer, random};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{AesGcm, Nonce, Tag};
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, InnerIvInit};
use std::borrow::Cow;

const BLOCK: usize = 16;
const GCM_NONCE: usize = 12;
const GCM_TAG: usize = 16;

/// The key sizes AES takes, in bytes.
pub const KEY_SIZES: &[usize] = &[16, 24, 32];

#[derive(Clone)]
enum Block {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl Block {
    fn new(key: &[u8]) -> Option<Self> {
        Some(match key.len() {
            16 => Block::A128(Aes128::new_from_slice(key).ok()?),
            24 => Block::A192(Aes192::new_from_slice(key).ok()?),
            32 => Block::A256(Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }
}

/// AES-CBC with PKCS#7 padding and a random IV per value.
pub struct Cbc(Block);

impl Cbc {
    /// None unless `key` is 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        Block::new(key).map(Cbc)
    }
}

fn cbc_encrypt<C: BlockEncryptMut + BlockCipher + Clone>(c: &C, iv: &[u8], data: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .expect("an IV of one block")
        .encrypt_padded_vec_mut::<Pkcs7>(data)
}

fn cbc_decrypt<C: BlockDecryptMut + BlockCipher + Clone>(c: &C, iv: &[u8], data: &[u8]) -> Vec<u8> {
    cbc::Decryptor::<C>::inner_iv_slice_init(c.clone(), iv)
        .expect("an IV of one block")
        .decrypt_padded_vec_mut::<NoPadding>(data)
        .expect("whole blocks need no padding")
}

/// Strips PKCS#7 padding, with upstream's two errors.
fn unpad(mut plain: Vec<u8>) -> Result<Vec<u8>, TransformError> {
    let Some(&last) = plain.last() else {
        return Err(TransformError::InvalidPkcs7Data);
    };
    let pad = last as usize;
    if pad == 0 || pad > plain.len() {
        return Err(TransformError::InvalidPkcs7Data);
    }
    let size = plain.len() - pad;
    if plain[size..].iter().any(|&b| b != last) {
        return Err(TransformError::InvalidPkcs7Padding);
    }
    plain.truncate(size);
    Ok(plain)
}

impl Transformer for Cbc {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        _context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.len() < BLOCK {
            return Err(TransformError::TooShort);
        }
        let (iv, body) = data.split_at(BLOCK);
        if body.len() % BLOCK != 0 {
            return Err(TransformError::NotBlockMultiple);
        }
        let plain = match &self.0 {
            Block::A128(c) => cbc_decrypt(c, iv, body),
            Block::A192(c) => cbc_decrypt(c, iv, body),
            Block::A256(c) => cbc_decrypt(c, iv, body),
        };
        Ok((Cow::Owned(unpad(plain)?), false))
    }

    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        _context: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut iv = [0u8; BLOCK];
        random(&mut iv)?;
        let sealed = match &self.0 {
            Block::A128(c) => cbc_encrypt(c, &iv, &data),
            Block::A192(c) => cbc_encrypt(c, &iv, &data),
            Block::A256(c) => cbc_encrypt(c, &iv, &data),
        };
        let mut out = Vec::with_capacity(BLOCK + sealed.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

enum GcmCipher {
    A128(Box<AesGcm<Aes128, U12>>),
    A192(Box<AesGcm<Aes192, U12>>),
    A256(Box<AesGcm<Aes256, U12>>),
}

/// AES-GCM with a random 96-bit nonce per value, bound to the etcd key.
/// Random nonces limit a key to about 2^32 writes (NIST SP 800-38D), so
/// keys must be rotated, as upstream documents.
pub struct Gcm(GcmCipher);

impl Gcm {
    /// None unless `key` is 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        Some(Gcm(match key.len() {
            16 => GcmCipher::A128(Box::new(AesGcm::new_from_slice(key).ok()?)),
            24 => GcmCipher::A192(Box::new(AesGcm::new_from_slice(key).ok()?)),
            32 => GcmCipher::A256(Box::new(AesGcm::new_from_slice(key).ok()?)),
            _ => return None,
        }))
    }
}

impl Transformer for Gcm {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        context: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        if data.len() < GCM_NONCE {
            return Err(TransformError::TooShort);
        }
        let (nonce, sealed) = data.split_at(GCM_NONCE);
        if sealed.len() < GCM_TAG {
            return Err(TransformError::Authentication);
        }
        let (body, tag) = sealed.split_at(sealed.len() - GCM_TAG);
        let (nonce, tag) = (Nonce::<U12>::from_slice(nonce), Tag::from_slice(tag));
        let mut plain = body.to_vec();
        match &self.0 {
            GcmCipher::A128(c) => c.decrypt_in_place_detached(nonce, context, &mut plain, tag),
            GcmCipher::A192(c) => c.decrypt_in_place_detached(nonce, context, &mut plain, tag),
            GcmCipher::A256(c) => c.decrypt_in_place_detached(nonce, context, &mut plain, tag),
        }
        .map_err(|_| TransformError::Authentication)?;
        Ok((Cow::Owned(plain), false))
    }

    fn transform_to_storage(
        &self,
        data: Vec<u8>,
        context: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let mut out = Vec::with_capacity(GCM_NONCE + data.len() + GCM_TAG);
        out.resize(GCM_NONCE, 0);
        random(&mut out)?;
        out.extend_from_slice(&data);
        let (nonce, body) = out.split_at_mut(GCM_NONCE);
        let nonce = Nonce::<U12>::from_slice(nonce);
        let tag = match &self.0 {
            GcmCipher::A128(c) => c.encrypt_in_place_detached(nonce, context, body),
            GcmCipher::A192(c) => c.encrypt_in_place_detached(nonce, context, body),
            GcmCipher::A256(c) => c.encrypt_in_place_detached(nonce, context, body),
        }
        // Only messages over 64 GiB are refused.
        .expect("a value etcd can hold encrypts");
        out.extend_from_slice(&tag);
        Ok(out)
    }
}
