//! TDES DUKPT, ANSI X9.24-1:2009 Annex A (host side).
//!
//! * The KSN is 10 bytes: a 59-bit initial key serial number and a 21-bit transaction
//!   counter in its rightmost bits.
//! * The initial key (IPEK) is the double-length BDK enciphering the leftmost 8 bytes of the
//!   KSN with the counter cleared: left half under the BDK, right half under the BDK XOR
//!   `C0C0C0C000000000C0C0C0C000000000` (A.6).
//! * The transaction key for a counter is reached from the initial key by one
//!   non-reversible key generation step (A.2) for each one-bit of the counter, most
//!   significant first, with that bit added to the KSN register each time (A.3,
//!   "calculation of the current key" on the receiving side).
//! * Working keys are variants of the transaction key (A.4.1, table A-1); the two data
//!   keys also go through the one-way step of figure A-2 (each half enciphered under the
//!   variant itself), which the published A.4.2 data-encryption results need.

use std::fmt;

use zeroize::Zeroizing;

use super::super::cipher::{BlockCipher, des_encrypt};
use super::super::{ClearKey, Error};
use super::counter;

/// Length of a TDES DUKPT KSN in bytes.
pub const KSN_LEN: usize = 10;
/// Bits of the transaction counter (the rightmost of the KSN).
pub const COUNTER_BITS: u32 = 21;
/// Mask of the transaction counter in the KSN's rightmost 3 bytes.
pub const COUNTER_MASK: u32 = 0x1F_FFFF;
/// The last counter a device may use: the largest 21-bit value with ten one-bits.
pub const LAST_COUNTER: u32 = 0x1F_F800;
/// A.2: a device only uses counters with at most this many one-bits.
pub const MAX_ONE_BITS: u32 = 10;

/// The key-register mask of A.2 and A.6.
const KEY_MASK: [u8; 16] = [
    0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
];

/// A TDES DUKPT key serial number (public: terminals send it in the clear).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn([u8; KSN_LEN]);

impl Ksn {
    /// Wraps exactly 10 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        bytes.try_into().map(Self).map_err(|_| Error::FieldLength {
            field: "TDES DUKPT KSN",
            expected: "10 bytes (20 hex characters)",
        })
    }

    /// Parses 20 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        Self::from_bytes(&hex::decode(text.trim()).map_err(|_| Error::Hex("KSN"))?)
    }

    /// The KSN bytes.
    pub fn as_bytes(&self) -> &[u8; KSN_LEN] {
        &self.0
    }

    /// The 21-bit transaction counter.
    pub fn counter(&self) -> u32 {
        u32::from_be_bytes([0, self.0[7], self.0[8], self.0[9]]) & COUNTER_MASK
    }

    /// This KSN with its counter replaced (for building test series and the calculator).
    pub fn with_counter(&self, counter: u32) -> Result<Self, Error> {
        if counter > COUNTER_MASK {
            return Err(Error::Parameter("TDES DUKPT counters are 21 bits"));
        }
        let mut out = self.0;
        let tail = u32::from_be_bytes([0, out[7], out[8], out[9]]) & !COUNTER_MASK | counter;
        out[7..].copy_from_slice(&tail.to_be_bytes()[1..]);
        Ok(Self(out))
    }

    /// Refuses counters no transaction may carry: zero, past [`LAST_COUNTER`], or with
    /// more than [`MAX_ONE_BITS`] one-bits.
    pub fn check_counter(&self) -> Result<(), Error> {
        counter::check(self.counter(), LAST_COUNTER, MAX_ONE_BITS)
    }

    /// The KSN a device sends after this one: the next counter with at most
    /// [`MAX_ONE_BITS`] one-bits, or `None` once the device is exhausted.
    pub fn next(&self) -> Option<Self> {
        let counter = counter::next(self.counter(), LAST_COUNTER, MAX_ONE_BITS)?;
        self.with_counter(counter).ok()
    }

    /// The rightmost 8 bytes with the counter cleared: the KSN register's starting value.
    fn register_base(&self) -> u64 {
        let mut right = [0u8; 8];
        right.copy_from_slice(&self.0[2..]);
        u64::from_be_bytes(right) & !u64::from(COUNTER_MASK)
    }
}

impl fmt::Display for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl fmt::Debug for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tdes::Ksn({self})")
    }
}

/// A TDES base derivation key: double length (X9.24-1:2009 defines TDES DUKPT for
/// 16-byte keys only).
#[derive(Debug, Clone)]
pub struct Bdk(ClearKey);

impl Bdk {
    /// Takes a 16-byte TDES key.
    pub fn new(key: &ClearKey) -> Result<Self, Error> {
        double_length(key).map(Self)
    }

    /// The initial key (IPEK) of the device whose KSN is `ksn` (its counter is ignored).
    pub fn initial_key(&self, ksn: &Ksn) -> InitialKey {
        let mut data = [0u8; 8];
        data.copy_from_slice(&ksn.0[..8]);
        // Clear the counter's top 5 bits, the only ones inside the leftmost 8 bytes.
        data[7] &= 0xE0;
        let mut masked = Zeroizing::new([0u8; 16]);
        masked.copy_from_slice(self.0.expose_secret());
        xor_into(&mut masked[..], &KEY_MASK);
        let mut out = Zeroizing::new([0u8; 16]);
        out[..8].copy_from_slice(&data);
        out[8..].copy_from_slice(&data);
        tdes_encrypt(self.0.expose_secret(), &mut out[..8]);
        tdes_encrypt(&masked[..], &mut out[8..]);
        InitialKey(ClearKey::from_array(&out))
    }
}

/// A device's initial key (IPEK, "initial PIN encryption key").
#[derive(Debug, Clone)]
pub struct InitialKey(ClearKey);

impl InitialKey {
    /// Takes a clear 16-byte initial key (as a terminal vendor or key-injection facility
    /// hands it over).
    pub fn from_clear(key: &ClearKey) -> Result<Self, Error> {
        double_length(key).map(Self)
    }

    /// The key.
    pub fn key(&self) -> &ClearKey {
        &self.0
    }

    /// The transaction key for `ksn`, after checking its counter
    /// ([`Ksn::check_counter`]).
    pub fn transaction_key(&self, ksn: &Ksn) -> Result<TransactionKey, Error> {
        ksn.check_counter()?;
        let counter = ksn.counter();
        let mut key = Zeroizing::new([0u8; 16]);
        key.copy_from_slice(self.0.expose_secret());
        let mut register = ksn.register_base();
        let mut bit = 1u32 << (COUNTER_BITS - 1);
        while bit != 0 {
            if counter & bit != 0 {
                register |= u64::from(bit);
                non_reversible_step(&mut key, register.to_be_bytes());
            }
            bit >>= 1;
        }
        Ok(TransactionKey(ClearKey::from_array(&key)))
    }
}

/// The current transaction key for one KSN; working keys are its variants.
#[derive(Debug, Clone)]
pub struct TransactionKey(ClearKey);

/// The working keys X9.24-1:2009 A.4.1 defines (table A-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// PIN encryption.
    Pin,
    /// MAC of a request (terminal to host).
    MacRequest,
    /// MAC of a response (host to terminal).
    MacResponse,
    /// Data encryption of a request.
    DataRequest,
    /// Data encryption of a response.
    DataResponse,
}

impl Variant {
    /// Table A-1: each variant is `FF` in one byte of each half (`00000000000000FF` for
    /// the PIN key, `000000000000FF00` for the request MAC key, ...). This is that byte's
    /// index within the half.
    fn ff_byte(self) -> usize {
        match self {
            Variant::Pin => 7,
            Variant::MacRequest => 6,
            Variant::DataRequest => 5,
            Variant::MacResponse => 4,
            Variant::DataResponse => 3,
        }
    }
}

impl TransactionKey {
    /// The key.
    pub fn key(&self) -> &ClearKey {
        &self.0
    }

    /// The working key of `variant` (always double-length TDES).
    pub fn working_key(&self, variant: Variant) -> ClearKey {
        let at = variant.ff_byte();
        let mut key = Zeroizing::new([0u8; 16]);
        key.copy_from_slice(self.0.expose_secret());
        key[at] ^= 0xFF;
        key[8 + at] ^= 0xFF;
        if matches!(variant, Variant::DataRequest | Variant::DataResponse) {
            // Figure A-2: each half enciphered (TDES) under the variant key itself.
            let mut out = key.clone();
            tdes_encrypt(&key[..], &mut out[..8]);
            tdes_encrypt(&key[..], &mut out[8..]);
            return ClearKey::from_array(&out);
        }
        ClearKey::from_array(&key)
    }
}

fn double_length(key: &ClearKey) -> Result<ClearKey, Error> {
    if key.len() != 16 {
        return Err(Error::KeyLength { got: key.len() });
    }
    Ok(key.clone())
}

fn xor_into(target: &mut [u8], mask: &[u8]) {
    for (t, m) in target.iter_mut().zip(mask) {
        *t ^= m;
    }
}

/// Enciphers one 8-byte block in place with two-key TDES (EDE). Every caller passes a
/// 16-byte key and an 8-byte block, so the cipher cannot refuse.
fn tdes_encrypt(key: &[u8], block: &mut [u8]) {
    if let Ok(cipher) = BlockCipher::tdes(key) {
        let _ = cipher.encrypt_ecb(block);
    }
}

/// A.2 non-reversible key generation: the new right half is the register enciphered
/// (XOR KR, DES under KL, XOR KR) under the key, the new left half the same under the key
/// XOR [`KEY_MASK`].
fn non_reversible_step(key: &mut [u8; 16], register: [u8; 8]) {
    let half = |k: &[u8; 16]| -> Zeroizing<[u8; 8]> {
        let mut kl = Zeroizing::new([0u8; 8]);
        kl.copy_from_slice(&k[..8]);
        let mut r = Zeroizing::new(register);
        xor_into(&mut r[..], &k[8..]);
        des_encrypt(&kl, &mut r);
        xor_into(&mut r[..], &k[8..]);
        r
    };
    let right = half(key);
    let mut masked = Zeroizing::new(*key);
    xor_into(&mut masked[..], &KEY_MASK);
    let left = half(&masked);
    key[..8].copy_from_slice(&left[..]);
    key[8..].copy_from_slice(&right[..]);
}
