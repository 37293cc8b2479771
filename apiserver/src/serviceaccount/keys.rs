//! The service account signing key (`--service-account-signing-key-file`:
//! RSA or ECDSA P-256, PEM) and the public keys tokens are verified with
//! (its own and `--service-account-key-file`s), published as a JWK set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

pub enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

/// A public key: its algorithm, the bytes ring verifies with, its key id.
#[derive(Clone)]
pub struct PublicKey {
    pub alg: &'static str,
    /// RSA: the PKCS#1 RSAPublicKey DER; EC: the uncompressed point.
    pub raw: Vec<u8>,
    pub kid: String,
}

fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut label = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            if let (Some(l), Ok(der)) = (
                label.take(),
                base64::engine::general_purpose::STANDARD.decode(&body),
            ) {
                out.push((l, der));
            }
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    out
}

/// A stable key id: the URL-safe SHA-256 of the public key (upstream
/// hashes the DER SubjectPublicKeyInfo; this hashes the raw key).
fn key_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, raw).as_ref())
}

impl Signer {
    pub fn from_pem(text: &str) -> Result<Signer, String> {
        let blocks = pem_blocks(text);
        let (label, der) = blocks
            .into_iter()
            .find(|(l, _)| l.ends_with("PRIVATE KEY"))
            .ok_or("no PEM private key found")?;
        let rng = SystemRandom::new();
        match label.as_str() {
            "PRIVATE KEY" => {
                if let Ok(k) = RsaKeyPair::from_pkcs8(&der) {
                    return Ok(Signer::Rsa(k));
                }
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                    .map(Signer::Ecdsa)
                    .map_err(|_| "the private key is neither RSA nor ECDSA P-256 (PKCS#8)".into())
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(Signer::Rsa)
                .map_err(|e| format!("bad RSA private key: {e}")),
            other => Err(format!(
                "{other}: want a PKCS#8 (PRIVATE KEY) or PKCS#1 (RSA PRIVATE KEY) key"
            )),
        }
    }

    pub fn public(&self) -> PublicKey {
        let (alg, raw) = match self {
            Signer::Rsa(k) => ("RS256", k.public().as_ref().to_vec()),
            Signer::Ecdsa(k) => ("ES256", k.public_key().as_ref().to_vec()),
        };
        PublicKey {
            alg,
            kid: key_id(&raw),
            raw,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| "signing failed".to_string())?;
                Ok(sig)
            }
            Signer::Ecdsa(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "signing failed".into()),
        }
    }
}

impl PublicKey {
    /// Public keys from a PEM file: SubjectPublicKeyInfo blocks, or the
    /// public half of private keys.
    pub fn from_pem(text: &str) -> Result<Vec<PublicKey>, String> {
        let mut keys = Vec::new();
        for (label, der) in pem_blocks(text) {
            if label == "PUBLIC KEY" {
                let (_, spki) = <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<_>>::from_der(&der)
                    .map_err(|e| format!("bad public key: {e}"))?;
                let oid = spki.algorithm.algorithm.to_id_string();
                let alg = match oid.as_str() {
                    "1.2.840.113549.1.1.1" => "RS256",
                    "1.2.840.10045.2.1" => "ES256",
                    other => return Err(format!("public key algorithm {other} is not RSA or EC")),
                };
                let raw = spki.subject_public_key.data.to_vec();
                keys.push(PublicKey {
                    alg,
                    kid: key_id(&raw),
                    raw,
                });
            } else if label.ends_with("PRIVATE KEY") {
                let pem = format!(
                    "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                    base64::engine::general_purpose::STANDARD.encode(&der)
                );
                keys.push(Signer::from_pem(&pem)?.public());
            }
        }
        if keys.is_empty() {
            return Err("no PEM key found".into());
        }
        Ok(keys)
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => &signature::ECDSA_P256_SHA256_FIXED,
        };
        signature::UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, sig)
            .is_ok()
    }

    /// The JWK (RFC 7517) of this key.
    pub fn jwk(&self) -> Value {
        match self.alg {
            "RS256" => {
                let (n, e) = rsa_parts(&self.raw).unwrap_or_default();
                json!({"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                       "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
            }
            _ => {
                let (x, y) = self
                    .raw
                    .get(1..)
                    .map(|p| p.split_at(p.len() / 2))
                    .unwrap_or_default();
                json!({"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
                       "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
            }
        }
    }
}

/// Modulus and exponent of a PKCS#1 RSAPublicKey (SEQUENCE of two INTEGERs).
fn rsa_parts(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn read(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = d.split_first()?;
        let (&l, rest) = rest.split_first()?;
        let (len, rest) = if l < 0x80 {
            (l as usize, rest)
        } else {
            let n = (l & 0x7f) as usize;
            let (bytes, rest) = rest.split_at_checked(n)?;
            (
                bytes.iter().fold(0usize, |a, b| (a << 8) | *b as usize),
                rest,
            )
        };
        let (value, rest) = rest.split_at_checked(len)?;
        Some((tag, value, rest))
    }
    let (0x30, seq, _) = read(der)? else {
        return None;
    };
    let (0x02, n, rest) = read(seq)? else {
        return None;
    };
    let (0x02, e, _) = read(rest)? else {
        return None;
    };
    let strip = |v: &[u8]| {
        v.iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    Some((strip(n), strip(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_keys_sign_verify_and_publish() {
        let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let signer = Signer::from_pem(&pem).unwrap();
        let public = signer.public();
        assert_eq!(public.alg, "ES256");
        let sig = signer.sign(b"hello").unwrap();
        assert!(public.verify(b"hello", &sig));
        assert!(!public.verify(b"hellO", &sig));
        let jwk = public.jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        // The public half of a private key file verifies too.
        let again = PublicKey::from_pem(&pem).unwrap();
        assert!(again[0].verify(b"hello", &sig));
        assert_eq!(again[0].kid, public.kid);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Signer::from_pem("nothing").is_err());
        assert!(
            Signer::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }
}
