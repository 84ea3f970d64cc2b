//! The weak-PIN policy (`[pin_policy]` in hsm.toml): the PINs a cardholder may not
//! choose with `pin.change`, and that `pin.generate` never draws. A pure function of the
//! PIN, the configuration and what the caller passes; the daemon alone sees the clear
//! PIN, so the daemon alone can apply it.
//!
//! The rules, in the order they are tried (the first that matches names the refusal):
//! 1. `current`: the new PIN is the card's current PIN (`pin.change`).
//! 2. `repeated`: every digit the same (`0000`, `777777`).
//! 3. `sequence`: each digit one more than the one before, or each one less, counting
//!    round after 9 and before 0 (`1234`, `8901`, `4321`, `1098`, `567890`): a run is
//!    typed the same way on a keypad whether or not it crosses 0.
//! 4. `excluded`: one of the configured `excluded` PINs (an issuer's list of common
//!    choices, payShield's "excluded PIN table").
//! 5. `caller_digits`: equal to one of the digit strings the caller passes in
//!    `weak_digits` (the holder's birth date as DDMM, MMDD, YYYY, DDMMYY, ...).
//!
//! Equality is exact: `1987` is weak against the entry `1987`, `198700` is not.

use std::collections::HashSet;

/// Most entries `weak_digits` may carry (the usual date forms of one or two dates).
pub const MAX_CALLER_ENTRIES: usize = 8;
/// Most PINs the `excluded` list may hold: with every other rule, at most about a tenth
/// of the 4-digit PINs are refused, so a random draw rarely needs a second try.
pub const MAX_EXCLUDED: usize = 1000;

/// Why a PIN is weak (the `reason` of a `weak_pin` answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// The card's current PIN.
    Current,
    /// All digits the same.
    Repeated,
    /// An ascending or descending run.
    Sequence,
    /// In the configured excluded list.
    Excluded,
    /// Equal to one of the caller's `weak_digits`.
    CallerDigits,
}

impl Weakness {
    /// The stable name (the answer's `reason`, the metric's label).
    pub fn name(self) -> &'static str {
        match self {
            Weakness::Current => "current",
            Weakness::Repeated => "repeated",
            Weakness::Sequence => "sequence",
            Weakness::Excluded => "excluded",
            Weakness::CallerDigits => "caller_digits",
        }
    }
}

/// The policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPolicy {
    /// Master switch; off, no PIN is weak.
    pub enabled: bool,
    /// Refuse the current PIN as the new one.
    pub current: bool,
    /// Refuse all-same digits.
    pub repeated: bool,
    /// Refuse ascending and descending runs (round after 9).
    pub sequences: bool,
    /// Refuse the caller's `weak_digits`.
    pub caller_digits: bool,
    /// Refuse these PINs (4 to 12 digits each).
    pub excluded: HashSet<String>,
}

impl Default for PinPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            current: true,
            repeated: true,
            sequences: true,
            caller_digits: true,
            excluded: HashSet::new(),
        }
    }
}

/// Whether every step between neighbours is `step` (mod 10).
fn steps_by(digits: &[u8], step: u8) -> bool {
    digits.windows(2).all(|w| (w[0] + step) % 10 == w[1])
}

/// The caller's `weak_digits`: entries of 4 to 12 digits separated by commas, at most
/// [`MAX_CALLER_ENTRIES`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallerDigits(Vec<String>);

impl std::fmt::Debug for CallerDigits {
    // Dates of birth are personal data: counted, never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallerDigits({} entries)", self.0.len())
    }
}

impl CallerDigits {
    /// Parses the field's text; the error never repeats it.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let entries: Vec<String> = text.split(',').map(str::to_owned).collect();
        if entries.len() > MAX_CALLER_ENTRIES {
            return Err("weak_digits holds at most 8 entries");
        }
        if entries
            .iter()
            .any(|e| !(4..=12).contains(&e.len()) || !e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("weak_digits entries are 4 to 12 digits, separated by commas");
        }
        Ok(Self(entries))
    }
}

impl PinPolicy {
    /// The first rule `pin` (ASCII digits) breaks, if any. `current` is the card's
    /// current PIN where there is one (`pin.change`).
    pub fn weakness(
        &self,
        pin: &str,
        current: Option<&str>,
        caller: &CallerDigits,
    ) -> Option<Weakness> {
        if !self.enabled {
            return None;
        }
        let digits: Vec<u8> = pin.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        if self.current && current == Some(pin) {
            return Some(Weakness::Current);
        }
        if self.repeated && steps_by(&digits, 0) {
            return Some(Weakness::Repeated);
        }
        if self.sequences && (steps_by(&digits, 1) || steps_by(&digits, 9)) {
            return Some(Weakness::Sequence);
        }
        if self.excluded.contains(pin) {
            return Some(Weakness::Excluded);
        }
        if self.caller_digits && caller.0.iter().any(|e| e == pin) {
            return Some(Weakness::CallerDigits);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak(p: &PinPolicy, pin: &str) -> Option<&'static str> {
        p.weakness(pin, None, &CallerDigits::default())
            .map(Weakness::name)
    }

    #[test]
    fn the_rules_and_their_order() {
        let p = PinPolicy {
            excluded: ["1004", "2580"].into_iter().map(str::to_owned).collect(),
            ..PinPolicy::default()
        };
        for pin in ["0000", "1111", "999999", "777777777777"] {
            assert_eq!(weak(&p, pin), Some("repeated"), "{pin}");
        }
        for pin in [
            "1234",
            "0123",
            "6789",
            "7890",
            "8901",
            "9012",
            "4321",
            "3210",
            "1098",
            "0987",
            "123456",
            "567890",
            "345678901234",
            "987654",
        ] {
            assert_eq!(weak(&p, pin), Some("sequence"), "{pin}");
        }
        assert_eq!(weak(&p, "2580"), Some("excluded"));
        for pin in [
            "1235", "1243", "2468", "1357", "9875", "0001", "1212", "12345670", "8902",
        ] {
            assert_eq!(weak(&p, pin), None, "{pin}");
        }
        let caller = CallerDigits::parse("1503,0315,1987,150387").unwrap();
        for pin in ["1503", "0315", "1987", "150387"] {
            assert_eq!(
                p.weakness(pin, None, &caller),
                Some(Weakness::CallerDigits),
                "{pin}"
            );
        }
        // Exact equality only.
        assert_eq!(p.weakness("198700", None, &caller), None);
        // The current PIN is named first, whatever else it is.
        assert_eq!(
            p.weakness("1234", Some("1234"), &caller),
            Some(Weakness::Current)
        );
        assert_eq!(
            p.weakness("5831", Some("5831"), &caller),
            Some(Weakness::Current)
        );
        assert_eq!(p.weakness("5831", Some("5832"), &caller), None);
    }

    #[test]
    fn each_rule_can_be_switched_off() {
        let caller = CallerDigits::parse("1503").unwrap();
        let off = PinPolicy {
            enabled: false,
            ..PinPolicy::default()
        };
        for pin in ["1111", "1234", "1503"] {
            assert_eq!(off.weakness(pin, Some(pin), &caller), None);
        }
        let p = PinPolicy {
            current: false,
            repeated: false,
            sequences: false,
            caller_digits: false,
            ..PinPolicy::default()
        };
        for pin in ["1111", "1234", "1503"] {
            assert_eq!(p.weakness(pin, Some(pin), &caller), None);
        }
    }

    #[test]
    fn caller_digits_are_parsed_strictly() {
        assert!(CallerDigits::parse("1503,0315").is_ok());
        assert!(CallerDigits::parse("123456789012").is_ok());
        for bad in [
            "",
            "150",
            "1503,",
            ",1503",
            "15a3",
            "1503 ,0315",
            "1234567890123",
            "1,2,3,4,5,6,7,8,9",
        ] {
            assert!(CallerDigits::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CallerDigits::parse("1111,2222,3333,4444,5555,6666,7777,8888").is_ok());
        assert!(CallerDigits::parse("1111,2222,3333,4444,5555,6666,7777,8888,9999").is_err());
        let shown = format!("{:?}", CallerDigits::parse("150387").unwrap());
        assert!(!shown.contains("150387"), "{shown}");
    }
}
