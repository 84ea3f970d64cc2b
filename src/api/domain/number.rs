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

impl serde::Serialize for RecordNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A record number as the processor sends it: a string of 1-19 digits (zero-padded or
/// not) or a non-negative integer.
impl<'de> serde::Deserialize<'de> for RecordNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => RecordNumber::parse(&s),
            serde_json::Value::Number(n) => n
                .as_i64()
                .ok_or(Invalid("a record number is 1-19 digits"))
                .and_then(RecordNumber::from_id),
            _ => Err(Invalid("a record number is 1-19 digits")),
        }
        .map_err(|e| super::refuse("invalid_number", e.0))
    }
}

/// A record number that may be left blank (absent, `null`, or an empty or all-space
/// string: "assign one for me", or "not given").
pub fn blank_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<RecordNumber>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(v) => RecordNumber::deserialize(v)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(e.to_string())),
    }
}

/// What a store method accepts as a record's id: a [`RecordNumber`] a client gave, or
/// the id of a row the store returned (valid by construction).
pub trait IntoRecordId {
    /// The id.
    fn record_id(self) -> i64;
}

impl IntoRecordId for RecordNumber {
    fn record_id(self) -> i64 {
        self.0
    }
}

impl IntoRecordId for i64 {
    fn record_id(self) -> i64 {
        self
    }
}

/// The processor's organization number (`organizationNumber`, `organization`): an
/// integer; whether it names a configured organization is the configuration's to say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Organization(pub i64);

impl<'de> serde::Deserialize<'de> for Organization {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.as_i64().map(Organization).ok_or_else(|| {
                super::refuse(
                    "unknown_organization",
                    "an organization number is an integer",
                )
            }),
            _ => Err(super::refuse(
                "unknown_organization",
                "an organization number is an integer",
            )),
        }
    }
}

impl fmt::Display for Organization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
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
        let n: RecordNumber = serde_json::from_str("\"0000000000000000042\"").unwrap();
        assert_eq!(n.id(), 42);
        let n: RecordNumber = serde_json::from_str("42").unwrap();
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            "\"0000000000000000042\""
        );
        let e = serde_json::from_str::<RecordNumber>("-1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("invalid_number: "), "{e}");
        assert!(serde_json::from_str::<RecordNumber>("\"4x\"").is_err());
        assert!(serde_json::from_str::<Organization>("\"800\"").is_err());
        assert_eq!(
            serde_json::from_str::<Organization>("-800").unwrap(),
            Organization(-800)
        );
    }
}
