//! Primary account numbers: parsing, the Luhn check (ISO/IEC 7812-1 Annex B), masking,
//! the PAN fields other algorithms take, and random PAN generation from a BIN.

use std::fmt;

use rand::{CryptoRng, RngExt};
use zeroize::Zeroizing;

use super::Error;

/// A PAN of 12 to 19 decimal digits. The Luhn digit is not required here because PIN
/// blocks and verification values are defined for any PAN; operations that need a real
/// card number (tokenisation, generation) check [`Pan::is_luhn_valid`] themselves.
///
/// A PAN is cardholder data under PCI DSS: `Debug` shows the masked form (first 6, last 4).
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(Zeroizing<String>);

impl Pan {
    /// Parses 12 to 19 ASCII digits. The error never echoes the input.
    pub fn new(digits: &str) -> Result<Self, Error> {
        let len = digits.len();
        if !(12..=19).contains(&len) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::PanFormat);
        }
        Ok(Self(Zeroizing::new(digits.to_owned())))
    }

    /// Parses and also requires a correct Luhn check digit.
    pub fn new_luhn_checked(digits: &str) -> Result<Self, Error> {
        let pan = Self::new(digits)?;
        if !pan.is_luhn_valid() {
            return Err(Error::PanLuhn);
        }
        Ok(pan)
    }

    /// The digits, ASCII.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// Digit values 0..=9.
    pub(crate) fn digit_values(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.bytes().map(|b| b - b'0')
    }

    /// Number of digits.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for a constructed PAN.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the last digit is the Luhn check digit of the others.
    pub fn is_luhn_valid(&self) -> bool {
        luhn_valid(self.0.as_bytes())
    }

    /// First 6 digits (the BIN / IIN as printed in most issuer documents).
    pub fn bin6(&self) -> &str {
        self.0.get(..6).unwrap_or_default()
    }

    /// Last 4 digits.
    pub fn last4(&self) -> &str {
        self.0.get(self.len() - 4..).unwrap_or_default()
    }

    /// The masked form shown on receipts and in logs: first 6, `*` for the middle, last 4.
    pub fn masked(&self) -> String {
        let mut out = String::with_capacity(self.len());
        out.push_str(self.bin6());
        out.extend(std::iter::repeat_n('*', self.len() - 10));
        out.push_str(self.last4());
        out
    }

    /// The 12 rightmost digits excluding the check digit as digit values, as ISO 9564
    /// formats 0 and 3 and the Visa PVV use them; a 12-digit PAN has only 11 such digits
    /// and is padded with a zero on the left (ISO 9564-1 9.3.1.3).
    pub fn rightmost12_excluding_check(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        let body = &self.0.as_bytes()[..self.len() - 1];
        let take = body.len().min(12);
        for (o, d) in out[12 - take..].iter_mut().zip(&body[body.len() - take..]) {
            *o = d - b'0';
        }
        out
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", self.masked())
    }
}

/// Luhn validity of an ASCII digit string (non-digits make it invalid).
pub fn luhn_valid(digits: &[u8]) -> bool {
    match digits.split_last() {
        Some((&check, body)) if check.is_ascii_digit() => {
            luhn_check_digit(body) == Some(check - b'0')
        }
        _ => false,
    }
}

/// The Luhn check digit to append to `body` (ASCII digits), or `None` on a non-digit.
pub fn luhn_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    // The rightmost body digit is doubled (it sits left of the check digit).
    for (i, &b) in body.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    Some(((10 - (sum % 10)) % 10) as u8)
}

/// Generates a random, Luhn-valid PAN of `length` digits (12 to 19, every length a
/// [`Pan`] admits) starting with `bin` (1 to 11 digits, as ISO/IEC 7812 IINs are 6 or 8
/// digits and some issuers extend them), with at least one random digit between the BIN
/// and the check digit. Uniqueness is the caller's job.
pub fn generate(bin: &str, length: usize, rng: &mut impl CryptoRng) -> Result<Pan, Error> {
    if !(12..=19).contains(&length) {
        return Err(Error::Parameter("PAN length must be 12 to 19"));
    }
    if bin.is_empty() || bin.len() > 11 || bin.len() + 2 > length {
        return Err(Error::Parameter(
            "BIN must be 1 to 11 digits, at least 2 shorter than the PAN",
        ));
    }
    if !bin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::NotDecimal("BIN"));
    }
    let mut body = Zeroizing::new(Vec::with_capacity(length));
    body.extend_from_slice(bin.as_bytes());
    while body.len() < length - 1 {
        body.push(b'0' + rng.random_range(0..10u8));
    }
    let check = luhn_check_digit(&body).ok_or(Error::NotDecimal("BIN"))?;
    body.push(b'0' + check);
    let text = Zeroizing::new(String::from_utf8_lossy(&body).into_owned());
    Pan::new(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    // The Luhn formula of ISO/IEC 7812-1 Annex B; the worked example 7992739871 -> check
    // digit 3 is the Wikipedia article "Luhn algorithm"'s (tests/vectors/published.md).
    #[test]
    fn luhn_iso7812_example() {
        assert_eq!(luhn_check_digit(b"7992739871"), Some(3));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
        assert!(luhn_valid(b"4111111111111111"));
        assert!(!luhn_valid(b""));
        assert!(!luhn_valid(b"41x1"));
        // A last character below '0' is refused, not subtracted into an underflow.
        assert!(!luhn_valid(b"799273987 "));
        assert!(!luhn_valid(b"4111111111111111/"));
    }

    #[test]
    fn parse_rules_and_views() {
        assert!(Pan::new("12345678901").is_err());
        assert!(Pan::new("12345678901234567890").is_err());
        assert!(Pan::new("41234567890123a5").is_err());
        let pan = Pan::new("4123456789012345").unwrap();
        assert!(!pan.is_empty());
        assert_eq!(pan.masked(), "412345******2345");
        assert_eq!(
            pan.rightmost12_excluding_check(),
            [3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
        );
        let short = Pan::new("123456789012").unwrap();
        assert_eq!(
            short.rightmost12_excluding_check(),
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
        );
        assert_eq!(short.masked(), "123456**9012");
        assert_eq!(format!("{pan:?}"), "Pan(412345******2345)");
        assert!(Pan::new_luhn_checked("4123456789012345").is_err());
        assert!(Pan::new_luhn_checked("4111111111111111").is_ok());
    }

    #[test]
    fn generated_pans_are_valid() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for len in 12..=19 {
            for _ in 0..50 {
                let pan = generate("400000", len, &mut rng).unwrap();
                assert_eq!(pan.len(), len);
                assert!(pan.digits().starts_with("400000"));
                assert!(pan.is_luhn_valid());
            }
        }
        assert!(generate("4000", 11, &mut rng).is_err());
        assert!(generate("4000", 20, &mut rng).is_err());
        // At least one random digit: an 11-digit BIN makes PANs of 13 digits and more.
        assert!(generate("40000012345", 12, &mut rng).is_err());
        assert!(generate("40000012345", 13, &mut rng).is_ok());
        assert!(generate("40a0", 16, &mut rng).is_err());
        assert!(generate("", 16, &mut rng).is_err());
        // A BIN of 11 digits is the longest accepted, and it must leave room for the body.
        let long_bin = generate("40000000001", 16, &mut rng).unwrap();
        assert!(long_bin.digits().starts_with("40000000001") && long_bin.is_luhn_valid());
        assert!(generate("400000000012", 16, &mut rng).is_err());
        assert!(generate("40000000001", 13, &mut rng).is_ok());
        assert!(generate("4000000000123", 13, &mut rng).is_err());
    }
}
