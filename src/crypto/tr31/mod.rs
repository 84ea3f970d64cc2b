//! TR-31 / ANSI X9.143 key blocks: the header (fixed fields and optional blocks) and the
//! wrapping of a key under a key block protection key (KBPK). Pure functions: random
//! padding comes in through an `rng` parameter.
//!
//! Wraps versions B (TDES KBPK) and D (AES KBPK), the key-derivation methods that
//! X9.143 requires for new blocks. Unwraps A, B, C and D: A and C (the TDES variant
//! method, with a 4-byte MAC) are accepted only to import legacy blocks, and are never
//! produced.
//!
//! Owns the key block format only. Which key kinds may be imported or exported, and
//! under which KEK, is the key store's rule; this module must not touch storage or I/O.

mod fields;
mod header;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_negative;
mod wrap;

pub use fields::{
    Exportability, KeyAlgorithm, KeyContext, KeyUsage, KeyVersion, ModeOfUse, UsageCode, Version,
};
pub use header::{Header, OptionalBlock};
pub use wrap::{unwrap, wrap};

/// Why a TR-31 key block was refused. Messages name the rule, never key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tr31Error {
    /// The block's MAC does not verify under the given KBPK.
    #[error("key block MAC does not verify")]
    Mac,
    /// The version ID is not A, B, C or D.
    #[error("unsupported key block version")]
    Version,
    /// Versions A and C are unwrap-only.
    #[error("cofre wraps only versions B and D")]
    WrapVersion,
    /// Input ends inside the header or before the MAC.
    #[error("key block is truncated")]
    TooShort,
    /// The length field is not 4 decimal digits.
    #[error("length field must be 4 decimal digits")]
    LengthField,
    /// The length field does not match the block.
    #[error("length field says {declared} characters, block has {actual}")]
    Length {
        /// Value of the length field.
        declared: usize,
        /// Characters actually present.
        actual: usize,
    },
    /// A fixed header field holds a value the standard does not define.
    #[error("invalid {0} field")]
    Field(&'static str),
    /// The optional block count is not 2 decimal digits.
    #[error("optional block count must be 2 decimal digits")]
    BlockCount,
    /// An optional block is malformed.
    #[error("optional block: {0}")]
    OptionalBlock(&'static str),
    /// More than 99 optional blocks, padding included.
    #[error("more than 99 optional blocks")]
    TooManyBlocks,
    /// The block would be longer than the 4-digit length field allows.
    #[error("key block longer than 9999 characters")]
    TooLong,
    /// Characters after a header given alone.
    #[error("unexpected characters after the header")]
    TrailingData,
    /// Header or key data is not a whole number of cipher blocks.
    #[error("key block is not aligned to the cipher block size")]
    Alignment,
    /// Key data or MAC is not hex.
    #[error("key data or MAC is not hex")]
    Hex,
    /// The KBPK length does not fit the version (B: 16/24, D: 16/24/32, A/C: 16/24).
    #[error("a {got}-byte KBPK cannot protect a version {version} block")]
    KbpkLength {
        /// Version ID.
        version: char,
        /// KBPK length in bytes.
        got: usize,
    },
    /// The key's length does not fit the header's algorithm.
    #[error("a {got}-byte key does not fit the header's algorithm")]
    KeyLength {
        /// Key length in bytes.
        got: usize,
    },
    /// The decrypted key length field is zero, not whole bytes, or longer than the data.
    #[error("decrypted key length field is invalid")]
    KeyField,
    /// The KBPK is weaker than the key it would protect.
    #[error("KBPK is weaker than the key it would protect")]
    WeakKbpk,
    /// The key usage does not allow the mode of use.
    #[error("key usage {usage} does not allow mode of use {mode}")]
    Incoherent {
        /// Key usage.
        usage: KeyUsage,
        /// Mode of use.
        mode: ModeOfUse,
    },
}
