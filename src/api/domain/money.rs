//! Exact money in centavos (minor units). Parsed from the number's own text, never
//! through a float: more than two decimals is refused, not rounded.

use std::fmt;

use serde_json::Value;

use super::Invalid;

/// An amount in minor units (centavos, cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// The largest amount cofre keeps: 100,000,000,000.00 (10^13 minor units).
    pub const MAX: Money = Money(10_000_000_000_000);
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From minor units.
    pub fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    /// Minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// Parses decimal text: optional `-`, 1-13 integer digits, optional `.` and 1-2
    /// decimal digits.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let bad = Invalid("an amount has at most 13 digits and 2 decimals");
        let (neg, t) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) if !f.is_empty() => (i, f),
            Some(_) => return Err(bad),
            None => (t, ""),
        };
        if int.is_empty()
            || int.len() > 13
            || frac.len() > 2
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad);
        }
        let whole: i64 = int.parse().map_err(|_| bad.clone())?;
        let cents: i64 = format!("{frac:0<2}").parse().map_err(|_| bad.clone())?;
        let minor = whole * 100 + cents;
        Ok(Self(if neg { -minor } else { minor }))
    }

    /// A JSON number or numeric string. A JSON number is read from its text as serde
    /// gives it (`0.001` stays `0.001` and is refused).
    pub fn from_json(v: &Value) -> Result<Self, Invalid> {
        match v {
            Value::Number(n) => {
                let text = n.to_string();
                // serde writes whole floats as `12.0`.
                Self::parse(text.strip_suffix(".0").unwrap_or(&text))
            }
            Value::String(s) => Self::parse(s.trim()),
            _ => Err(Invalid("an amount is a number")),
        }
    }

    /// An amount from 0 to [`Money::MAX`] (limits, balances).
    pub fn limit_from_json(v: &Value) -> Result<Self, Invalid> {
        let m = Self::from_json(v)?;
        if m < Money::ZERO || m > Money::MAX {
            return Err(Invalid("an amount from 0 to 100000000000.00"));
        }
        Ok(m)
    }

    /// As an exact decimal JSON number (`2000.5` for 200050 minor units).
    pub fn to_json(self) -> Value {
        serde_json::from_str(&self.to_string()).unwrap_or(Value::Null)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_or_refused() {
        assert_eq!(Money::from_json(&json!(2100)), Ok(Money(210_000)));
        assert_eq!(Money::from_json(&json!(150.5)), Ok(Money(15_050)));
        assert_eq!(Money::from_json(&json!(5000.0)), Ok(Money(500_000)));
        assert_eq!(Money::from_json(&json!("0.07")), Ok(Money(7)));
        assert!(Money::from_json(&json!(0.001)).is_err());
        assert!(Money::from_json(&json!(1234.567)).is_err());
        assert!(Money::from_json(&json!("1e3")).is_err());
        assert!(Money::from_json(&json!("1.")).is_err());
        assert!(Money::from_json(&json!(true)).is_err());
        assert!(Money::limit_from_json(&json!(-1)).is_err());
        assert!(Money::limit_from_json(&json!(100000000000.01)).is_err());
        assert_eq!(
            Money::limit_from_json(&json!(100000000000.00)),
            Ok(Money::MAX)
        );
        assert_eq!(Money(15_050).to_json(), json!(150.5));
        assert_eq!(Money(-5).to_string(), "-0.05");
    }
}
