//! AES DUKPT, ANSI X9.24-3-2017 (host side).
//!
//! * The KSN is 12 bytes: the 8-byte initial key ID (4-byte BDK ID, 4-byte derivation ID)
//!   and a 32-bit transaction counter.
//! * Every key is derived the same way (6.3): AES-ECB under the deriving key of a 16-byte
//!   derivation data block, once per 16 bytes of output, with the block counter in byte 1.
//!   The derivation data (6.3.2) is version `01`, block counter, key usage indicator (2
//!   bytes), algorithm indicator (2 bytes), output length in bits (2 bytes), then 8 bytes:
//!   the initial key ID for the initial key, else the derivation ID and a counter.
//! * The initial key: usage `8001` under the BDK, with the BDK's own type and length.
//! * The transaction ("intermediate derivation") key for a counter: starting from the
//!   initial key, one derivation (usage `8000`, the initial key's type) for each one-bit
//!   of the counter, most significant first, with the running counter holding the bits
//!   seen so far.
//! * A working key: one derivation under the transaction key with the working key's
//!   usage, type and length, and the full counter.
//!
//! Working keys may be 2TDEA, 3TDEA or AES-128 from any BDK; AES-192 only from an AES-192
//! or AES-256 BDK; AES-256 only from an AES-256 BDK (a derived key is never stronger than
//! the key it comes from).

use std::fmt;

use zeroize::Zeroizing;

use super::super::cipher::{Algorithm, BlockCipher};
use super::super::{ClearKey, DukptError, Error};
use super::counter;

/// Length of an AES DUKPT KSN in bytes.
pub const KSN_LEN: usize = 12;
/// The last counter a device may use: the largest 32-bit value with sixteen one-bits.
pub const LAST_COUNTER: u32 = 0xFFFF_0000;
/// X9.24-3-2017 6.1: a device only uses counters with at most this many one-bits.
pub const MAX_ONE_BITS: u32 = 16;

/// Key usage indicator of the initial key's derivation data.
pub(super) const USAGE_INITIAL_KEY: u16 = 0x8001;
/// Key usage indicator of each intermediate derivation key.
const USAGE_KEY_DERIVATION: u16 = 0x8000;

/// An AES DUKPT key serial number (public: terminals send it in the clear).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn([u8; KSN_LEN]);

impl Ksn {
    /// Wraps exactly 12 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        bytes.try_into().map(Self).map_err(|_| Error::FieldLength {
            field: "AES DUKPT KSN",
            expected: "12 bytes (24 hex characters)",
        })
    }

    /// Parses 24 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        Self::from_bytes(&hex::decode(text.trim()).map_err(|_| Error::Hex("KSN"))?)
    }

    /// The KSN bytes.
    pub fn as_bytes(&self) -> &[u8; KSN_LEN] {
        &self.0
    }

    /// The initial key ID: BDK ID and derivation ID, the leftmost 8 bytes.
    pub fn initial_key_id(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.0[..8]);
        id
    }

    /// The 32-bit transaction counter, the rightmost 4 bytes.
    pub fn counter(&self) -> u32 {
        u32::from_be_bytes([self.0[8], self.0[9], self.0[10], self.0[11]])
    }

    /// This KSN with its counter replaced (for building test series and the calculator).
    pub fn with_counter(&self, counter: u32) -> Self {
        let mut out = self.0;
        out[8..].copy_from_slice(&counter.to_be_bytes());
        Self(out)
    }

    /// Refuses counters no transaction may carry: zero, past [`LAST_COUNTER`], or with
    /// more than [`MAX_ONE_BITS`] one-bits.
    pub fn check_counter(&self) -> Result<(), Error> {
        counter::check(self.counter(), LAST_COUNTER, MAX_ONE_BITS)
    }

    /// The KSN a device sends after this one: the next counter with at most
    /// [`MAX_ONE_BITS`] one-bits, or `None` once the device is exhausted.
    pub fn next(&self) -> Option<Self> {
        counter::next(self.counter(), LAST_COUNTER, MAX_ONE_BITS).map(|c| self.with_counter(c))
    }

    /// The derivation ID (bytes 4-7) followed by `counter`: the last 8 bytes of the
    /// derivation data of every key after the initial key.
    pub(super) fn derivation_tail(&self, counter: u32) -> [u8; 8] {
        let mut tail = [0u8; 8];
        tail[..4].copy_from_slice(&self.0[4..8]);
        tail[4..].copy_from_slice(&counter.to_be_bytes());
        tail
    }
}

impl fmt::Display for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aes::Ksn({self})")
    }
}

/// The key types AES DUKPT derives (X9.24-3-2017 6.3.2, algorithm indicator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Double-length TDES (2TDEA), 16 bytes.
    Tdes2,
    /// Triple-length TDES (3TDEA), 24 bytes.
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

impl KeyType {
    /// Every key type, for tests and listings.
    pub const ALL: [KeyType; 5] = [
        KeyType::Tdes2,
        KeyType::Tdes3,
        KeyType::Aes128,
        KeyType::Aes192,
        KeyType::Aes256,
    ];

    /// The AES key type of a key of `len` bytes.
    pub fn aes_of_len(len: usize) -> Result<Self, Error> {
        match len {
            16 => Ok(KeyType::Aes128),
            24 => Ok(KeyType::Aes192),
            32 => Ok(KeyType::Aes256),
            got => Err(Error::KeyLength { got }),
        }
    }

    /// Key length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            KeyType::Tdes2 | KeyType::Aes128 => 16,
            KeyType::Tdes3 | KeyType::Aes192 => 24,
            KeyType::Aes256 => 32,
        }
    }

    /// The cipher family keys of this type are used with.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::Tdes2 | KeyType::Tdes3 => Algorithm::Tdes,
            _ => Algorithm::Aes,
        }
    }

    /// The standard's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Tdes2 => "2TDEA",
            KeyType::Tdes3 => "3TDEA",
            KeyType::Aes128 => "AES-128",
            KeyType::Aes192 => "AES-192",
            KeyType::Aes256 => "AES-256",
        }
    }

    /// The algorithm indicator of the derivation data (what a request names a working
    /// key type by).
    pub fn indicator(self) -> u16 {
        match self {
            KeyType::Tdes2 => 0x0000,
            KeyType::Tdes3 => 0x0001,
            KeyType::Aes128 => 0x0002,
            KeyType::Aes192 => 0x0003,
            KeyType::Aes256 => 0x0004,
        }
    }

    /// Whether a working key of this type may be derived from an initial key of type
    /// `initial` (never a stronger AES key than the initial key).
    pub fn derivable_from(self, initial: KeyType) -> bool {
        match self {
            KeyType::Aes192 => matches!(initial, KeyType::Aes192 | KeyType::Aes256),
            KeyType::Aes256 => initial == KeyType::Aes256,
            _ => true,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a working key is for (X9.24-3-2017 6.3.2, key usage indicator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// Key encryption (`0002`).
    KeyEncryption,
    /// PIN encryption (`1000`).
    PinEncryption,
    /// MAC generation (`2000`).
    MacGeneration,
    /// MAC verification (`2001`).
    MacVerification,
    /// MAC generation and verification (`2002`).
    MacBothWays,
    /// Data encryption, encrypt only (`3000`).
    DataEncrypt,
    /// Data encryption, decrypt only (`3001`).
    DataDecrypt,
    /// Data encryption, both ways (`3002`).
    DataBothWays,
}

impl KeyUsage {
    /// Every working key usage, for tests and listings.
    pub const ALL: [KeyUsage; 8] = [
        KeyUsage::KeyEncryption,
        KeyUsage::PinEncryption,
        KeyUsage::MacGeneration,
        KeyUsage::MacVerification,
        KeyUsage::MacBothWays,
        KeyUsage::DataEncrypt,
        KeyUsage::DataDecrypt,
        KeyUsage::DataBothWays,
    ];

    /// The key usage indicator of the derivation data.
    pub fn indicator(self) -> u16 {
        match self {
            KeyUsage::KeyEncryption => 0x0002,
            KeyUsage::PinEncryption => 0x1000,
            KeyUsage::MacGeneration => 0x2000,
            KeyUsage::MacVerification => 0x2001,
            KeyUsage::MacBothWays => 0x2002,
            KeyUsage::DataEncrypt => 0x3000,
            KeyUsage::DataDecrypt => 0x3001,
            KeyUsage::DataBothWays => 0x3002,
        }
    }
}

/// An AES base derivation key (AES-128, AES-192 or AES-256).
#[derive(Debug, Clone)]
pub struct Bdk {
    key: ClearKey,
    key_type: KeyType,
}

impl Bdk {
    /// Takes a 16-, 24- or 32-byte AES key.
    pub fn new(key: &ClearKey) -> Result<Self, Error> {
        Ok(Self {
            key_type: KeyType::aes_of_len(key.len())?,
            key: key.clone(),
        })
    }

    /// The BDK's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The initial key of the device whose KSN is `ksn` (its counter is ignored).
    pub fn initial_key(&self, ksn: &Ksn) -> Result<InitialKey, Error> {
        let data = derivation_data(USAGE_INITIAL_KEY, self.key_type, ksn.initial_key_id());
        Ok(InitialKey {
            key: derive(&self.key, self.key_type, data)?,
            key_type: self.key_type,
        })
    }
}

/// A device's initial key, of the BDK's type.
#[derive(Debug, Clone)]
pub struct InitialKey {
    key: ClearKey,
    key_type: KeyType,
}

impl InitialKey {
    /// Takes a clear 16-, 24- or 32-byte initial key (as a key-injection facility hands
    /// it over); its length gives its type.
    pub fn from_clear(key: &ClearKey) -> Result<Self, Error> {
        Ok(Self {
            key_type: KeyType::aes_of_len(key.len())?,
            key: key.clone(),
        })
    }

    /// The key.
    pub fn key(&self) -> &ClearKey {
        &self.key
    }

    /// The key's type (the BDK's).
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The transaction (intermediate derivation) key for `ksn`, after checking its
    /// counter ([`Ksn::check_counter`]).
    pub fn transaction_key(&self, ksn: &Ksn) -> Result<TransactionKey, Error> {
        ksn.check_counter()?;
        let counter = ksn.counter();
        let mut key = self.key.clone();
        let mut running = 0u32;
        let mut bit = 1u32 << 31;
        while bit != 0 {
            if counter & bit != 0 {
                running |= bit;
                let data = derivation_data(
                    USAGE_KEY_DERIVATION,
                    self.key_type,
                    ksn.derivation_tail(running),
                );
                key = derive(&key, self.key_type, data)?;
            }
            bit >>= 1;
        }
        Ok(TransactionKey {
            key,
            initial_type: self.key_type,
            ksn: *ksn,
        })
    }
}

/// The intermediate derivation key for one KSN, from which its working keys come.
#[derive(Debug, Clone)]
pub struct TransactionKey {
    key: ClearKey,
    initial_type: KeyType,
    ksn: Ksn,
}

impl TransactionKey {
    /// The key.
    pub fn key(&self) -> &ClearKey {
        &self.key
    }

    /// The working key for `usage`, of type `key_type`.
    pub fn working_key(&self, usage: KeyUsage, key_type: KeyType) -> Result<ClearKey, Error> {
        if !key_type.derivable_from(self.initial_type) {
            return Err(DukptError::WorkingKeyTooStrong {
                working: key_type.name(),
                initial: self.initial_type.name(),
            }
            .into());
        }
        let tail = self.ksn.derivation_tail(self.ksn.counter());
        derive(
            &self.key,
            key_type,
            derivation_data(usage.indicator(), key_type, tail),
        )
    }
}

/// The 16-byte derivation data of 6.3.2, block counter 1.
pub(super) fn derivation_data(usage: u16, key_type: KeyType, tail: [u8; 8]) -> [u8; 16] {
    let bits = u16::try_from(key_type.byte_len() * 8).unwrap_or(u16::MAX);
    let mut data = [0u8; 16];
    data[0] = 0x01;
    data[1] = 0x01;
    data[2..4].copy_from_slice(&usage.to_be_bytes());
    data[4..6].copy_from_slice(&key_type.indicator().to_be_bytes());
    data[6..8].copy_from_slice(&bits.to_be_bytes());
    data[8..].copy_from_slice(&tail);
    data
}

/// 6.3.3: AES-ECB of the derivation data under `key`, block counters 1, 2, ..., the
/// output cut to `key_type`'s length.
fn derive(key: &ClearKey, key_type: KeyType, mut data: [u8; 16]) -> Result<ClearKey, Error> {
    let cipher = BlockCipher::aes(key.expose_secret())?;
    let len = key_type.byte_len();
    let mut out = Zeroizing::new([0u8; 32]);
    for (counter, chunk) in (1u8..).zip(out.chunks_mut(16).take(len.div_ceil(16))) {
        data[1] = counter;
        chunk.copy_from_slice(&data);
        cipher.encrypt_ecb(chunk)?;
    }
    ClearKey::from_bytes(&out[..len])
}
