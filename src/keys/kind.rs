//! Key types and the usage rules between them and operations.
//!
//! Every working key has a [`KeyKind`]; every operation the daemon performs names the
//! [`Operation`] it needs; [`KeyKind::check`] is the one place that says which may do
//! which. A PIN verification key can't generate a CVV, a CVK can't encrypt a PIN block, a
//! KEK can't touch data, a BDK only derives DUKPT keys: each refusal is
//! [`KeysError::WrongUsage`]. The TR-31 header that
//! protects each key in the store carries the matching usage, algorithm and mode of use,
//! so the binding also survives export and import.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::KeysError;

/// The kinds of working key the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// Zone PIN key: PIN blocks between hosts/switches (TDES or AES).
    Zpk,
    /// Terminal PIN key: PIN blocks from terminals (TDES or AES).
    Tpk,
    /// PIN verification key: Visa PVV and IBM 3624 (TDES).
    Pvk,
    /// Card verification key: CVV, CVV2, iCVV (double-length TDES).
    Cvk,
    /// Dynamic CVV2 key (HMAC-SHA256).
    Dcvv2,
    /// FF1 PAN token key (AES).
    Token,
    /// Lookup-token key (HMAC-SHA256).
    Lookup,
    /// MAC key: retail MAC (TDES), CMAC (AES) or HMAC.
    Mac,
    /// Key-encryption key for TR-31 import and export (TDES or AES).
    Kek,
    /// Client transport key: encrypts security codes, PANs and dCVV2 codes delivered to
    /// a caller.
    Transport,
    /// PIN delivery key: enciphers a cardholder's PIN as a PIN block for delivery (the
    /// SMS gateway, a PIN mailer) and does nothing else, so that whoever holds a
    /// transport key (security codes, the card bureau's file) cannot read PINs.
    PinDelivery,
    /// DUKPT base derivation key (TDES, ANSI X9.24-1:2009; AES, X9.24-3-2017): derives
    /// each terminal's initial key and the per-transaction keys its PIN blocks are
    /// enciphered under. It never enciphers a PIN block or data itself.
    Bdk,
}

/// The key's cipher family as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// Triple DES, 16 or 24 bytes.
    Tdes,
    /// AES, 16, 24 or 32 bytes.
    Aes,
    /// HMAC-SHA256 key, 32 bytes.
    Hmac,
}

/// What a key is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Encipher or decipher a PIN block (verify, translate).
    PinBlock,
    /// Generate or verify a Visa PVV / IBM 3624 offset.
    PinVerification,
    /// Generate or verify CVV / CVV2 / iCVV.
    CardVerification,
    /// Generate or verify a dynamic CVV2.
    DynamicCvv2,
    /// Tokenise or detokenise a PAN.
    Tokenise,
    /// Compute a lookup token.
    LookupToken,
    /// Generate or verify a MAC.
    Mac,
    /// Wrap or unwrap a TR-31 key block for import or export.
    KeyWrap,
    /// Encrypt a value for delivery to a caller.
    TransportEncrypt,
    /// Encipher a cardholder's PIN as a PIN block for delivery.
    PinDelivery,
    /// Derive DUKPT keys (initial, transaction, working) for a terminal's KSN.
    DukptDerivation,
}

impl KeyKind {
    /// Every kind, for listings and tests.
    pub const ALL: [KeyKind; 12] = [
        KeyKind::Zpk,
        KeyKind::Tpk,
        KeyKind::Pvk,
        KeyKind::Cvk,
        KeyKind::Dcvv2,
        KeyKind::Token,
        KeyKind::Lookup,
        KeyKind::Mac,
        KeyKind::Kek,
        KeyKind::Transport,
        KeyKind::PinDelivery,
        KeyKind::Bdk,
    ];

    /// The one operation this kind may perform.
    pub fn operation(self) -> Operation {
        match self {
            KeyKind::Zpk | KeyKind::Tpk => Operation::PinBlock,
            KeyKind::Pvk => Operation::PinVerification,
            KeyKind::Cvk => Operation::CardVerification,
            KeyKind::Dcvv2 => Operation::DynamicCvv2,
            KeyKind::Token => Operation::Tokenise,
            KeyKind::Lookup => Operation::LookupToken,
            KeyKind::Mac => Operation::Mac,
            KeyKind::Kek => Operation::KeyWrap,
            KeyKind::Transport => Operation::TransportEncrypt,
            KeyKind::PinDelivery => Operation::PinDelivery,
            KeyKind::Bdk => Operation::DukptDerivation,
        }
    }

    /// Refuses any operation but this kind's own.
    pub fn check(self, operation: Operation) -> Result<(), KeysError> {
        if self.operation() == operation {
            Ok(())
        } else {
            Err(KeysError::WrongUsage {
                kind: self,
                operation,
            })
        }
    }

    /// Algorithms this kind may have.
    pub fn allowed_algorithms(self) -> &'static [KeyAlgorithm] {
        use KeyAlgorithm::*;
        match self {
            KeyKind::Zpk
            | KeyKind::Tpk
            | KeyKind::Kek
            | KeyKind::Transport
            | KeyKind::PinDelivery
            | KeyKind::Bdk => &[Tdes, Aes],
            KeyKind::Pvk | KeyKind::Cvk => &[Tdes],
            KeyKind::Dcvv2 | KeyKind::Lookup => &[Hmac],
            KeyKind::Token => &[Aes],
            KeyKind::Mac => &[Tdes, Aes, Hmac],
        }
    }

    /// Key lengths in bytes this kind accepts for `algorithm`; the first is the default.
    pub fn allowed_lengths(self, algorithm: KeyAlgorithm) -> &'static [usize] {
        match (self, algorithm) {
            // CVV and the retail MAC are defined for double-length keys only.
            (KeyKind::Cvk, _) | (KeyKind::Mac, KeyAlgorithm::Tdes) => &[16],
            (_, KeyAlgorithm::Tdes) => &[16, 24],
            (_, KeyAlgorithm::Aes) => &[32, 16, 24],
            // protocol/dcvv2.md: a dCVV2 key is 16 bytes (128-bit security) or 32.
            (KeyKind::Dcvv2, KeyAlgorithm::Hmac) => &[32, 16],
            (_, KeyAlgorithm::Hmac) => &[32],
        }
    }

    /// Checks an algorithm and length for this kind.
    pub fn check_shape(self, algorithm: KeyAlgorithm, len: usize) -> Result<(), KeysError> {
        if !self.allowed_algorithms().contains(&algorithm) {
            return Err(KeysError::Invalid(format!(
                "a {self} key cannot be {algorithm}"
            )));
        }
        if !self.allowed_lengths(algorithm).contains(&len) {
            return Err(KeysError::Invalid(format!(
                "a {algorithm} {self} key cannot be {len} bytes"
            )));
        }
        Ok(())
    }

    /// TR-31 key usage code. `10` and `11` are in the numeric range ANSI X9.143 leaves for
    /// proprietary use: no standard usage describes a dCVV2 or lookup-token HMAC key.
    pub fn tr31_usage(self, algorithm: KeyAlgorithm) -> &'static str {
        match (self, algorithm) {
            (KeyKind::Zpk | KeyKind::Tpk, _) => "P0",
            (KeyKind::Pvk, _) => "V0",
            (KeyKind::Cvk, _) => "C0",
            (KeyKind::Dcvv2, _) => "10",
            (KeyKind::Token, _) => "D0",
            (KeyKind::Lookup, _) => "11",
            (KeyKind::Mac, KeyAlgorithm::Tdes) => "M3",
            (KeyKind::Mac, KeyAlgorithm::Aes) => "M6",
            (KeyKind::Mac, KeyAlgorithm::Hmac) => "M7",
            (KeyKind::Kek, _) => "K0",
            (KeyKind::Transport, _) => "D0",
            (KeyKind::PinDelivery, _) => "P0",
            (KeyKind::Bdk, _) => "B0",
        }
    }

    /// TR-31 mode of use: B both ways, C generate and verify, E encrypt only (this HSM
    /// only ever encrypts under transport and PIN delivery keys), X derive other keys
    /// (the only mode X9.143 allows a BDK).
    pub fn tr31_mode(self) -> char {
        match self {
            KeyKind::Bdk => 'X',
            KeyKind::Zpk | KeyKind::Tpk | KeyKind::Token | KeyKind::Kek => 'B',
            KeyKind::Pvk | KeyKind::Cvk | KeyKind::Dcvv2 | KeyKind::Lookup | KeyKind::Mac => 'C',
            KeyKind::Transport | KeyKind::PinDelivery => 'E',
        }
    }

    /// Whether a new key of this kind may be exported under a KEK by default. KEKs, token
    /// keys, the HMAC keys and BDKs (one BDK opens every terminal derived from it; it goes
    /// to a key-injection facility only by an explicit decision) stay in this HSM unless
    /// generated with `--exportable`.
    pub fn exportable_by_default(self) -> bool {
        !matches!(
            self,
            KeyKind::Kek | KeyKind::Token | KeyKind::Lookup | KeyKind::Dcvv2 | KeyKind::Bdk
        )
    }

    /// The modes of use a TR-31 block of this kind may carry on import: the mode this
    /// HSM writes ([`KeyKind::tr31_mode`]), and nothing it would not honour (a
    /// decrypt-only PIN key could still encipher here, so it is refused, not widened).
    pub fn tr31_import_modes(self) -> &'static [char] {
        match self {
            KeyKind::Zpk | KeyKind::Tpk | KeyKind::Token | KeyKind::Kek => &['B'],
            KeyKind::Pvk | KeyKind::Cvk | KeyKind::Dcvv2 | KeyKind::Lookup | KeyKind::Mac => &['C'],
            KeyKind::Transport | KeyKind::PinDelivery => &['E'],
            KeyKind::Bdk => &['X'],
        }
    }

    /// Usage codes a TR-31 block of this kind may carry on import: the one this HSM
    /// writes, and for PVKs and KEKs their X9.143 siblings.
    pub fn tr31_import_usages(self, algorithm: KeyAlgorithm) -> &'static [&'static str] {
        match (self, algorithm) {
            (KeyKind::Pvk, _) => &["V0", "V1", "V2"],
            (KeyKind::Kek, _) => &["K0", "K1"],
            (KeyKind::Zpk | KeyKind::Tpk | KeyKind::PinDelivery, _) => &["P0"],
            (KeyKind::Cvk, _) => &["C0"],
            (KeyKind::Dcvv2, _) => &["10"],
            (KeyKind::Lookup, _) => &["11"],
            (KeyKind::Token | KeyKind::Transport, _) => &["D0"],
            (KeyKind::Bdk, _) => &["B0"],
            (KeyKind::Mac, KeyAlgorithm::Tdes) => &["M3"],
            (KeyKind::Mac, KeyAlgorithm::Aes) => &["M6"],
            (KeyKind::Mac, KeyAlgorithm::Hmac) => &["M7"],
        }
    }

    /// The kind a TR-31 block's usage and mode of use stand for on import when the
    /// operator names none: `P0` with `B` a ZPK (name `tpk` for a terminal key) and with
    /// `E` a PIN delivery key, `D0` with `B` a token key and with `E` a transport key;
    /// every other usage has one kind. `None`: no cofre kind (name one, or refuse).
    pub fn from_tr31(usage: &str, mode: char) -> Option<KeyKind> {
        Some(match (usage, mode) {
            ("P0", 'E') => KeyKind::PinDelivery,
            ("D0", 'B') => KeyKind::Token,
            ("D0", 'E') => KeyKind::Transport,
            ("D0", _) => return None,
            _ => Self::from_tr31_usage(usage)?,
        })
    }

    /// Whether a block with this usage, algorithm and mode may be filed as this kind.
    pub fn accepts_tr31(self, usage: &str, algorithm: KeyAlgorithm, mode: char) -> bool {
        self.allowed_algorithms().contains(&algorithm)
            && self.tr31_import_usages(algorithm).contains(&usage)
            && self.tr31_import_modes().contains(&mode)
    }

    /// The kind a TR-31 usage code maps to on import, when the operator does not say.
    pub fn from_tr31_usage(usage: &str) -> Option<KeyKind> {
        Some(match usage {
            "P0" => KeyKind::Zpk,
            "V0" | "V1" | "V2" => KeyKind::Pvk,
            "C0" => KeyKind::Cvk,
            "10" => KeyKind::Dcvv2,
            "11" => KeyKind::Lookup,
            "M3" | "M6" | "M7" => KeyKind::Mac,
            "K0" | "K1" => KeyKind::Kek,
            "D0" => KeyKind::Transport,
            "B0" => KeyKind::Bdk,
            _ => return None,
        })
    }
}

impl KeyAlgorithm {
    /// TR-31 algorithm code.
    pub fn tr31_code(self) -> char {
        match self {
            KeyAlgorithm::Tdes => 'T',
            KeyAlgorithm::Aes => 'A',
            KeyAlgorithm::Hmac => 'H',
        }
    }

    /// From a TR-31 algorithm code.
    pub fn from_tr31_code(c: char) -> Option<Self> {
        match c {
            'T' => Some(KeyAlgorithm::Tdes),
            'A' => Some(KeyAlgorithm::Aes),
            'H' => Some(KeyAlgorithm::Hmac),
            _ => None,
        }
    }
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $name),* })
            }
        }
        impl FromStr for $ty {
            type Err = KeysError;
            fn from_str(s: &str) -> Result<Self, KeysError> {
                match s { $($name => Ok(Self::$variant),)* _ => Err(KeysError::Invalid(format!(
                    concat!("unknown ", stringify!($ty), " {:?} (one of: ", $($name, " ",)* ")"), s))) }
            }
        }
    };
}

names!(KeyKind { Zpk => "zpk", Tpk => "tpk", Pvk => "pvk", Cvk => "cvk", Dcvv2 => "dcvv2", Token => "token",
    Lookup => "lookup", Mac => "mac", Kek => "kek", Transport => "transport",
    PinDelivery => "pin-delivery", Bdk => "bdk" });
names!(KeyAlgorithm { Tdes => "tdes", Aes => "aes", Hmac => "hmac" });

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::PinBlock => "PIN block encryption",
            Operation::PinVerification => "PIN verification (PVV / IBM 3624)",
            Operation::CardVerification => "card verification (CVV)",
            Operation::DynamicCvv2 => "dynamic CVV2",
            Operation::Tokenise => "tokenisation",
            Operation::LookupToken => "lookup tokens",
            Operation::Mac => "MAC",
            Operation::KeyWrap => "key wrapping",
            Operation::TransportEncrypt => "transport encryption",
            Operation::PinDelivery => "PIN delivery",
            Operation::DukptDerivation => "DUKPT key derivation",
        })
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
