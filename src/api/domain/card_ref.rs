//! How a client names a card at the processor's paths: a PAN token (the card's own
//! numeric FF1 token, bare or zero-padded on the left to 19 characters, or the
//! processor's alphanumeric PAN token of up to 32 characters) or a clear PAN (12-19
//! digits whose Luhn check digit matches; cofre's numeric tokens never pass Luhn, so the
//! two cannot be confused). Anything else names no card: parsing refuses it with
//! `card_not_found`, the answer a client gets for a card that does not exist.

use std::fmt;

use super::Invalid;
use crate::crypto::pan::luhn_valid;

/// A card reference as a client sent it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CardRef {
    /// A clear PAN (digits, Luhn-valid): found through its lookup token.
    Pan(String),
    /// A PAN token, as sent (padded or not).
    Token(String),
}

/// The longest reference the processor admits (its PAN tokens).
pub const MAX_CARD_REF: usize = 32;

impl CardRef {
    /// Parses a reference (surrounding spaces allowed): 1-32 letters and digits.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let t = text.trim();
        if t.is_empty() || t.len() > MAX_CARD_REF || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Invalid("no such card"));
        }
        let digits = t.bytes().all(|b| b.is_ascii_digit());
        if digits && (12..=19).contains(&t.len()) && luhn_valid(t.as_bytes()) {
            Ok(CardRef::Pan(t.to_owned()))
        } else {
            Ok(CardRef::Token(t.to_owned()))
        }
    }

    /// The spellings a stored token may have: the text as sent and, for a zero-padded
    /// numeric form, the same token with fewer leading zeros (tokens are stored as the
    /// daemon made them, 12-19 characters). Shortest first. Empty for a clear PAN.
    pub fn token_spellings(&self) -> Vec<String> {
        let CardRef::Token(t) = self else {
            return Vec::new();
        };
        let stripped = t.trim_start_matches('0');
        let mut out: Vec<String> = (12..=19)
            .filter(|len| stripped.len() <= *len && t.len() > *len)
            .map(|len| format!("{stripped:0>len$}"))
            .collect();
        out.push(t.clone());
        out
    }
}

// A clear PAN is cardholder data: Debug shows the kind and the last four only.
impl fmt::Debug for CardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, text) = match self {
            CardRef::Pan(p) => ("Pan", p),
            CardRef::Token(t) => ("Token", t),
        };
        let last = text.get(text.len().saturating_sub(4)..).unwrap_or("");
        write!(f, "CardRef::{kind}(..{last})")
    }
}

/// A reference is written back (into a stored request body) as sent, except a clear PAN,
/// which is written masked (first 6, last 4): no stored body holds a clear PAN.
impl serde::Serialize for CardRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CardRef::Token(t) => s.serialize_str(t),
            CardRef::Pan(p) => {
                let (head, tail) = (p.get(..6).unwrap_or(""), p.get(p.len() - 4..).unwrap_or(""));
                s.collect_str(&format_args!("{head}{}{tail}", "*".repeat(p.len() - 10)))
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for CardRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CardRef::parse(&text).map_err(|_| super::refuse("card_not_found", "no such card"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pans_tokens_and_refusals() {
        // 4111111111111111 and Amex 378282246310005 pass Luhn: clear PANs.
        assert!(matches!(
            CardRef::parse("4111111111111111"),
            Ok(CardRef::Pan(_))
        ));
        assert!(matches!(
            CardRef::parse("378282246310005"),
            Ok(CardRef::Pan(_))
        ));
        assert!(matches!(
            CardRef::parse("4222222222222"),
            Ok(CardRef::Pan(_))
        ));
        assert!(matches!(
            CardRef::parse("4111111111111112"),
            Ok(CardRef::Token(_))
        ));
        assert!(matches!(
            CardRef::parse("000540208ID5IXX3865"),
            Ok(CardRef::Token(_))
        ));
        for bad in ["", "   ", "41111111-1111111", "é", &"1".repeat(33)] {
            assert!(CardRef::parse(bad).is_err(), "{bad}");
        }
        let t = CardRef::parse("0004555551234567890").unwrap();
        assert_eq!(
            t.token_spellings(),
            [
                "4555551234567890",
                "04555551234567890",
                "004555551234567890",
                "0004555551234567890"
            ]
        );
        let dbg = format!("{:?}", CardRef::parse("4111111111111111").unwrap());
        assert_eq!(dbg, "CardRef::Pan(..1111)");
        let pan = CardRef::parse("4222222222222").unwrap();
        assert_eq!(serde_json::to_string(&pan).unwrap(), "\"422222***2222\"");
    }
}
