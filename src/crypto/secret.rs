//! Secret value types: they zeroize on drop, print as `[REDACTED]` and are read only
//! through `expose_secret`.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Error;

/// Clear key material (TDES 16/24 bytes, AES 16/24/32 bytes, HMAC keys of any length).
///
/// There is deliberately no `Display`, no `Serialize`, and a `Debug` that prints only the
/// length. Turning a key into something public (a KCV) is [`crate::crypto::kcv`]'s job.
#[derive(Clone)]
pub struct ClearKey(Zeroizing<Vec<u8>>);

impl ClearKey {
    /// Wraps raw bytes. The caller's copy is its own to zeroize.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > 64 {
            return Err(Error::KeyLength { got: bytes.len() });
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// Wraps a fixed-size array (derived keys, generated keys): the length is known at
    /// compile time, so this cannot fail.
    pub fn from_array<const N: usize>(bytes: &[u8; N]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// Parses hex (either case). The error never echoes the input.
    pub fn from_hex(hex_text: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(hex::decode(hex_text.trim()).map_err(|_| Error::Hex("key"))?);
        Self::from_bytes(&bytes)
    }

    /// The clear bytes. Every call site is a place where a secret is used.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (public information: it names the algorithm variant).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a constructed key; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClearKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClearKey([REDACTED]; {} bytes)", self.0.len())
    }
}

/// A clear PIN: 4 to 12 decimal digits (ISO 9564-1), stored as ASCII digits.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Shortest PIN ISO 9564-1 allows.
    pub const MIN_LEN: usize = 4;
    /// Longest PIN ISO 9564-1 allows.
    pub const MAX_LEN: usize = 12;

    /// Parses a PIN of 4..=12 ASCII digits. The error never echoes the input.
    pub fn new(digits: &str) -> Result<Self, Error> {
        let len = digits.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(Error::PinLength { got: len });
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::PinNotDecimal);
        }
        Ok(Self(Zeroizing::new(digits.to_owned())))
    }

    /// Builds a PIN from digit values 0..=9 (used by decoders and generators).
    pub(crate) fn from_digit_values(values: &[u8]) -> Result<Self, Error> {
        let mut text = Zeroizing::new(String::with_capacity(values.len()));
        for &v in values {
            if v > 9 {
                return Err(Error::PinNotDecimal);
            }
            text.push(char::from(b'0' + v));
        }
        Self::new(&text)
    }

    /// The PIN digits as ASCII.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a constructed PIN.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality of two PINs (length is not secret-dependent beyond 4..=12).
    pub fn ct_eq(&self, other: &Pin) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([REDACTED])")
    }
}

/// Constant-time compare of two byte strings: every verify (PIN, PVV, CVV, MAC, token)
/// goes through here. Lengths are compared in the open; they are public in every use.
#[inline(never)]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_material() {
        let key = ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.to_ascii_uppercase().contains("0123456789ABCDEF"));
        assert!(shown.contains("REDACTED"));
        let pin = Pin::new("4524").unwrap();
        assert_eq!(format!("{pin:?}"), "Pin([REDACTED])");
        assert_eq!(format!("{key:?}"), "ClearKey([REDACTED]; 16 bytes)");
    }

    #[test]
    fn pin_rules() {
        assert!(Pin::new("123").is_err());
        assert!(Pin::new("1234567890123").is_err());
        assert!(Pin::new("12a4").is_err());
        assert_eq!(Pin::new("123456789012").unwrap().len(), 12);
        assert!(!Pin::new("1234").unwrap().is_empty());
        assert!(Pin::new("1234").unwrap().ct_eq(&Pin::new("1234").unwrap()));
        assert!(!Pin::new("1234").unwrap().ct_eq(&Pin::new("1235").unwrap()));
    }

    #[test]
    fn key_errors_do_not_echo_input() {
        let err = ClearKey::from_hex("ZZ23456789ABCDEF")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("ZZ23"));
        assert!(ClearKey::from_bytes(&[]).is_err());
        // 1 to 64 bytes (the longest HMAC key a key block carries here).
        let longest = ClearKey::from_bytes(&[7; 64]).unwrap();
        assert_eq!((longest.len(), longest.is_empty()), (64, false));
        assert_eq!(
            ClearKey::from_bytes(&[7; 65]).unwrap_err(),
            Error::KeyLength { got: 65 }
        );
    }
}
