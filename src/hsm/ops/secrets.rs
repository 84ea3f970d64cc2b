//! LMK-derived keys the daemon uses itself, and the two envelope formats of
//! protocol/README.md: the LMK-encrypted PIN ("pin_blob") and transport encryption.

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::OpError;
use crate::crypto::cipher::{Algorithm, BlockCipher};
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format, PinBlock};
use crate::crypto::{ClearKey, Pin, ct_eq, mac};
use crate::keys::lmk::{Lmk, Purpose};
use crate::protocol::Status;

const BLOB_VERSION: u8 = 1;
/// Bytes in a PIN blob: version, format 4 block, 8-byte CMAC.
pub const BLOB_LEN: usize = 1 + 16 + 8;

/// Keys and ids the operations need besides the key ring.
pub struct DaemonSecrets {
    /// KCV of the LMK (health).
    pub lmk_kcv: String,
    /// Id of the token key.
    pub token_key: String,
    /// Id of the lookup-token key.
    pub lookup_key: String,
    pin_cipher: BlockCipher,
    pin_mac: ClearKey,
}

impl std::fmt::Debug for DaemonSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSecrets")
            .field("lmk_kcv", &self.lmk_kcv)
            .finish_non_exhaustive()
    }
}

impl DaemonSecrets {
    /// Derives the PIN blob keys from the LMK.
    pub fn new(lmk: &Lmk, token_key: &str, lookup_key: &str) -> Result<Self, crate::crypto::Error> {
        Ok(Self {
            lmk_kcv: lmk.kcv().to_string(),
            token_key: token_key.to_owned(),
            lookup_key: lookup_key.to_owned(),
            pin_cipher: BlockCipher::new(Algorithm::Aes, &lmk.derive(Purpose::PinEncryption))?,
            pin_mac: lmk.derive(Purpose::PinBlobMac),
        })
    }

    fn blob_mac(&self, head: &[u8], pan: &Pan) -> Result<[u8; 8], OpError> {
        let mut data = Vec::with_capacity(head.len() + pan.len());
        data.extend_from_slice(head);
        data.extend_from_slice(pan.digits().as_bytes());
        let full = mac::aes_cmac(&self.pin_mac, &data)
            .map_err(|_| OpError::new(Status::Internal, "PIN blob MAC failed"))?;
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        Ok(out)
    }

    /// Encrypts a PIN under the LMK, bound to the card.
    pub fn seal_pin(
        &self,
        pin: &Pin,
        pan: &Pan,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, OpError> {
        let block = pinblock::encipher(Format::Iso4, &self.pin_cipher, pin, Some(pan), rng)
            .map_err(|_| OpError::new(Status::Internal, "PIN encryption failed"))?;
        let mut blob = Vec::with_capacity(BLOB_LEN);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(block.as_bytes());
        let tag = self.blob_mac(&blob, pan)?;
        blob.extend_from_slice(&tag);
        Ok(blob)
    }

    /// Opens a PIN blob for this card: the MAC is checked (constant time) first.
    pub fn open_pin(&self, blob: &[u8], pan: &Pan) -> Result<Pin, OpError> {
        let invalid = || {
            OpError::new(
                Status::InvalidBlob,
                "the PIN blob does not belong to this card",
            )
        };
        if blob.len() != BLOB_LEN || blob[0] != BLOB_VERSION {
            return Err(invalid());
        }
        let (head, tag) = blob.split_at(17);
        if !ct_eq(&self.blob_mac(head, pan)?, tag) {
            return Err(invalid());
        }
        let block = PinBlock::from_bytes(&head[1..]).map_err(|_| invalid())?;
        pinblock::decipher(Format::Iso4, &self.pin_cipher, &block, Some(pan)).map_err(|_| invalid())
    }
}

/// `IV || CBC(key, IV, data || 0x80 || 0x00...)` with a random IV (ISO/IEC 9797-1
/// padding method 2).
pub fn transport_encrypt(
    cipher: &BlockCipher,
    data: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, OpError> {
    let bs = cipher.block_size();
    let mut iv = vec![0u8; bs];
    rng.fill_bytes(&mut iv);
    let mut body = Zeroizing::new(Vec::with_capacity(data.len() + bs));
    body.extend_from_slice(data);
    body.push(0x80);
    while body.len() % bs != 0 {
        body.push(0);
    }
    cipher
        .encrypt_cbc(&iv, &mut body)
        .map_err(|_| OpError::new(Status::Internal, "transport encryption failed"))?;
    let mut out = iv;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::lmk::Component;
    use rand::SeedableRng;

    fn secrets() -> DaemonSecrets {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let lmk = Lmk::from_components(&[Component::random(&mut rng), Component::random(&mut rng)])
            .unwrap();
        DaemonSecrets::new(&lmk, "t", "l").unwrap()
    }

    #[test]
    fn blob_round_trip_and_binding() {
        let s = secrets();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let pan = Pan::new("4000001234567899").unwrap();
        let other = Pan::new("4000001234567881").unwrap();
        let pin = Pin::new("482910").unwrap();
        let blob = s.seal_pin(&pin, &pan, &mut rng).unwrap();
        assert_eq!(blob.len(), BLOB_LEN);
        assert_eq!(s.open_pin(&blob, &pan).unwrap().expose_secret(), "482910");
        assert_eq!(
            s.open_pin(&blob, &other).unwrap_err().status,
            Status::InvalidBlob
        );
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 1;
            assert_eq!(
                s.open_pin(&b, &pan).unwrap_err().status,
                Status::InvalidBlob
            );
        }
        assert!(s.open_pin(&blob[..24], &pan).is_err());
        // Every other length is refused before the blob is split, even with the
        // version byte in front (a blob shorter than its head must not be cut).
        for len in (0..BLOB_LEN + 8).filter(|&n| n != BLOB_LEN) {
            let mut b = blob.clone();
            b.resize(len, 0);
            if let Some(first) = b.first_mut() {
                *first = BLOB_VERSION;
            }
            assert_eq!(
                s.open_pin(&b, &pan).unwrap_err().status,
                Status::InvalidBlob,
                "length {len}"
            );
        }
    }

    #[test]
    fn debug_shows_the_lmk_check_value_and_no_key() {
        let s = secrets();
        assert_eq!(
            format!("{s:?}"),
            format!("DaemonSecrets {{ lmk_kcv: {:?}, .. }}", s.lmk_kcv)
        );
    }

    #[test]
    fn transport_encryption_decrypts_with_the_key() {
        let key = BlockCipher::tdes(&[0x11; 16]).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let out = transport_encrypt(&key, b"CVV=123", &mut rng).unwrap();
        assert_eq!(out.len(), 16);
        let (iv, ct) = out.split_at(8);
        let mut ct = ct.to_vec();
        key.decrypt_cbc(iv, &mut ct).unwrap();
        assert_eq!(&ct, b"CVV=123\x80");
    }
}
