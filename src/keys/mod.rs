//! Key management: the LMK, the key store, key usage rules, rotation and the audit log.
//!
//! Owns: everything about keys at rest and their life cycle. Uses `crypto` for the
//! algorithms. Must not touch: sockets, the wire protocol, request handling; callers
//! pass the time (`now`) and the random generator in, so every rule is testable.

pub mod audit;
pub mod devpki;
pub mod kind;
pub mod lmk;
pub mod payshield;
pub mod store;

pub use kind::{KeyAlgorithm, KeyKind, Operation};
pub use lmk::{Lmk, LmkSource};
pub use store::{KeyStore, LoadedKey, Status, Tr31Import};

/// Everything key management can refuse. Messages name keys by id, version and KCV,
/// never by material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// LMK component or ceremony problem.
    #[error("LMK: {0}")]
    Lmk(String),
    /// Reading or writing a file failed.
    #[error("I/O: {0}")]
    Io(String),
    /// The store file is not a cofre key store, or is damaged.
    #[error("key store is damaged or not a cofre key store: {0}")]
    Corrupt(String),
    /// The store's MAC does not verify: tampered with, or the wrong LMK.
    #[error(
        "key store MAC does not verify: the file was modified or the LMK is wrong (loaded LMK KCV {lmk_kcv}, store written under {store_lmk_kcv})"
    )]
    Tampered {
        /// KCV of the LMK that was loaded.
        lmk_kcv: String,
        /// KCV the store says it was written under.
        store_lmk_kcv: String,
    },
    /// The store was written by a newer or unknown format version.
    #[error("unsupported key store format {0:?}")]
    Format(String),
    /// No key with that id (or id and version).
    #[error("unknown key {0}")]
    UnknownKey(String),
    /// A key asked to do what its kind may not.
    #[error("wrong key usage: a {kind} key cannot be used for {operation}")]
    WrongUsage {
        /// The key's kind.
        kind: KeyKind,
        /// What was asked.
        operation: Operation,
    },
    /// The key exists but no version is in a state that allows this.
    #[error("key {0} has no version usable for this")]
    NoUsableVersion(String),
    /// The key is not exportable.
    #[error("key {0} is not exportable")]
    NotExportable(String),
    /// A bad parameter (name, kind, algorithm, length, KCV mismatch...).
    #[error("{0}")]
    Invalid(String),
    /// A new key's id is already taken.
    #[error("key {0} already exists (rotate it for a new version)")]
    Exists(String),
    /// A TR-31 block to import breaks a header rule: its usage, algorithm or mode of use
    /// does not fit the kind it would be filed as.
    #[error("key block refused: {0}")]
    BlockRefused(String),
    /// The audit log chain does not verify.
    #[error("audit log: {0}")]
    Audit(String),
    /// A crypto-layer refusal (TR-31, key lengths...).
    #[error(transparent)]
    Crypto(#[from] crate::crypto::Error),
}
