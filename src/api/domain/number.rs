//! The tenant that owns a record, and record numbers as clients see them.

use std::fmt;
use std::sync::Arc;

use super::Invalid;

/// The API tenant (issuer or store id) that owns a record. Every store call is scoped to
/// one; there is no wildcard: the empty tenant is refused.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// A tenant id: 1-64 printable ASCII characters.
    pub fn new(id: &str) -> Result<Self, Invalid> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid("a tenant is 1-64 printable ASCII characters"));
        }
        Ok(Self(Arc::from(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", self.0)
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer, account or mass-issue number: the record id, 1-19 digits, shown
/// zero-padded to 19 characters (the processor's `customerNumber`/`accountNumber`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordNumber(i64);

impl RecordNumber {
    /// A number from its id (non-negative).
    pub fn from_id(id: i64) -> Result<Self, Invalid> {
        if id < 0 {
            return Err(Invalid("a record number is not negative"));
        }
        Ok(Self(id))
    }

    /// Parses 1-19 digits (surrounding spaces allowed).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let t = text.trim();
        if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid("a record number is 1-19 digits"));
        }
        t.parse::<i64>()
            .map(Self)
            .map_err(|_| Invalid("a record number is at most 9223372036854775807"))
    }

    /// The id.
    pub fn id(self) -> i64 {
        self.0
    }

    /// Whether it is all zeros (the processor's "assign one for me").
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for RecordNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:019}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_and_numbers() {
        assert!(Tenant::new("").is_err());
        assert!(Tenant::new("loja 1").is_err());
        assert!(Tenant::new(&"x".repeat(65)).is_err());
        assert_eq!(Tenant::new("loja-1").unwrap().as_str(), "loja-1");
        assert_eq!(
            RecordNumber::parse(" 0042 ").unwrap().to_string(),
            "0000000000000000042"
        );
        assert!(RecordNumber::parse("").is_err());
        assert!(RecordNumber::parse("12a").is_err());
        assert!(RecordNumber::parse("99999999999999999999").is_err());
        assert!(RecordNumber::parse("9999999999999999999").is_err());
        assert!(
            RecordNumber::parse("0000000000000000000")
                .unwrap()
                .is_zero()
        );
        assert!(RecordNumber::from_id(-1).is_err());
    }
}
