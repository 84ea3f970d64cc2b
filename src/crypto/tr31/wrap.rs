//! Wrapping and unwrapping: key derivation (versions B and D), the variant method
//! (versions A and C), key data encryption and the block MAC.

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::Tr31Error;
use super::fields::{KeyAlgorithm, Version};
use super::header::{Header, MAX_BLOCK_LEN, Reader};
use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::{ClearKey, Error, ct_eq, mac};

/// Wraps `key` under `kbpk` as a version B (TDES KBPK) or D (AES KBPK) key block with
/// `header`'s fields. Refuses versions A and C, a usage / mode pair that is not coherent,
/// a key whose length does not fit the header's algorithm, and a KBPK weaker than the key.
///
/// The key is padded with random bytes from `rng` to the longest key of its algorithm
/// (24 bytes for TDES and DES, 32 for AES), so the block does not reveal which length it
/// carries. Keys of other algorithms are padded to a whole cipher block only.
pub fn wrap(
    kbpk: &ClearKey,
    header: &Header,
    key: &ClearKey,
    rng: &mut (impl CryptoRng + ?Sized),
) -> Result<String, Error> {
    let version = header.version();
    if !matches!(version, Version::B | Version::D) {
        return Err(Tr31Error::WrapVersion.into());
    }
    let cipher_alg = kbpk_algorithm(version, kbpk)?;
    header.check_coherent()?;
    check_key_length(header.algorithm(), key.len())?;
    if strength(header.algorithm(), key.len()) > kbpk_strength(cipher_alg, kbpk.len()) {
        return Err(Tr31Error::WeakKbpk.into());
    }

    let bs = version.block_size();
    let masked = masked_len(header.algorithm()).max(key.len());
    let pad = (masked - key.len()) + (bs - (2 + masked) % bs) % bs;
    let clear_len = 2 + key.len() + pad;
    let total = header.encoded_len() + 2 * clear_len + 2 * version.mac_len();
    if total > MAX_BLOCK_LEN {
        return Err(Tr31Error::TooLong.into());
    }
    let header_text = header.encode(total);

    // Clear key data: 2-byte key length in bits, the key, random padding.
    let bits = u16::try_from(key.len() * 8).map_err(|_| Error::KeyLength { got: key.len() })?;
    let mut data = Zeroizing::new(Vec::with_capacity(clear_len));
    data.extend_from_slice(&bits.to_be_bytes());
    data.extend_from_slice(key.expose_secret());
    let mut padding = Zeroizing::new(vec![0u8; pad]);
    rng.fill_bytes(&mut padding);
    data.extend_from_slice(&padding);

    let (kbek, kbak) = derive(version, cipher_alg, kbpk)?;
    let tag = block_mac(cipher_alg, &kbak, header_text.as_bytes(), &data)?;
    BlockCipher::new(cipher_alg, &kbek)?.encrypt_cbc(&tag, &mut data)?;

    let mut out = header_text;
    out.push_str(&hex::encode_upper(&*data));
    out.push_str(&hex::encode_upper(&tag));
    Ok(out)
}

/// Unwraps a version A, B, C or D key block. The MAC is checked, in constant time, before
/// anything derived from the decrypted data is looked at; a block that fails it is
/// [`Tr31Error::Mac`] whatever else is wrong with it.
///
/// The header comes back as parsed; whether its usage and mode suit the importer is the
/// importer's rule ([`Header::check_coherent`] is one such rule).
pub fn unwrap(kbpk: &ClearKey, block: &str) -> Result<(Header, ClearKey), Error> {
    let bytes = block.as_bytes();
    let mut reader = Reader::new(bytes);
    let (header, declared) = Header::read(&mut reader)?;
    if declared != bytes.len() {
        return Err(Tr31Error::Length {
            declared,
            actual: bytes.len(),
        }
        .into());
    }
    let header_len = reader.used();
    let version = header.version();
    let bs = version.block_size();
    let mac_hex = 2 * version.mac_len();
    let body = reader.rest();
    let payload_hex = body.len().checked_sub(mac_hex).ok_or(Tr31Error::TooShort)?;
    if !header_len.is_multiple_of(bs) || payload_hex == 0 || !payload_hex.is_multiple_of(2 * bs) {
        return Err(Tr31Error::Alignment.into());
    }
    let cipher_alg = kbpk_algorithm(version, kbpk)?;
    let (payload_text, mac_text) = body.split_at(payload_hex);
    let mut payload = Zeroizing::new(hex::decode(payload_text).map_err(|_| Tr31Error::Hex)?);
    let received = hex::decode(mac_text).map_err(|_| Tr31Error::Hex)?;
    let header_text = bytes.get(..header_len).ok_or(Tr31Error::TooShort)?;

    match version {
        Version::A | Version::C => {
            // Variant method: MAC over the encrypted data, then decrypt with the
            // header's first 8 characters as IV.
            let (kbek, kbak) = variant_keys(kbpk)?;
            let tag = cbc_mac(&kbak, header_text, &payload)?;
            let tag = tag.get(..version.mac_len()).ok_or(Tr31Error::Mac)?;
            if !ct_eq(tag, &received) {
                return Err(Tr31Error::Mac.into());
            }
            let iv = header_text.get(..8).ok_or(Tr31Error::TooShort)?;
            BlockCipher::tdes(kbek.expose_secret())?.decrypt_cbc(iv, &mut payload)?;
        }
        Version::B | Version::D => {
            // Derivation method: the MAC is the IV and covers the clear key data.
            let (kbek, kbak) = derive(version, cipher_alg, kbpk)?;
            BlockCipher::new(cipher_alg, &kbek)?.decrypt_cbc(&received, &mut payload)?;
            let tag = block_mac(cipher_alg, &kbak, header_text, &payload)?;
            if !ct_eq(&tag, &received) {
                return Err(Tr31Error::Mac.into());
            }
        }
    }
    let key = extract_key(&payload)?;
    check_key_length(header.algorithm(), key.len())?;
    Ok((header, key))
}

/// Reads the 2-byte bit length and the key after it from verified clear key data.
fn extract_key(data: &[u8]) -> Result<ClearKey, Error> {
    let (len_field, rest) = data.split_at_checked(2).ok_or(Tr31Error::KeyField)?;
    let bits = len_field
        .iter()
        .fold(0usize, |n, b| (n << 8) | usize::from(*b));
    if bits == 0 || !bits.is_multiple_of(8) {
        return Err(Tr31Error::KeyField.into());
    }
    let key = rest.get(..bits / 8).ok_or(Tr31Error::KeyField)?;
    ClearKey::from_bytes(key).map_err(|_| Tr31Error::KeyField.into())
}

/// The block cipher a version uses, after checking the KBPK length fits it.
fn kbpk_algorithm(version: Version, kbpk: &ClearKey) -> Result<Algorithm, Tr31Error> {
    let (alg, ok) = match version {
        Version::A | Version::B | Version::C => (Algorithm::Tdes, matches!(kbpk.len(), 16 | 24)),
        Version::D => (Algorithm::Aes, matches!(kbpk.len(), 16 | 24 | 32)),
    };
    if ok {
        Ok(alg)
    } else {
        Err(Tr31Error::KbpkLength {
            version: version.code(),
            got: kbpk.len(),
        })
    }
}

/// KBEK and KBAK by the TR-31:2018 / X9.143 derivation: CMAC under the KBPK over
/// counter (01, 02...) || usage (0000 encryption, 0001 MAC) || 00 || algorithm
/// (0000 2TDEA, 0001 3TDEA, 0002/0003/0004 AES-128/192/256) || length in bits,
/// concatenated and cut to the KBPK's length.
fn derive(
    version: Version,
    alg: Algorithm,
    kbpk: &ClearKey,
) -> Result<(ClearKey, ClearKey), Error> {
    let (alg_id, bits): (u16, u16) = match (version, kbpk.len()) {
        (Version::B, 16) => (0x0000, 0x0080),
        (Version::B, 24) => (0x0001, 0x00C0),
        (Version::D, 16) => (0x0002, 0x0080),
        (Version::D, 24) => (0x0003, 0x00C0),
        (Version::D, 32) => (0x0004, 0x0100),
        _ => {
            return Err(Tr31Error::KbpkLength {
                version: version.code(),
                got: kbpk.len(),
            }
            .into());
        }
    };
    let one = |usage: u16| -> Result<ClearKey, Error> {
        let mut out = Zeroizing::new(Vec::with_capacity(32 + 16));
        let mut counter = 1u8;
        while out.len() < kbpk.len() {
            let [u0, u1] = usage.to_be_bytes();
            let [a0, a1] = alg_id.to_be_bytes();
            let [b0, b1] = bits.to_be_bytes();
            let input = [counter, u0, u1, 0x00, a0, a1, b0, b1];
            out.extend_from_slice(&Zeroizing::new(mac::cmac(alg, kbpk, &input)?));
            counter += 1;
        }
        out.truncate(kbpk.len());
        ClearKey::from_bytes(&out)
    };
    Ok((one(0x0000)?, one(0x0001)?))
}

/// KBEK = KBPK XOR 45..., KBMK = KBPK XOR 4D... (TR-31:2018 section 5.3.1).
fn variant_keys(kbpk: &ClearKey) -> Result<(ClearKey, ClearKey), Error> {
    let xor = |v: u8| -> Result<ClearKey, Error> {
        let k = Zeroizing::new(
            kbpk.expose_secret()
                .iter()
                .map(|b| b ^ v)
                .collect::<Vec<u8>>(),
        );
        ClearKey::from_bytes(&k)
    };
    Ok((xor(0x45)?, xor(0x4D)?))
}

/// The version B / D MAC: CMAC under the KBAK over header || clear key data.
fn block_mac(
    alg: Algorithm,
    kbak: &ClearKey,
    header: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut input = Zeroizing::new(Vec::with_capacity(header.len() + data.len()));
    input.extend_from_slice(header);
    input.extend_from_slice(data);
    mac::cmac(alg, kbak, &input)
}

/// ISO 9797-1 MAC algorithm 1 (TDES CBC-MAC, zero IV) over header || encrypted key data;
/// both are whole blocks here, so padding method 1 adds nothing.
fn cbc_mac(kbak: &ClearKey, header: &[u8], data: &[u8]) -> Result<[u8; 8], Error> {
    let mut input = Vec::with_capacity(header.len() + data.len());
    input.extend_from_slice(header);
    input.extend_from_slice(data);
    BlockCipher::tdes(kbak.expose_secret())?.encrypt_cbc(&[0u8; 8], &mut input)?;
    let mut out = [0u8; 8];
    if let Some(last) = input.rchunks_exact(8).next() {
        out.copy_from_slice(last);
    }
    Ok(out)
}

/// Refuses a key whose length no key of the header's algorithm has. Algorithms cofre
/// does not use as block ciphers (HMAC, RSA, EC, DSA) take any length a `ClearKey` holds.
fn check_key_length(algorithm: KeyAlgorithm, len: usize) -> Result<(), Tr31Error> {
    let ok = match algorithm {
        KeyAlgorithm::Tdes => matches!(len, 16 | 24),
        KeyAlgorithm::Des => len == 8,
        KeyAlgorithm::Aes => matches!(len, 16 | 24 | 32),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Tr31Error::KeyLength { got: len })
    }
}

/// Length a key is padded to so the block hides which length it is.
fn masked_len(algorithm: KeyAlgorithm) -> usize {
    match algorithm {
        KeyAlgorithm::Tdes | KeyAlgorithm::Des => 24,
        KeyAlgorithm::Aes => 32,
        _ => 0,
    }
}

/// Security strength in bits (NIST SP 800-57 part 1 table 2) of a block-cipher key;
/// 0 for other algorithms, which the strength rule does not cover.
fn strength(algorithm: KeyAlgorithm, len: usize) -> usize {
    match (algorithm, len) {
        (KeyAlgorithm::Des, _) => 56,
        (KeyAlgorithm::Tdes, 16) => 80,
        (KeyAlgorithm::Tdes, _) => 112,
        (KeyAlgorithm::Aes, n) => n * 8,
        _ => 0,
    }
}

fn kbpk_strength(alg: Algorithm, len: usize) -> usize {
    match alg {
        Algorithm::Tdes => strength(KeyAlgorithm::Tdes, len),
        Algorithm::Aes => strength(KeyAlgorithm::Aes, len),
    }
}

#[cfg(test)]
mod key_field_tests {
    use super::*;

    // ANSI X9.143 (TR-31) clear key data: a 2-byte key length in bits, then the key. A
    // length that is not a whole number of bytes is refused, even behind a good MAC.
    #[test]
    fn the_key_length_field_counts_whole_bytes() {
        let with_bits = |bits: u16| {
            let mut data = bits.to_be_bytes().to_vec();
            data.extend_from_slice(&[0x45; 32]);
            extract_key(&data).map(|k| k.len())
        };
        assert_eq!(with_bits(0x0080), Ok(16));
        assert_eq!(with_bits(0x0100), Ok(32));
        for bits in [0x0000, 0x0001, 0x007F, 0x0081, 0x00FF] {
            assert_eq!(
                with_bits(bits),
                Err(Tr31Error::KeyField.into()),
                "{bits:#06x}"
            );
        }
        // Longer than the data after it.
        assert_eq!(with_bits(0x0108), Err(Tr31Error::KeyField.into()));
    }

    // ANSI X9.143 algorithm D (single DES) keys are 8 bytes, T (TDES) 16 or 24, A (AES)
    // 16, 24 or 32; algorithms cofre does not cipher with take any length.
    #[test]
    fn key_lengths_follow_the_header_algorithm() {
        let refused = |got| Err(Tr31Error::KeyLength { got });
        assert_eq!(check_key_length(KeyAlgorithm::Des, 8), Ok(()));
        assert_eq!(check_key_length(KeyAlgorithm::Des, 16), refused(16));
        assert_eq!(check_key_length(KeyAlgorithm::Tdes, 8), refused(8));
        assert_eq!(check_key_length(KeyAlgorithm::Tdes, 24), Ok(()));
        assert_eq!(check_key_length(KeyAlgorithm::Aes, 8), refused(8));
        assert_eq!(check_key_length(KeyAlgorithm::Aes, 32), Ok(()));
    }

    // A key is padded to the longest key of its algorithm (ANSI X9.143 key length
    // obfuscation), so a block does not tell an AES-128 key from an AES-256 one.
    #[test]
    fn keys_are_padded_to_the_longest_of_their_algorithm() {
        assert_eq!(masked_len(KeyAlgorithm::Aes), 32);
        assert_eq!(masked_len(KeyAlgorithm::Tdes), 24);
        assert_eq!(masked_len(KeyAlgorithm::Des), 24);
    }
}
