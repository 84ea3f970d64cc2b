//! Brazilian phone numbers and e-mail addresses, as the cardholder API accepts them.
//!
//! * **Area code (DDD).** One of the 67 codes of Anatel's national numbering plan
//!   (11-19, 21, 22, 24, 27, 28, 31-35, 37, 38, 41-49, 51, 53-55, 61-69, 71, 73-75, 77,
//!   79, 81-89, 91-99); `20`, `23`, `50`, ... name no area.
//! * **Mobile.** 9 digits starting with `9` (the ninth digit, nationwide since 2016).
//! * **Landline.** 8 digits starting with `2`-`5` (fixed-line prefixes of the plan).
//! * **E-mail.** At most 254 characters; one `@`; a local part of 1-64 characters of
//!   letters, digits and ``!#$%&'*+/=?^_`{|}~.-`` (no leading, trailing or doubled dot);
//!   a domain of at least two labels of letters, digits and inner hyphens, each 1-63
//!   characters, the last one letters only (2 or more). Stored in lower case.

use super::Invalid;

/// The 67 area codes of the national numbering plan.
pub const DDDS: [u8; 67] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 51, 53, 54, 55, 61, 62, 63, 64, 65, 66, 67, 68, 69, 71, 73, 74, 75, 77,
    79, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99,
];

/// What a phone number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A mobile (9 digits, starting with 9): may receive SMS.
    Mobile,
    /// A landline (8 digits, starting with 2-5).
    Landline,
}

/// A Brazilian phone number: area code and subscriber number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    area: u8,
    number: String,
}

impl PhoneNumber {
    /// Checks the area code (2 digits, a DDD of the plan).
    pub fn parse_area(area: &str) -> Result<u8, Invalid> {
        let bad = Invalid("the area code is one of the 67 DDDs of the numbering plan");
        if area.len() != 2 || !area.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        let n: u8 = area.parse().map_err(|_| bad.clone())?;
        DDDS.contains(&n).then_some(n).ok_or(bad)
    }

    /// Checks the subscriber number alone: a mobile or a landline.
    pub fn line_of(number: &str) -> Result<Line, Invalid> {
        let b = number.as_bytes();
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(Invalid("a phone number is digits only"));
        }
        match (b.len(), b.first()) {
            (9, Some(b'9')) => Ok(Line::Mobile),
            (8, Some(b'2'..=b'5')) => Ok(Line::Landline),
            _ => Err(Invalid(
                "a mobile is 9 digits starting with 9, a landline 8 digits starting with 2 to 5",
            )),
        }
    }

    /// Parses an area code and a number.
    pub fn parse(area: &str, number: &str) -> Result<Self, Invalid> {
        let area = Self::parse_area(area)?;
        Self::line_of(number)?;
        Ok(Self {
            area,
            number: number.to_owned(),
        })
    }

    /// Mobile or landline.
    pub fn line(&self) -> Line {
        if self.number.len() == 9 {
            Line::Mobile
        } else {
            Line::Landline
        }
    }

    /// The area code, 2 digits.
    pub fn area(&self) -> String {
        self.area.to_string()
    }

    /// The subscriber number.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// E.164 (`+5583999990000`).
    pub fn e164(&self) -> String {
        format!("+55{}{}", self.area, self.number)
    }
}

/// An e-mail address, checked and in lower case (see the module documentation).
pub fn email(text: &str) -> Result<String, Invalid> {
    let bad = Invalid("an e-mail is local@domain.tld");
    let t = text.trim();
    if t.is_empty() || t.len() > 254 || !t.is_ascii() {
        return Err(bad);
    }
    let (local, domain) = t.rsplit_once('@').ok_or(bad.clone())?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()));
    if local_ok && domain_ok {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(DDDS.len(), 67);
        let m = PhoneNumber::parse("83", "999990000").unwrap();
        assert_eq!(m.line(), Line::Mobile);
        assert_eq!(m.e164(), "+5583999990000");
        assert_eq!(
            PhoneNumber::parse("11", "32221111").unwrap().line(),
            Line::Landline
        );
        for (area, number) in [
            ("20", "999990000"),
            ("23", "999990000"),
            ("1", "999990000"),
            ("011", "999990000"),
            ("83", "99999000"),
            ("83", "899990000"),
            ("83", "00000000"),
            ("83", "62221111"),
            ("83", "9999900000"),
            ("83", "9999-0000"),
            ("8a", "999990000"),
        ] {
            assert!(PhoneNumber::parse(area, number).is_err(), "{area} {number}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            email(" Joao.Silva@Email.com ").unwrap(),
            "joao.silva@email.com"
        );
        assert!(email("exemplo@exemplo.com").is_ok());
        assert!(email("a+b@sub.dominio.com.br").is_ok());
        for bad in [
            "",
            "joao",
            "joao@",
            "@x.com",
            "joao@x",
            "joao@x.c",
            "jo..ao@x.com",
            ".joao@x.com",
            "joao@-x.com",
            "joão@x.com",
            "jo ao@x.com",
            "joao@x.com1",
            "a@b@c.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@x.com", "a".repeat(65))).is_err());
    }
}
