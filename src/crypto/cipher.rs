//! TDES (double and triple length, EDE) and AES (128/192/256) in ECB and CBC, through the
//! RustCrypto block ciphers. A [`BlockCipher`] holds the expanded key schedule, so callers
//! on a hot path build it once per key and reuse it.

use std::fmt;

use aes::{Aes128, Aes192, Aes256};
use des::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2, TdesEde3};

use super::{ClearKey, Error};

/// Block-cipher family, as named in TR-31 headers and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Triple DES, EDE, double (16-byte) or triple (24-byte) length.
    Tdes,
    /// AES-128, AES-192 or AES-256.
    Aes,
}

impl Algorithm {
    /// Block size in bytes.
    pub fn block_size(self) -> usize {
        match self {
            Algorithm::Tdes => 8,
            Algorithm::Aes => 16,
        }
    }
}

/// An expanded key schedule for one of the supported block ciphers.
#[derive(Clone)]
pub enum BlockCipher {
    /// Double-length TDES (K1 K2 K1).
    Tdes2(TdesEde2),
    /// Triple-length TDES (K1 K2 K3).
    Tdes3(TdesEde3),
    /// AES with a 16-byte key.
    Aes128(Aes128),
    /// AES with a 24-byte key.
    Aes192(Aes192),
    /// AES with a 32-byte key.
    Aes256(Aes256),
}

impl fmt::Debug for BlockCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            BlockCipher::Tdes2(_) => "TDES-2key",
            BlockCipher::Tdes3(_) => "TDES-3key",
            BlockCipher::Aes128(_) => "AES-128",
            BlockCipher::Aes192(_) => "AES-192",
            BlockCipher::Aes256(_) => "AES-256",
        };
        write!(f, "BlockCipher({name}, [REDACTED])")
    }
}

fn key_err(key: &[u8]) -> Error {
    Error::KeyLength { got: key.len() }
}

impl BlockCipher {
    /// Builds the schedule for `algorithm` from a clear key of a length it accepts.
    pub fn new(algorithm: Algorithm, key: &ClearKey) -> Result<Self, Error> {
        match algorithm {
            Algorithm::Tdes => Self::tdes(key.expose_secret()),
            Algorithm::Aes => Self::aes(key.expose_secret()),
        }
    }

    /// TDES from 16 or 24 key bytes. Parity bits are ignored, as DES ignores them.
    pub fn tdes(key: &[u8]) -> Result<Self, Error> {
        match key.len() {
            16 => Ok(Self::Tdes2(
                TdesEde2::new_from_slice(key).map_err(|_| key_err(key))?,
            )),
            24 => Ok(Self::Tdes3(
                TdesEde3::new_from_slice(key).map_err(|_| key_err(key))?,
            )),
            _ => Err(key_err(key)),
        }
    }

    /// AES from 16, 24 or 32 key bytes.
    pub fn aes(key: &[u8]) -> Result<Self, Error> {
        match key.len() {
            16 => Ok(Self::Aes128(
                Aes128::new_from_slice(key).map_err(|_| key_err(key))?,
            )),
            24 => Ok(Self::Aes192(
                Aes192::new_from_slice(key).map_err(|_| key_err(key))?,
            )),
            32 => Ok(Self::Aes256(
                Aes256::new_from_slice(key).map_err(|_| key_err(key))?,
            )),
            _ => Err(key_err(key)),
        }
    }

    /// The cipher family.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            BlockCipher::Tdes2(_) | BlockCipher::Tdes3(_) => Algorithm::Tdes,
            _ => Algorithm::Aes,
        }
    }

    /// Block size in bytes (8 for TDES, 16 for AES).
    pub fn block_size(&self) -> usize {
        self.algorithm().block_size()
    }

    /// Encrypts one block in place. `block.len()` must equal the block size.
    fn encrypt_one(&self, block: &mut [u8]) {
        match self {
            BlockCipher::Tdes2(c) => enc(c, block),
            BlockCipher::Tdes3(c) => enc(c, block),
            BlockCipher::Aes128(c) => enc(c, block),
            BlockCipher::Aes192(c) => enc(c, block),
            BlockCipher::Aes256(c) => enc(c, block),
        }
    }

    fn decrypt_one(&self, block: &mut [u8]) {
        match self {
            BlockCipher::Tdes2(c) => dec(c, block),
            BlockCipher::Tdes3(c) => dec(c, block),
            BlockCipher::Aes128(c) => dec(c, block),
            BlockCipher::Aes192(c) => dec(c, block),
            BlockCipher::Aes256(c) => dec(c, block),
        }
    }

    fn check_aligned(&self, len: usize) -> Result<(), Error> {
        let block = self.block_size();
        if len == 0 || !len.is_multiple_of(block) {
            return Err(Error::BlockAlignment { len, block });
        }
        Ok(())
    }

    /// ECB encryption in place; `data` must be a non-empty whole number of blocks.
    pub fn encrypt_ecb(&self, data: &mut [u8]) -> Result<(), Error> {
        self.check_aligned(data.len())?;
        for block in data.chunks_exact_mut(self.block_size()) {
            self.encrypt_one(block);
        }
        Ok(())
    }

    /// ECB decryption in place.
    pub fn decrypt_ecb(&self, data: &mut [u8]) -> Result<(), Error> {
        self.check_aligned(data.len())?;
        for block in data.chunks_exact_mut(self.block_size()) {
            self.decrypt_one(block);
        }
        Ok(())
    }

    /// CBC encryption in place with the given IV (one block long). No padding: callers
    /// pad by their own standard's rule first.
    pub fn encrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
        let bs = self.block_size();
        self.check_aligned(data.len())?;
        if iv.len() != bs {
            return Err(Error::FieldLength {
                field: "IV",
                expected: "one cipher block",
            });
        }
        let mut chain = [0u8; 16];
        chain[..bs].copy_from_slice(iv);
        for block in data.chunks_exact_mut(bs) {
            for (b, c) in block.iter_mut().zip(&chain[..bs]) {
                *b ^= c;
            }
            self.encrypt_one(block);
            chain[..bs].copy_from_slice(block);
        }
        Ok(())
    }

    /// CBC decryption in place with the given IV.
    pub fn decrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), Error> {
        let bs = self.block_size();
        self.check_aligned(data.len())?;
        if iv.len() != bs {
            return Err(Error::FieldLength {
                field: "IV",
                expected: "one cipher block",
            });
        }
        let mut chain = [0u8; 16];
        let mut next = [0u8; 16];
        chain[..bs].copy_from_slice(iv);
        for block in data.chunks_exact_mut(bs) {
            next[..bs].copy_from_slice(block);
            self.decrypt_one(block);
            for (b, c) in block.iter_mut().zip(&chain[..bs]) {
                *b ^= c;
            }
            chain[..bs].copy_from_slice(&next[..bs]);
        }
        Ok(())
    }
}

fn enc<C: BlockCipherEncrypt>(cipher: &C, block: &mut [u8]) {
    if let Ok(b) = <&mut Array<u8, C::BlockSize>>::try_from(block) {
        cipher.encrypt_block(b);
    }
}

fn dec<C: BlockCipherDecrypt>(cipher: &C, block: &mut [u8]) {
    if let Ok(b) = <&mut Array<u8, C::BlockSize>>::try_from(block) {
        cipher.decrypt_block(b);
    }
}

/// Single DES encryption of one 8-byte block. Only the Visa CVV/PVV steps and the
/// ISO 9797-1 retail MAC chain use single DES, always as part of a 2-key TDES method.
pub(crate) fn des_encrypt(key: &[u8; 8], block: &mut [u8; 8]) {
    let cipher = Des::new(&Array::from(*key));
    let mut b = Array::from(*block);
    cipher.encrypt_block(&mut b);
    block.copy_from_slice(&b);
}

/// Single DES decryption of one 8-byte block (the middle step of the retail MAC's output
/// transformation and of the Visa CVV method).
pub(crate) fn des_decrypt(key: &[u8; 8], block: &mut [u8; 8]) {
    let cipher = Des::new(&Array::from(*key));
    let mut b = Array::from(*block);
    cipher.decrypt_block(&mut b);
    block.copy_from_slice(&b);
}

/// Sets odd parity on every byte of a DES/TDES key (the low bit of each byte is the parity
/// bit, as in FIPS 46-3). Keys from ceremonies and generators go through this.
pub fn adjust_parity(key: &mut [u8]) {
    for byte in key.iter_mut() {
        let high = *byte & 0xFE;
        *byte = if high.count_ones() % 2 == 0 {
            high | 1
        } else {
            high
        };
    }
}

/// True when every byte has odd parity.
pub fn has_odd_parity(key: &[u8]) -> bool {
    key.iter().all(|b| b.count_ones() % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // FIPS 197 Appendix C.1 / C.2 / C.3 (AES-128/192/256 example vectors).
    #[test]
    fn aes_fips197_appendix_c() {
        let pt = "00112233445566778899aabbccddeeff";
        for (key, ct) in [
            (
                "000102030405060708090a0b0c0d0e0f",
                "69c4e0d86a7b0430d8cdb78070b4c55a",
            ),
            (
                "000102030405060708090a0b0c0d0e0f1011121314151617",
                "dda97ca4864cdfe06eaf70a0ec0d7191",
            ),
            (
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "8ea2b7ca516745bfeafc49904b496089",
            ),
        ] {
            let c = BlockCipher::aes(&h(key)).unwrap();
            let mut data = h(pt);
            c.encrypt_ecb(&mut data).unwrap();
            assert_eq!(hex::encode(&data), ct);
            c.decrypt_ecb(&mut data).unwrap();
            assert_eq!(hex::encode(&data), pt);
        }
    }

    // NIST SP 800-38A F.2.1 CBC-AES128.Encrypt, first two blocks.
    #[test]
    fn aes_cbc_sp800_38a() {
        let c = BlockCipher::aes(&h("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
        let iv = h("000102030405060708090a0b0c0d0e0f");
        let mut data = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        c.encrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(
            hex::encode(&data),
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
        );
        c.decrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(
            hex::encode(&data),
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        );
    }

    // Key 0123456789ABCDEF FEDCBA9876543210 encrypting zeros gives 08D7B4FB629D0885: its
    // first 3 bytes are the published KCV 08D7B4 (psec `generate_kcv` docstring), the rest
    // as psec and `cryptography` compute it (tests/vectors/published.md).
    #[test]
    fn tdes_double_and_triple() {
        let c = BlockCipher::tdes(&h("0123456789ABCDEFFEDCBA9876543210")).unwrap();
        let mut data = [0u8; 8];
        c.encrypt_ecb(&mut data).unwrap();
        assert_eq!(hex::encode_upper(data), "08D7B4FB629D0885");
        // A triple-length key K1 K2 K1 equals the double-length key.
        let c3 = BlockCipher::tdes(&h("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF")).unwrap();
        let mut data3 = [0u8; 8];
        c3.encrypt_ecb(&mut data3).unwrap();
        assert_eq!(data, data3);
    }

    #[test]
    fn debug_names_the_cipher_and_hides_the_key() {
        for (key, name) in [
            (h("0123456789ABCDEFFEDCBA9876543210"), "TDES-2key"),
            (
                h("0123456789ABCDEFFEDCBA98765432100123456789ABCDEF"),
                "TDES-3key",
            ),
            (vec![0x11; 16], "AES-128"),
            (vec![0x11; 24], "AES-192"),
            (vec![0x11; 32], "AES-256"),
        ] {
            let c = if name.starts_with("TDES") {
                BlockCipher::tdes(&key)
            } else {
                BlockCipher::aes(&key)
            }
            .unwrap();
            assert_eq!(format!("{c:?}"), format!("BlockCipher({name}, [REDACTED])"));
        }
    }

    #[test]
    fn rejects_bad_lengths() {
        assert!(BlockCipher::tdes(&[0u8; 8]).is_err());
        assert!(BlockCipher::aes(&[0u8; 20]).is_err());
        let c = BlockCipher::aes(&[0u8; 16]).unwrap();
        assert!(c.encrypt_ecb(&mut [0u8; 15]).is_err());
        assert!(c.encrypt_ecb(&mut []).is_err());
        assert!(c.encrypt_cbc(&[0u8; 8], &mut [0u8; 16]).is_err());
    }

    // FIPS 46-3: the low bit of each key byte makes its parity odd.
    #[test]
    fn parity() {
        let mut key = h("0022446688AACCEE");
        assert!(!has_odd_parity(&key));
        adjust_parity(&mut key);
        assert_eq!(hex::encode_upper(&key), "0123456789ABCDEF");
        assert!(has_odd_parity(&key));
    }
}
