//! DUKPT (derived unique key per transaction): the keys a POS terminal enciphers each PIN
//! block under, derived on the host from the base derivation key (BDK) and the key serial
//! number (KSN) the terminal sends.
//!
//! * [`tdes`]: TDES DUKPT, ANSI X9.24-1:2009 Annex A (10-byte KSN, 21-bit counter).
//! * [`aes`]: AES DUKPT, ANSI X9.24-3-2017 (12-byte KSN, 32-bit counter), with 2TDEA,
//!   3TDEA and AES-128/192/256 working keys.
//!
//! This module also gives both variants one face, chosen by the KSN's length (10 bytes:
//! TDES, 12 bytes: AES), which is all a host needs to decipher a terminal's PIN block:
//! [`decipher_pin`] takes the BDK, the KSN and the block and returns the [`Pin`](super::Pin), with
//! the KSN's counter checked on the way (zero, exhausted and too-many-one-bits counters
//! refused, each with its own [`DukptError`]).
//!
//! The host's whole path for one terminal PIN block (the X9.24-1:2009 A.4.2 example):
//!
//! ```
//! use cofre::crypto::cipher::Algorithm;
//! use cofre::crypto::dukpt::{self, Bdk, Ksn};
//! use cofre::crypto::pan::Pan;
//! use cofre::crypto::pinblock::{Format, PinBlock};
//! use cofre::crypto::ClearKey;
//!
//! let bdk = Bdk::new(Algorithm::Tdes, &ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210")?)?;
//! let ksn = Ksn::from_hex("FFFF9876543210E00001")?;
//! let key_type = dukpt::default_pin_key_type(&ksn, Format::Iso0);
//! let block = PinBlock::from_hex("1B9C1845EB993A7A")?;
//! let pan = Pan::new("4012345678909")?;
//! let pin = dukpt::decipher_pin(&bdk, &ksn, key_type, Format::Iso0, &block, Some(&pan))?;
//! assert_eq!(pin.expose_secret(), "1234");
//! # Ok::<(), cofre::crypto::Error>(())
//! ```
//!
//! Pure like the rest of `crypto`: no I/O, no clock, no randomness except the PIN block
//! fill a caller passes in. Keys travel as [`ClearKey`] (zeroized, redacted `Debug`).

pub mod aes;
mod counter;
mod pin;
pub mod tdes;

pub use aes::KeyType;
pub use counter::next as next_counter;
pub use pin::{decipher_pin, default_pin_key_type, encipher_pin, encipher_pin_with_fill};

use super::cipher::Algorithm;
use super::{ClearKey, DukptError, Error};

/// A KSN of either variant: the length decides (X9.24-1 KSNs are 10 bytes, X9.24-3 KSNs
/// 12). Public information: terminals send it in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ksn {
    /// TDES DUKPT.
    Tdes(tdes::Ksn),
    /// AES DUKPT.
    Aes(aes::Ksn),
}

impl Ksn {
    /// Parses 20 (TDES) or 24 (AES) hex characters.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let bytes = hex::decode(text.trim()).map_err(|_| Error::Hex("KSN"))?;
        Self::from_bytes(&bytes)
    }

    /// Reads 10 (TDES) or 12 (AES) bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        match bytes.len() {
            tdes::KSN_LEN => tdes::Ksn::from_bytes(bytes).map(Ksn::Tdes),
            aes::KSN_LEN => aes::Ksn::from_bytes(bytes).map(Ksn::Aes),
            _ => Err(Error::FieldLength {
                field: "KSN",
                expected: "20 hex characters (TDES DUKPT) or 24 (AES DUKPT)",
            }),
        }
    }

    /// The transaction counter.
    pub fn counter(&self) -> u32 {
        match self {
            Ksn::Tdes(k) => k.counter(),
            Ksn::Aes(k) => k.counter(),
        }
    }

    /// Refuses counters no transaction may carry (see [`tdes::Ksn::check_counter`] and
    /// [`aes::Ksn::check_counter`]).
    pub fn check_counter(&self) -> Result<(), Error> {
        match self {
            Ksn::Tdes(k) => k.check_counter(),
            Ksn::Aes(k) => k.check_counter(),
        }
    }

    /// The variant's name, for messages.
    pub fn variant(&self) -> &'static str {
        match self {
            Ksn::Tdes(_) => "TDES",
            Ksn::Aes(_) => "AES",
        }
    }
}

impl std::fmt::Display for Ksn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ksn::Tdes(k) => k.fmt(f),
            Ksn::Aes(k) => k.fmt(f),
        }
    }
}

/// A base derivation key of either variant.
#[derive(Debug, Clone)]
pub enum Bdk {
    /// A double-length TDES BDK.
    Tdes(tdes::Bdk),
    /// An AES-128, AES-192 or AES-256 BDK.
    Aes(aes::Bdk),
}

impl Bdk {
    /// A BDK of the key store's `algorithm` (a TDES BDK must be double length).
    pub fn new(algorithm: Algorithm, key: &ClearKey) -> Result<Self, Error> {
        match algorithm {
            Algorithm::Tdes => tdes::Bdk::new(key).map(Bdk::Tdes),
            Algorithm::Aes => aes::Bdk::new(key).map(Bdk::Aes),
        }
    }

    /// A BDK of the variant `ksn` belongs to (for the calculator, where a 16-byte key
    /// alone could be either).
    pub fn for_ksn(ksn: &Ksn, key: &ClearKey) -> Result<Self, Error> {
        match ksn {
            Ksn::Tdes(_) => Self::new(Algorithm::Tdes, key),
            Ksn::Aes(_) => Self::new(Algorithm::Aes, key),
        }
    }

    /// The initial key of the device `ksn` names.
    pub fn initial_key(&self, ksn: &Ksn) -> Result<InitialKey, Error> {
        match (self, ksn) {
            (Bdk::Tdes(b), Ksn::Tdes(k)) => Ok(InitialKey::Tdes(b.initial_key(k))),
            (Bdk::Aes(b), Ksn::Aes(k)) => Ok(InitialKey::Aes(b.initial_key(k)?)),
            (Bdk::Tdes(_), _) => Err(mismatch(ksn, "TDES")),
            (Bdk::Aes(_), _) => Err(mismatch(ksn, "AES")),
        }
    }

    /// The transaction key for `ksn` (its counter checked).
    pub fn transaction_key(&self, ksn: &Ksn) -> Result<TransactionKey, Error> {
        self.initial_key(ksn)?.transaction_key(ksn)
    }
}

/// A device's initial key (TDES: the IPEK) of either variant.
#[derive(Debug, Clone)]
pub enum InitialKey {
    /// TDES DUKPT.
    Tdes(tdes::InitialKey),
    /// AES DUKPT.
    Aes(aes::InitialKey),
}

impl InitialKey {
    /// A clear initial key for the variant `ksn` belongs to.
    pub fn from_clear(ksn: &Ksn, key: &ClearKey) -> Result<Self, Error> {
        match ksn {
            Ksn::Tdes(_) => tdes::InitialKey::from_clear(key).map(InitialKey::Tdes),
            Ksn::Aes(_) => aes::InitialKey::from_clear(key).map(InitialKey::Aes),
        }
    }

    /// The key.
    pub fn key(&self) -> &ClearKey {
        match self {
            InitialKey::Tdes(k) => k.key(),
            InitialKey::Aes(k) => k.key(),
        }
    }

    /// The transaction key for `ksn` (its counter checked).
    pub fn transaction_key(&self, ksn: &Ksn) -> Result<TransactionKey, Error> {
        match (self, ksn) {
            (InitialKey::Tdes(ik), Ksn::Tdes(k)) => ik.transaction_key(k).map(TransactionKey::Tdes),
            (InitialKey::Aes(ik), Ksn::Aes(k)) => ik.transaction_key(k).map(TransactionKey::Aes),
            (InitialKey::Tdes(_), _) => Err(mismatch(ksn, "TDES")),
            (InitialKey::Aes(_), _) => Err(mismatch(ksn, "AES")),
        }
    }
}

/// The transaction key for one KSN (TDES: the current key; AES: the intermediate
/// derivation key), from which the working keys come.
#[derive(Debug, Clone)]
pub enum TransactionKey {
    /// TDES DUKPT.
    Tdes(tdes::TransactionKey),
    /// AES DUKPT.
    Aes(aes::TransactionKey),
}

impl TransactionKey {
    /// The key.
    pub fn key(&self) -> &ClearKey {
        match self {
            TransactionKey::Tdes(k) => k.key(),
            TransactionKey::Aes(k) => k.key(),
        }
    }
}

fn mismatch(ksn: &Ksn, key: &'static str) -> Error {
    DukptError::VariantMismatch {
        ksn: ksn.variant(),
        key,
    }
    .into()
}

#[cfg(test)]
mod tests;
