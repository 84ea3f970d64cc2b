//! Bearer tokens every facade instance can verify (docs/scale-out.md, "Tokens").
//!
//! A token is not kept anywhere: it carries its own expiry and a MAC under a key derived
//! from the facade key, which every instance of one deployment already holds (it opens
//! the clients' sealed secrets). So a token from instance A is checked by instance B
//! with no shared table and no database round trip, and nothing at rest can be replayed
//! as a token.
//!
//! Layout (45 bytes, then unpadded Base64url, 60 characters):
//! `version (1, = 1) || expires_ms (8, big-endian) || nonce (12) || tag (24)`, where
//! `tag` is the first 24 bytes of HMAC-SHA256(token key, "cofre/api/v1/bearer" || 0 ||
//! api key || 0 || SHA-256(client secret) || version || expires_ms || nonce) and the
//! token key is HMAC-SHA256(facade key, "cofre/api/v1/bearer-token"). Binding the
//! client's secret means a client re-registered with a new secret loses its
//! outstanding tokens at once; a removed client's tokens fail because its api key is
//! unknown; otherwise a token lives its 900 s (`TOKEN_TTL_MS`), as before.
//! Pure: the time and the random source come in as parameters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::ct_eq;
use crate::crypto::mac::hmac_sha256;

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 24;
const RAW: usize = 1 + 8 + NONCE + TAG;
/// Characters of an encoded token (unpadded Base64url of its 45 bytes).
pub const TOKEN_CHARS: usize = 60;

/// The key tokens are MACed under, derived from the facade key.
pub struct BearerKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerKey([REDACTED])")
    }
}

impl BearerKey {
    /// HMAC-SHA256(facade key, "cofre/api/v1/bearer-token").
    pub fn derive(facade_key: &[u8]) -> Self {
        Self(Zeroizing::new(hmac_sha256(
            facade_key,
            b"cofre/api/v1/bearer-token",
        )))
    }

    fn tag(&self, api_key: &str, secret: &[u8], head: &[u8]) -> [u8; TAG] {
        let mut msg = Zeroizing::new(Vec::with_capacity(64 + api_key.len() + head.len()));
        msg.extend_from_slice(b"cofre/api/v1/bearer\0");
        msg.extend_from_slice(api_key.as_bytes());
        msg.push(0);
        msg.extend_from_slice(&Sha256::digest(secret));
        msg.extend_from_slice(head);
        let full = hmac_sha256(&self.0[..], &msg);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
    }

    /// A token for the client (`api_key`, whose secret is `secret`) valid until
    /// `expires_ms`.
    pub fn mint(
        &self,
        api_key: &str,
        secret: &[u8],
        expires_ms: u64,
        rng: &mut impl CryptoRng,
    ) -> String {
        let mut raw = Vec::with_capacity(RAW);
        raw.push(VERSION);
        raw.extend_from_slice(&expires_ms.to_be_bytes());
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        raw.extend_from_slice(&nonce);
        let tag = self.tag(api_key, secret, &raw);
        raw.extend_from_slice(&tag);
        B64URL.encode(raw)
    }

    /// Whether `token` was minted for this client under this key and is still valid at
    /// `now_ms`. Total: any other text is `false`.
    pub fn verify(&self, token: &str, api_key: &str, secret: &[u8], now_ms: u64) -> bool {
        if token.len() != TOKEN_CHARS {
            return false;
        }
        let Ok(raw) = B64URL.decode(token) else {
            return false;
        };
        if raw.len() != RAW || raw[0] != VERSION {
            return false;
        }
        let (head, tag) = raw.split_at(RAW - TAG);
        if !ct_eq(&self.tag(api_key, secret, head), tag) {
            return false;
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&head[1..9]);
        u64::from_be_bytes(expiry) > now_ms
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const NOW: u64 = 1_767_225_600_000;

    #[test]
    fn minted_tokens_verify_on_any_holder_of_the_facade_key_until_expiry() {
        let a = BearerKey::derive(&[7u8; 32]);
        let b = BearerKey::derive(&[7u8; 32]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let t = a.mint("key", b"secret", NOW + 900_000, &mut rng);
        assert_eq!(t.len(), TOKEN_CHARS);
        assert!(b.verify(&t, "key", b"secret", NOW));
        assert!(b.verify(&t, "key", b"secret", NOW + 899_999));
        assert!(!b.verify(&t, "key", b"secret", NOW + 900_000));
        // Another deployment's key, another client, a re-registered secret.
        assert!(!BearerKey::derive(&[8u8; 32]).verify(&t, "key", b"secret", NOW));
        assert!(!b.verify(&t, "key-2", b"secret", NOW));
        assert!(!b.verify(&t, "key", b"secret-2", NOW));
        // Two tokens differ (the nonce).
        assert_ne!(t, a.mint("key", b"secret", NOW + 900_000, &mut rng));
    }

    #[test]
    fn every_altered_or_malformed_token_is_refused() {
        let k = BearerKey::derive(&[7u8; 32]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let t = k.mint("key", b"secret", NOW + 900_000, &mut rng);
        for i in 0..t.len() {
            let mut s = t.clone().into_bytes();
            s[i] = if s[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(s).unwrap();
            assert!(!k.verify(&s, "key", b"secret", NOW), "{i}");
        }
        // A later expiry written into a valid token does not verify.
        let mut raw = B64URL.decode(&t).unwrap();
        raw[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(!k.verify(&B64URL.encode(&raw), "key", b"secret", NOW));
        for bad in [
            "",
            "made-up",
            "é",
            &"A".repeat(60),
            &"=".repeat(60),
            &t[1..],
        ] {
            assert!(!k.verify(bad, "key", b"secret", NOW));
        }
        // A token of another version, its tag computed as for version 1 under the
        // right key, is refused: the version is checked, not only MACed.
        let mut raw = B64URL.decode(&t).unwrap();
        raw[0] = VERSION + 1;
        let tag = k.tag("key", b"secret", &raw[..RAW - TAG]);
        raw[RAW - TAG..].copy_from_slice(&tag);
        assert!(!k.verify(&B64URL.encode(&raw), "key", b"secret", NOW));
        // The positive control: the same rebuild with the version kept verifies.
        raw[0] = VERSION;
        let tag = k.tag("key", b"secret", &raw[..RAW - TAG]);
        raw[RAW - TAG..].copy_from_slice(&tag);
        assert!(k.verify(&B64URL.encode(&raw), "key", b"secret", NOW));
        // Debug never shows the key.
        assert_eq!(format!("{k:?}"), "BearerKey([REDACTED])");
    }
}
