//! [`FacadeSeal`]: stored idempotency answers sealed under keys derived from the facade
//! key (AES-256-CBC with a random IV, then HMAC-SHA256 over IV and ciphertext, the
//! first 16 bytes kept), so that the table holds no answer in clear: a dCVV2, a
//! security-code block or a customer's data never rest there readable.

use zeroize::Zeroizing;

use crate::api::store::AnswerSeal;
use crate::crypto::cipher::BlockCipher;
use crate::crypto::mac::hmac_sha256;
use crate::crypto::{ClearKey, ct_eq};

/// The sealing keys.
pub struct FacadeSeal {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FacadeSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FacadeSeal([REDACTED])")
    }
}

impl FacadeSeal {
    /// Keys derived from the facade key: HMAC-SHA256(facade key, label).
    pub fn new(facade_key: &ClearKey) -> Self {
        Self {
            enc: Zeroizing::new(hmac_sha256(
                facade_key.expose_secret(),
                b"cofre/api/v1/answer-enc",
            )),
            mac: Zeroizing::new(hmac_sha256(
                facade_key.expose_secret(),
                b"cofre/api/v1/answer-mac",
            )),
        }
    }
}

impl AnswerSeal for FacadeSeal {
    fn seal(&self, clear: &[u8]) -> String {
        let mut iv = [0u8; 16];
        rand::fill(&mut iv);
        let mut buf = Zeroizing::new(clear.to_vec());
        buf.push(0x80);
        while !buf.len().is_multiple_of(16) {
            buf.push(0);
        }
        // A 32-byte key and a 16-byte IV over whole blocks: the cipher cannot refuse.
        let encrypted = BlockCipher::aes(&self.enc[..]).and_then(|c| c.encrypt_cbc(&iv, &mut buf));
        if encrypted.is_err() {
            return String::new();
        }
        let mut out = iv.to_vec();
        out.extend_from_slice(&buf);
        let tag = hmac_sha256(&self.mac[..], &out);
        out.extend_from_slice(&tag[..16]);
        hex::encode_upper(out)
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let raw = hex::decode(sealed).ok()?;
        if raw.len() < 48 || (raw.len() - 32) % 16 != 0 {
            return None;
        }
        let (data, tag) = raw.split_at(raw.len() - 16);
        if !ct_eq(&hmac_sha256(&self.mac[..], data)[..16], tag) {
            return None;
        }
        let (iv, ct) = data.split_at(16);
        let mut buf = Zeroizing::new(ct.to_vec());
        BlockCipher::aes(&self.enc[..])
            .and_then(|c| c.decrypt_cbc(iv, &mut buf))
            .ok()?;
        let end = buf.iter().rposition(|b| *b == 0x80)?;
        Some(buf[..end].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_refuses_tampering() {
        let key = ClearKey::from_array(&[7u8; 32]);
        let s = FacadeSeal::new(&key);
        let sealed = s.seal(br#"{"dcvv2":"976"}"#);
        assert!(!sealed.contains("976") || !sealed.contains("dcvv2"));
        assert_eq!(s.open(&sealed).as_deref(), Some(&br#"{"dcvv2":"976"}"#[..]));
        assert_eq!(s.open(&s.seal(b"")).as_deref(), Some(&b""[..]));
        let mut bad = sealed.clone().into_bytes();
        bad[40] = if bad[40] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.open(std::str::from_utf8(&bad).unwrap_or("")), None);
        let other = FacadeSeal::new(&ClearKey::from_array(&[8u8; 32]));
        assert_eq!(other.open(&sealed), None);
        assert_eq!(s.open("zz"), None);
    }
}
