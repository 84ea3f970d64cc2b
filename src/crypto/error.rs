//! The crypto layer's one error type. Messages name the field and the rule, never the
//! value: a key, PIN, PAN or PIN block never appears in an error.

pub use super::tr31::Tr31Error;

/// Everything the crypto core can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key of a length no algorithm here accepts for this use.
    #[error("wrong key length: {got} bytes")]
    KeyLength {
        /// The length that was given.
        got: usize,
    },
    /// A field that must be hex was not (or had an odd number of digits).
    #[error("{0} is not valid hex")]
    Hex(&'static str),
    /// A field had the wrong length.
    #[error("{field} must be {expected}")]
    FieldLength {
        /// Which field.
        field: &'static str,
        /// The rule, in words ("4 digits", "16 hex characters").
        expected: &'static str,
    },
    /// A field that must be decimal digits was not.
    #[error("{0} must be decimal digits")]
    NotDecimal(&'static str),
    /// Data for a block-mode operation was not a whole number of blocks.
    #[error("data length {len} is not a multiple of the {block}-byte block")]
    BlockAlignment {
        /// Data length.
        len: usize,
        /// Block size of the cipher.
        block: usize,
    },
    /// A PAN that is not 12 to 19 digits.
    #[error("PAN must be 12 to 19 decimal digits")]
    PanFormat,
    /// A PAN whose Luhn check digit is wrong.
    #[error("PAN fails the Luhn check")]
    PanLuhn,
    /// A PIN that is not 4 to 12 digits long.
    #[error("PIN must be 4 to 12 digits, got {got}")]
    PinLength {
        /// The length that was given.
        got: usize,
    },
    /// A PIN with a non-decimal character.
    #[error("PIN must be decimal digits")]
    PinNotDecimal,
    /// An ISO 9564 PIN block that does not decode.
    #[error("PIN block: {0}")]
    PinBlock(#[from] PinBlockError),
    /// A TR-31 / X9.143 key block problem.
    #[error("TR-31: {0}")]
    Tr31(#[from] Tr31Error),
    /// A parameter outside its documented range (PVKI 0-6, decimalisation table...).
    #[error("invalid parameter: {0}")]
    Parameter(&'static str),
    /// A token that does not decode under this key and alphabet.
    #[error("token: {0}")]
    Token(&'static str),
    /// A DUKPT derivation refused (KSN counter rules, key types).
    #[error("DUKPT: {0}")]
    Dukpt(#[from] DukptError),
}

/// Why an ISO 9564 PIN block was refused. Each rule has its own variant so a switch can
/// tell a wrong key (usually "bad control field" or "fill rule violated") from bad data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinBlockError {
    /// The first nibble is not the expected format number.
    #[error("control field is not the expected format")]
    ControlField,
    /// The PIN length nibble is outside 4..=12.
    #[error("PIN length nibble out of range")]
    LengthNibble,
    /// A PIN digit position holds A-F.
    #[error("PIN digit is not decimal")]
    PinDigit,
    /// The fill after the PIN breaks the format's rule (F for 0/2, A-F for 3, A for 4).
    #[error("fill rule violated")]
    Fill,
    /// The block is not the format's size (8 bytes, 16 for format 4).
    #[error("wrong block length")]
    BlockLength,
    /// The format number is not one of 0, 1, 2, 3, 4.
    #[error("unsupported format")]
    Format,
}

/// Why a DUKPT derivation was refused (ANSI X9.24-1:2009 Annex A for TDES DUKPT,
/// ANSI X9.24-3-2017 for AES DUKPT). Each KSN counter rule has its own variant: an
/// exhausted device needs new keys, while a counter no device can produce (zero, or too
/// many one-bits) points at a forged or corrupted KSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DukptError {
    /// Counter 0 belongs to the initial key itself; no transaction is ever sent with it.
    #[error("KSN transaction counter is 0, which no transaction uses")]
    CounterZero,
    /// The counter is past the last one the standard lets a device use: the device's
    /// keys are exhausted and it must be loaded with a new initial key.
    #[error("KSN transaction counter is past the last usable value (device exhausted)")]
    CounterExhausted,
    /// The counter has more one-bits than the standard allows (10 for TDES DUKPT, 16 for
    /// AES DUKPT); a conforming device skips such counters.
    #[error("KSN transaction counter has more than {max} one-bits")]
    CounterOneBits {
        /// The most one-bits the variant allows.
        max: u32,
    },
    /// The KSN's length names the other DUKPT variant than the key given with it
    /// (10 bytes: TDES DUKPT; 12 bytes: AES DUKPT).
    #[error("the KSN is for {ksn} DUKPT but the key is for {key} DUKPT")]
    VariantMismatch {
        /// The variant the KSN's length names.
        ksn: &'static str,
        /// The variant the key belongs to.
        key: &'static str,
    },
    /// AES DUKPT: the working key asked for is stronger than the initial key it would be
    /// derived from (X9.24-3-2017: AES-192 needs an AES-192 or AES-256 BDK, AES-256 an
    /// AES-256 BDK).
    #[error("an {working} working key cannot be derived from an {initial} initial key")]
    WorkingKeyTooStrong {
        /// The working key type asked for.
        working: &'static str,
        /// The initial key's type.
        initial: &'static str,
    },
    /// The working key type does not exist in this DUKPT variant, or cannot encipher the
    /// PIN block format (format 4 needs an AES key; formats 0, 1 and 3 a TDES key).
    #[error("{0}")]
    WorkingKeyType(&'static str),
}
