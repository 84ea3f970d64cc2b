//! ISO 9564-1 PIN blocks under a DUKPT PIN key: what a host does with a terminal's PIN
//! block (decipher) and what a terminal does (encipher, for tests and the calculator).
//!
//! TDES DUKPT enciphers 8-byte blocks of formats 0, 1 and 3 under the PIN variant of the
//! transaction key. AES DUKPT enciphers format 4 under an AES PIN key, or formats 0, 1 and
//! 3 under a 2TDEA/3TDEA PIN key (X9.24-3 derives TDES working keys for terminals still
//! sending TDES blocks). Format 2 is for offline ICC PINs and never travels under DUKPT.

use rand::CryptoRng;
use zeroize::Zeroizing;

use super::super::cipher::{Algorithm, BlockCipher};
use super::super::pan::Pan;
use super::super::pinblock::{self, Format, PinBlock};
use super::super::{DukptError, Error, Pin};
use super::{Bdk, KeyType, Ksn, TransactionKey, aes, tdes};

/// The PIN key type a host assumes when a request does not name one. TDES DUKPT has one
/// PIN key, the double-length variant. An AES DUKPT terminal sending format 4 uses
/// AES-128 (as the X9.24-3-2017 test vectors do, from every BDK size); one sending
/// formats 0, 1 or 3 uses 2TDEA.
pub fn default_pin_key_type(ksn: &Ksn, format: Format) -> KeyType {
    match (ksn, format) {
        (Ksn::Aes(_), Format::Iso4) => KeyType::Aes128,
        _ => KeyType::Tdes2,
    }
}

/// Deciphers a terminal's PIN block: derives the transaction key for `ksn` from `bdk`
/// (refusing the KSN's counter if no transaction may carry it), then the PIN key of
/// `key_type`, and decodes the block strictly ([`pinblock::decipher`]).
pub fn decipher_pin(
    bdk: &Bdk,
    ksn: &Ksn,
    key_type: KeyType,
    format: Format,
    block: &PinBlock,
    pan: Option<&Pan>,
) -> Result<Pin, Error> {
    bdk.transaction_key(ksn)?
        .decipher_pin(key_type, format, block, pan)
}

/// Enciphers a PIN as the terminal with `ksn` would, with fresh random fill.
pub fn encipher_pin(
    bdk: &Bdk,
    ksn: &Ksn,
    key_type: KeyType,
    format: Format,
    pin: &Pin,
    pan: Option<&Pan>,
    rng: &mut impl CryptoRng,
) -> Result<PinBlock, Error> {
    let mut fill = Zeroizing::new([0u8; 8]);
    rng.fill_bytes(&mut fill[..]);
    encipher_pin_with_fill(bdk, ksn, key_type, format, pin, pan, &fill)
}

/// [`encipher_pin`] with the fill given (format 1 and 3 fill, format 4's random 8 bytes),
/// so published examples can be reproduced.
pub fn encipher_pin_with_fill(
    bdk: &Bdk,
    ksn: &Ksn,
    key_type: KeyType,
    format: Format,
    pin: &Pin,
    pan: Option<&Pan>,
    fill: &[u8; 8],
) -> Result<PinBlock, Error> {
    bdk.transaction_key(ksn)?
        .encipher_pin_with_fill(key_type, format, pin, pan, fill)
}

impl TransactionKey {
    /// The PIN encryption key of type `key_type`, ready to use. TDES DUKPT has only the
    /// 2TDEA PIN variant.
    pub fn pin_key(&self, key_type: KeyType) -> Result<BlockCipher, Error> {
        let key = match self {
            TransactionKey::Tdes(k) if key_type == KeyType::Tdes2 => {
                k.working_key(tdes::Variant::Pin)
            }
            TransactionKey::Tdes(_) => {
                return Err(DukptError::WorkingKeyType(
                    "TDES DUKPT PIN keys are double-length TDES (2TDEA)",
                )
                .into());
            }
            TransactionKey::Aes(k) => k.working_key(aes::KeyUsage::PinEncryption, key_type)?,
        };
        BlockCipher::new(key_type.algorithm(), &key)
    }

    /// Deciphers a PIN block under this transaction key's PIN key of `key_type`.
    pub fn decipher_pin(
        &self,
        key_type: KeyType,
        format: Format,
        block: &PinBlock,
        pan: Option<&Pan>,
    ) -> Result<Pin, Error> {
        check_format(format, key_type)?;
        pinblock::decipher(format, &self.pin_key(key_type)?, block, pan)
    }

    /// Enciphers a PIN under this transaction key's PIN key of `key_type`.
    pub fn encipher_pin_with_fill(
        &self,
        key_type: KeyType,
        format: Format,
        pin: &Pin,
        pan: Option<&Pan>,
        fill: &[u8; 8],
    ) -> Result<PinBlock, Error> {
        check_format(format, key_type)?;
        pinblock::encipher_with_fill(format, &self.pin_key(key_type)?, pin, pan, fill)
    }
}

/// Refuses a format the key type cannot encipher, before any key is derived.
fn check_format(format: Format, key_type: KeyType) -> Result<(), Error> {
    let refusal = match (format, key_type.algorithm()) {
        (Format::Iso2, _) => "PIN block format 2 is for offline ICC PINs, never sent under DUKPT",
        (Format::Iso4, Algorithm::Aes)
        | (Format::Iso0 | Format::Iso1 | Format::Iso3, Algorithm::Tdes) => {
            return Ok(());
        }
        (Format::Iso4, Algorithm::Tdes) => "PIN block format 4 needs an AES PIN key",
        (_, Algorithm::Aes) => "PIN block formats 0, 1 and 3 need a TDES PIN key",
    };
    Err(DukptError::WorkingKeyType(refusal).into())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{AES_BDK, TDES_BDK, aes_ksn, dukpt_err, key, seeded, tdes_ksn};
    use super::*;
    use crate::crypto::PinBlockError;

    #[test]
    fn working_key_types_and_formats_are_checked() {
        let aes128 = Bdk::new(Algorithm::Aes, &key(AES_BDK)).unwrap();
        let tk = aes128.transaction_key(&aes_ksn(1)).unwrap();
        assert_eq!(
            dukpt_err(tk.pin_key(KeyType::Aes256).unwrap_err()),
            DukptError::WorkingKeyTooStrong {
                working: "AES-256",
                initial: "AES-128"
            }
        );
        assert!(tk.pin_key(KeyType::Tdes3).is_ok());
        let tdes_tk = Bdk::new(Algorithm::Tdes, &key(TDES_BDK))
            .unwrap()
            .transaction_key(&tdes_ksn(1))
            .unwrap();
        assert!(matches!(
            tdes_tk.pin_key(KeyType::Aes128).map_err(dukpt_err),
            Err(DukptError::WorkingKeyType(_))
        ));
        let pin = Pin::new("1234").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let fill = [0u8; 8];
        for (format, key_type) in [
            (Format::Iso4, KeyType::Tdes2),
            (Format::Iso0, KeyType::Aes128),
            (Format::Iso2, KeyType::Tdes2),
        ] {
            let err = encipher_pin_with_fill(
                &aes128,
                &aes_ksn(1),
                key_type,
                format,
                &pin,
                Some(&pan),
                &fill,
            )
            .unwrap_err();
            assert!(
                matches!(dukpt_err(err), DukptError::WorkingKeyType(_)),
                "{format:?} {key_type}"
            );
        }
        assert_eq!(
            default_pin_key_type(&aes_ksn(1), Format::Iso4),
            KeyType::Aes128
        );
        assert_eq!(
            default_pin_key_type(&aes_ksn(1), Format::Iso0),
            KeyType::Tdes2
        );
        assert_eq!(
            default_pin_key_type(&tdes_ksn(1), Format::Iso0),
            KeyType::Tdes2
        );
    }

    #[test]
    fn pin_round_trips_and_a_wrong_ksn_does_not_decode() {
        let mut rng = seeded();
        let pin = Pin::new("9876543").unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        for (bdk_hex, algorithm, ksn, format, key_type) in [
            (
                TDES_BDK,
                Algorithm::Tdes,
                tdes_ksn(7),
                Format::Iso0,
                KeyType::Tdes2,
            ),
            (
                TDES_BDK,
                Algorithm::Tdes,
                tdes_ksn(7),
                Format::Iso1,
                KeyType::Tdes2,
            ),
            (
                TDES_BDK,
                Algorithm::Tdes,
                tdes_ksn(7),
                Format::Iso3,
                KeyType::Tdes2,
            ),
            (
                AES_BDK,
                Algorithm::Aes,
                aes_ksn(7),
                Format::Iso4,
                KeyType::Aes128,
            ),
            (
                AES_BDK,
                Algorithm::Aes,
                aes_ksn(7),
                Format::Iso3,
                KeyType::Tdes3,
            ),
        ] {
            let bdk = Bdk::new(algorithm, &key(bdk_hex)).unwrap();
            let block =
                encipher_pin(&bdk, &ksn, key_type, format, &pin, Some(&pan), &mut rng).unwrap();
            let back = decipher_pin(&bdk, &ksn, key_type, format, &block, Some(&pan)).unwrap();
            assert_eq!(back.expose_secret(), "9876543");
            // The next KSN's key does not decode this block (a replayed block under a later
            // KSN): the strict decoder refuses it, or at worst yields another PIN.
            let other = match ksn {
                Ksn::Tdes(k) => Ksn::Tdes(k.next().unwrap()),
                Ksn::Aes(k) => Ksn::Aes(k.next().unwrap()),
            };
            let wrong = decipher_pin(&bdk, &other, key_type, format, &block, Some(&pan));
            assert!(
                wrong
                    .map(|p| p.expose_secret() != "9876543")
                    .unwrap_or(true)
            );
        }
        let bdk = Bdk::new(Algorithm::Tdes, &key(TDES_BDK)).unwrap();
        let short = PinBlock::from_bytes(&[0u8; 16]).unwrap();
        assert_eq!(
            decipher_pin(
                &bdk,
                &tdes_ksn(1),
                KeyType::Tdes2,
                Format::Iso0,
                &short,
                None
            )
            .unwrap_err(),
            Error::PinBlock(PinBlockError::BlockLength)
        );
    }
}
