//! Message authentication codes: ISO 9797-1 MAC algorithm 3 (the "retail MAC"),
//! CMAC (NIST SP 800-38B) over AES and TDES, and HMAC-SHA256 (RFC 2104).

use aes::{Aes128, Aes192, Aes256};
use cmac::{Cmac, KeyInit, Mac};
use des::{TdesEde2, TdesEde3};
use hmac::Hmac;
use sha2::Sha256;

use super::cipher::des_encrypt;
use super::{ClearKey, Error, ct_eq};

/// ISO 9797-1 MAC algorithm 3 with a double-length key (K, K'): single-DES CBC-MAC under K
/// over every block, then the last block is decrypted under K' and encrypted under K.
/// Padding is ISO 9797-1 method 1 (zeros; empty data becomes one zero block), the
/// convention of payment MACs. Returns the full 8-byte MAC; truncate as the caller needs.
pub fn retail_mac(key: &ClearKey, data: &[u8]) -> Result<[u8; 8], Error> {
    let k = key.expose_secret();
    if k.len() != 16 {
        return Err(Error::KeyLength { got: k.len() });
    }
    let mut k1 = [0u8; 8];
    let mut k2 = [0u8; 8];
    k1.copy_from_slice(&k[..8]);
    k2.copy_from_slice(&k[8..]);
    let mut chain = [0u8; 8];
    let mut blocks = data.chunks(8).peekable();
    if blocks.peek().is_none() {
        des_encrypt(&k1, &mut chain);
    }
    for block in blocks {
        for (c, b) in chain.iter_mut().zip(block) {
            *c ^= b;
        }
        des_encrypt(&k1, &mut chain);
    }
    // Output transformation 3: decrypt under K', encrypt under K.
    super::cipher::des_decrypt(&k2, &mut chain);
    des_encrypt(&k1, &mut chain);
    zeroize::Zeroize::zeroize(&mut k1);
    zeroize::Zeroize::zeroize(&mut k2);
    Ok(chain)
}

/// CMAC over AES (16/24/32-byte keys) or TDES (16/24-byte keys), per NIST SP 800-38B.
/// The output is one cipher block (16 bytes for AES, 8 for TDES).
pub fn cmac(
    algorithm: super::cipher::Algorithm,
    key: &ClearKey,
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    use super::cipher::Algorithm;
    let k = key.expose_secret();
    let err = || Error::KeyLength { got: k.len() };
    fn run<M: Mac + KeyInit>(k: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(k).ok()?;
        m.update(data);
        Some(m.finalize().into_bytes().to_vec())
    }
    let out = match (algorithm, k.len()) {
        (Algorithm::Aes, 16) => run::<Cmac<Aes128>>(k, data),
        (Algorithm::Aes, 24) => run::<Cmac<Aes192>>(k, data),
        (Algorithm::Aes, 32) => run::<Cmac<Aes256>>(k, data),
        (Algorithm::Tdes, 16) => run::<Cmac<TdesEde2>>(k, data),
        (Algorithm::Tdes, 24) => run::<Cmac<TdesEde3>>(k, data),
        _ => None,
    };
    out.ok_or_else(err)
}

/// AES-CMAC, the AES MAC of X9.24 and TR-31 version D.
pub fn aes_cmac(key: &ClearKey, data: &[u8]) -> Result<[u8; 16], Error> {
    let v = cmac(super::cipher::Algorithm::Aes, key, data)?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&v);
    Ok(out)
}

/// HMAC-SHA256 (RFC 2104 / FIPS 198-1). Any key length is accepted, as HMAC allows.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts every key length; this arm exists only because the trait is fallible.
        Err(_) => return [0u8; 32],
    };
    m.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&m.finalize().into_bytes());
    out
}

/// MAC algorithms the calculator and the daemon offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// ISO 9797-1 algorithm 3, double-length TDES key, 8-byte MAC.
    Iso9797Alg3,
    /// AES-CMAC, 16-byte MAC.
    AesCmac,
    /// HMAC-SHA256, 32-byte MAC.
    HmacSha256,
}

/// Computes a MAC with the named algorithm.
pub fn generate(algorithm: MacAlgorithm, key: &ClearKey, data: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(match algorithm {
        MacAlgorithm::Iso9797Alg3 => retail_mac(key, data)?.to_vec(),
        MacAlgorithm::AesCmac => aes_cmac(key, data)?.to_vec(),
        MacAlgorithm::HmacSha256 => hmac_sha256(key.expose_secret(), data).to_vec(),
    })
}

/// Verifies a MAC in constant time. A presented MAC may be truncated (at least 4 bytes),
/// as payment messages commonly carry the leftmost 4 bytes.
pub fn verify(
    algorithm: MacAlgorithm,
    key: &ClearKey,
    data: &[u8],
    mac: &[u8],
) -> Result<bool, Error> {
    let full = generate(algorithm, key, data)?;
    if mac.len() < 4 || mac.len() > full.len() {
        return Err(Error::FieldLength {
            field: "MAC",
            expected: "4 bytes up to the algorithm's full length",
        });
    }
    Ok(ct_eq(&full[..mac.len()], mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClearKey {
        ClearKey::from_hex(s).unwrap()
    }

    // ISO/IEC 9797-1:1999 Annex B.4 (MAC algorithm 3, padding method 1), key
    // K = 0123456789ABCDEF, K' = FEDCBA9876543210; data "Now is the time for all ".
    #[test]
    fn retail_mac_iso9797_annex_b4() {
        let k = key("0123456789ABCDEFFEDCBA9876543210");
        let d1 = b"Now is the time for all ";
        assert_eq!(
            hex::encode_upper(retail_mac(&k, d1).unwrap()),
            "A1C72E74EA3FA9B6"
        );
        let d2 = b"Now is the time for it";
        assert_eq!(
            hex::encode_upper(retail_mac(&k, d2).unwrap()),
            "2E2B1428CC78254F"
        );
    }

    // NIST SP 800-38B Appendix D.1, AES-128 examples 1 and 2.
    #[test]
    fn aes_cmac_sp800_38b() {
        let k = key("2b7e151628aed2a6abf7158809cf4f3c");
        assert_eq!(
            hex::encode(aes_cmac(&k, b"").unwrap()),
            "bb1d6929e95937287fa37d129b756746"
        );
        let m = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            hex::encode(aes_cmac(&k, &m).unwrap()),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
    }

    // NIST SP 800-38B Appendix D.4 (three-key TDES), example 1 (the empty message).
    #[test]
    fn tdes_cmac_sp800_38b() {
        let k = key("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5");
        let mac = cmac(crate::crypto::cipher::Algorithm::Tdes, &k, b"").unwrap();
        assert_eq!(hex::encode(mac), "b7a688e122ffaf95");
    }

    // RFC 4231 section 4.3, test case 2.
    #[test]
    fn hmac_sha256_rfc4231() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_truncated_and_wrong() {
        let k = key("0123456789ABCDEFFEDCBA9876543210");
        let d = b"Now is the time for all ";
        let mac = hex::decode("A1C72E74").unwrap();
        assert!(verify(MacAlgorithm::Iso9797Alg3, &k, d, &mac).unwrap());
        assert!(
            !verify(
                MacAlgorithm::Iso9797Alg3,
                &k,
                d,
                &hex::decode("A1C72E75").unwrap()
            )
            .unwrap()
        );
        assert!(verify(MacAlgorithm::Iso9797Alg3, &k, d, &[1, 2]).is_err());
        // The whole MAC verifies; one byte more than the algorithm makes is refused.
        let full = hex::decode("A1C72E74EA3FA9B6").unwrap();
        assert!(verify(MacAlgorithm::Iso9797Alg3, &k, d, &full).unwrap());
        let mut longer = full.clone();
        longer.push(0);
        assert!(verify(MacAlgorithm::Iso9797Alg3, &k, d, &longer).is_err());
        assert!(retail_mac(&key("0123456789ABCDEF"), d).is_err());
    }
}
