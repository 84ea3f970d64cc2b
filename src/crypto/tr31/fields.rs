//! The fixed header fields of a key block, each parsed into a type whose values are all
//! valid (ANSI X9.143-2022 table 1, TR-31:2018 section A.5), and the usage / mode-of-use
//! coherence rule applied when cofre wraps a key.

use std::fmt;

use super::Tr31Error;

/// Key block version ID: how the block is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// TDES key variant binding (KBPK XOR 0x45 / 0x4D). Deprecated; unwrap only.
    A,
    /// TDES key derivation binding (TDES-CMAC derived keys, 8-byte MAC).
    B,
    /// TDES key variant binding, as A with clarified header values. Unwrap only.
    C,
    /// AES key derivation binding (AES-CMAC derived keys, 16-byte MAC).
    D,
}

impl Version {
    pub(super) fn from_byte(b: u8) -> Result<Self, Tr31Error> {
        match b {
            b'A' => Ok(Version::A),
            b'B' => Ok(Version::B),
            b'C' => Ok(Version::C),
            b'D' => Ok(Version::D),
            _ => Err(Tr31Error::Version),
        }
    }

    /// The one-character code.
    pub fn code(self) -> char {
        match self {
            Version::A => 'A',
            Version::B => 'B',
            Version::C => 'C',
            Version::D => 'D',
        }
    }

    /// Cipher block size of the protection method: key data and optional blocks are
    /// padded to a multiple of it.
    pub fn block_size(self) -> usize {
        match self {
            Version::D => 16,
            Version::A | Version::B | Version::C => 8,
        }
    }

    /// Length in bytes of the MAC at the end of the block.
    pub fn mac_len(self) -> usize {
        match self {
            Version::A | Version::C => 4,
            Version::B => 8,
            Version::D => 16,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// A two-character key usage code that is alphanumeric but not one [`KeyUsage`] names
/// (proprietary numeric codes, asymmetric usages). Only [`KeyUsage`]'s parser makes one,
/// so a listed code is never carried as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsageCode([u8; 2]);

impl UsageCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

macro_rules! key_usages {
    ($($variant:ident = $code:literal, $doc:literal;)*) => {
        /// What the wrapped key is for (X9.143 table 2, the commonly used codes).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum KeyUsage {
            $(#[doc = $doc] $variant,)*
            /// A valid alphanumeric code not listed above.
            Other(UsageCode),
        }

        impl KeyUsage {
            /// The two-character code.
            pub fn code(&self) -> &str {
                match self {
                    $(KeyUsage::$variant => $code,)*
                    KeyUsage::Other(c) => c.as_str(),
                }
            }

            pub(super) fn from_bytes(b: [u8; 2]) -> Result<Self, Tr31Error> {
                $(if &b == $code.as_bytes() { return Ok(KeyUsage::$variant); })*
                if b.iter().all(u8::is_ascii_alphanumeric) {
                    Ok(KeyUsage::Other(UsageCode(b)))
                } else {
                    Err(Tr31Error::Field("key usage"))
                }
            }
        }
    };
}

key_usages! {
    Bdk = "B0", "B0: base derivation key (DUKPT BDK).";
    DukptInitialKey = "B1", "B1: DUKPT initial key (IPEK).";
    BaseKeyVariant = "B2", "B2: base key variant key.";
    Cvk = "C0", "C0: card verification key (CVV, CVC, CSC).";
    DataEncryption = "D0", "D0: symmetric data encryption key.";
    AsymmetricDataEncryption = "D1", "D1: asymmetric data encryption key.";
    DecimalizationTable = "D2", "D2: data encryption key for decimalisation tables.";
    EmvApplicationCryptogram = "E0", "E0: EMV issuer master key, application cryptograms.";
    EmvSmConfidentiality = "E1", "E1: EMV issuer master key, secure messaging confidentiality.";
    EmvSmIntegrity = "E2", "E2: EMV issuer master key, secure messaging integrity.";
    EmvDataAuthentication = "E3", "E3: EMV issuer master key, data authentication code.";
    EmvDynamicNumbers = "E4", "E4: EMV issuer master key, dynamic numbers.";
    EmvCardPersonalization = "E5", "E5: EMV issuer master key, card personalisation.";
    EmvOther = "E6", "E6: EMV issuer master key, other.";
    Iv = "I0", "I0: initialisation vector.";
    Kek = "K0", "K0: key encryption or wrapping key.";
    Kbpk = "K1", "K1: TR-31 key block protection key.";
    MacIso16609 = "M0", "M0: ISO 16609 MAC algorithm 1 (TDES).";
    MacIso9797Alg1 = "M1", "M1: ISO 9797-1 MAC algorithm 1.";
    MacIso9797Alg2 = "M2", "M2: ISO 9797-1 MAC algorithm 2.";
    MacIso9797Alg3 = "M3", "M3: ISO 9797-1 MAC algorithm 3 (retail MAC).";
    MacIso9797Alg4 = "M4", "M4: ISO 9797-1 MAC algorithm 4.";
    MacIso9797Alg5 = "M5", "M5: ISO 9797-1:1999 MAC algorithm 5.";
    MacCmac = "M6", "M6: ISO 9797-1:2011 MAC algorithm 5 (CMAC).";
    MacHmac = "M7", "M7: HMAC.";
    MacIso9797Alg6 = "M8", "M8: ISO 9797-1:2011 MAC algorithm 6.";
    PinEncryption = "P0", "P0: PIN encryption key.";
    PinVerificationOther = "V0", "V0: PIN verification key (KPV), other algorithm.";
    PinVerificationIbm3624 = "V1", "V1: PIN verification key, IBM 3624.";
    PinVerificationVisaPvv = "V2", "V2: PIN verification key, Visa PVV.";
    PinVerificationX9132Alg1 = "V3", "V3: PIN verification key, X9.132 algorithm 1.";
    PinVerificationX9132Alg2 = "V4", "V4: PIN verification key, X9.132 algorithm 2.";
}

impl KeyUsage {
    /// The modes of use that make sense for this usage (X9.143 table 2, plus `N` for
    /// PIN verification keys, which several HSMs issue), or `None` for a proprietary or
    /// unlisted code whose rules cofre cannot know.
    pub fn allowed_modes(&self) -> Option<&'static [ModeOfUse]> {
        use KeyUsage as U;
        use ModeOfUse as M;
        Some(match self {
            U::Bdk | U::DukptInitialKey => &[M::Derive],
            U::BaseKeyVariant => &[M::Derive, M::Variant],
            U::Cvk => &[M::GenerateVerify, M::Generate, M::Verify],
            U::DataEncryption
            | U::AsymmetricDataEncryption
            | U::DecimalizationTable
            | U::Kek
            | U::Kbpk
            | U::PinEncryption => &[M::Both, M::Decrypt, M::Encrypt],
            U::EmvApplicationCryptogram
            | U::EmvSmConfidentiality
            | U::EmvSmIntegrity
            | U::EmvDataAuthentication
            | U::EmvDynamicNumbers
            | U::EmvCardPersonalization
            | U::EmvOther => &[M::Derive],
            U::Iv => &[M::NoRestriction],
            U::MacIso16609
            | U::MacIso9797Alg1
            | U::MacIso9797Alg2
            | U::MacIso9797Alg3
            | U::MacIso9797Alg4
            | U::MacIso9797Alg5
            | U::MacCmac
            | U::MacHmac
            | U::MacIso9797Alg6 => &[M::GenerateVerify, M::Generate, M::Verify],
            U::PinVerificationOther
            | U::PinVerificationIbm3624
            | U::PinVerificationVisaPvv
            | U::PinVerificationX9132Alg1
            | U::PinVerificationX9132Alg2 => {
                &[M::GenerateVerify, M::Generate, M::Verify, M::NoRestriction]
            }
            U::Other(_) => return None,
        })
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for KeyUsage {
    type Err = Tr31Error;
    fn from_str(s: &str) -> Result<Self, Tr31Error> {
        let b: [u8; 2] = s
            .as_bytes()
            .try_into()
            .map_err(|_| Tr31Error::Field("key usage"))?;
        Self::from_bytes(b)
    }
}

/// Declares a closed one-character field: every code has a variant, anything else is
/// refused with `Tr31Error::Field($field)`.
macro_rules! char_field {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident = $code:literal, $doc:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = $doc] $variant,)*
        }

        impl $name {
            /// The one-character code.
            pub fn code(self) -> char {
                match self {
                    $($name::$variant => $code,)*
                }
            }

            pub(super) fn from_byte(b: u8) -> Result<Self, Tr31Error> {
                match char::from(b) {
                    $($code => Ok($name::$variant),)*
                    _ => Err(Tr31Error::Field($field)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.code())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Tr31Error;
            fn from_str(s: &str) -> Result<Self, Tr31Error> {
                match s.as_bytes() {
                    [b] => Self::from_byte(*b),
                    _ => Err(Tr31Error::Field($field)),
                }
            }
        }
    };
}

char_field! {
    /// The algorithm the wrapped key is for (X9.143 table 3).
    KeyAlgorithm, "algorithm" {
        Aes = 'A', "A: AES.";
        Des = 'D', "D: single DES (legacy).";
        Ec = 'E', "E: elliptic curve.";
        Hmac = 'H', "H: HMAC.";
        Rsa = 'R', "R: RSA.";
        Dsa = 'S', "S: DSA.";
        Tdes = 'T', "T: triple DES.";
    }
}

char_field! {
    /// What the wrapped key may do (X9.143 table 4).
    ModeOfUse, "mode of use" {
        Both = 'B', "B: encrypt and decrypt / wrap and unwrap.";
        GenerateVerify = 'C', "C: generate and verify.";
        Decrypt = 'D', "D: decrypt / unwrap only.";
        Encrypt = 'E', "E: encrypt / wrap only.";
        Generate = 'G', "G: generate only.";
        NoRestriction = 'N', "N: no restriction beyond those of the key usage.";
        Sign = 'S', "S: signature only.";
        SignDecrypt = 'T', "T: sign and decrypt.";
        Verify = 'V', "V: verify only.";
        Derive = 'X', "X: derive other keys.";
        Variant = 'Y', "Y: create key variants.";
    }
}

char_field! {
    /// Whether the wrapped key may leave the receiving cryptographic domain (X9.143 table 6).
    Exportability, "exportability" {
        Exportable = 'E', "E: exportable under a trusted key.";
        NonExportable = 'N', "N: not exportable.";
        Sensitive = 'S', "S: sensitive, exportable under an untrusted key.";
    }
}

/// Two alphanumeric characters: `00` for no versioning, `c?` for a key component,
/// anything else a version number of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyVersion([u8; 2]);

impl KeyVersion {
    /// Key versioning not used.
    pub const NONE: KeyVersion = KeyVersion(*b"00");

    /// Parses two alphanumeric characters.
    pub fn new(s: &str) -> Result<Self, Tr31Error> {
        let b: [u8; 2] = s
            .as_bytes()
            .try_into()
            .map_err(|_| Tr31Error::Field("key version number"))?;
        Self::from_bytes(b)
    }

    pub(super) fn from_bytes(b: [u8; 2]) -> Result<Self, Tr31Error> {
        if b.iter().all(u8::is_ascii_alphanumeric) {
            Ok(Self(b))
        } else {
            Err(Tr31Error::Field("key version number"))
        }
    }

    /// True when the block carries a key component rather than a whole key.
    pub fn is_component(&self) -> bool {
        self.0[0] == b'c'
    }

    /// The two characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last two header characters: reserved (`00`) in TR-31:2018; X9.143-2022 uses the
/// first as key context. Kept as two alphanumeric characters and written back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyContext([u8; 2]);

impl KeyContext {
    /// `00`: no context given (the TR-31:2018 reserved value).
    pub const ZERO: KeyContext = KeyContext(*b"00");

    /// Parses two alphanumeric characters.
    pub fn new(s: &str) -> Result<Self, Tr31Error> {
        let b: [u8; 2] = s
            .as_bytes()
            .try_into()
            .map_err(|_| Tr31Error::Field("key context"))?;
        Self::from_bytes(b)
    }

    pub(super) fn from_bytes(b: [u8; 2]) -> Result<Self, Tr31Error> {
        if b.iter().all(u8::is_ascii_alphanumeric) {
            Ok(Self(b))
        } else {
            Err(Tr31Error::Field("key context"))
        }
    }

    /// The two characters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for KeyContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
