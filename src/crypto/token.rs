//! PAN tokens (specified byte for byte in protocol/README.md, "PAN tokens").
//!
//! A token keeps the PAN's length, its first `lead` digits and its last 4; the `middle`
//! digits between them are enciphered with FF1 (NIST SP 800-38G), tweak = the ASCII of
//! the kept leading digits followed by the last 4, so equal middles under different
//! BINs or last digits give unrelated tokens. Tokens are deterministic for a given key
//! (version): the same PAN always gives the same token. `lead` is 6 (the BIN) whenever
//! the middle then has the length FF1 needs for its 10^6 minimum domain (SP 800-38G
//! Rev. 1), and fewer otherwise, so that 12- to 15-digit PANs (Amex is 15) tokenise too
//! without changing the token of any PAN that tokenised before ([`kept_lead`]).
//!
//! * **Numeric** (radix 10): `lead` = 6 for 16-19 digits, `length - 10` for 12-15 (the
//!   middle always has at least 6 digits). A numeric token is never Luhn-valid, so it can
//!   never be mistaken for a card number:
//!   1. the PAN must be Luhn-valid;
//!   2. the last middle digit is incremented mod 10 ("bump"): any single-digit change
//!      breaks the Luhn check, so the bumped string is in N, the set of non-Luhn-valid
//!      strings with this frame;
//!   3. FF1 is applied to the middle digits, repeatedly, until the result is in N again
//!      (cycle walking, which makes FF1 a permutation of N; on average 1.1 calls).
//!
//!   Detokenising walks back with FF1⁻¹ and un-bumps; the result must be Luhn-valid, so a
//!   string that is not a token under this key is refused 9 times in 10.
//! * **Alphanumeric** (radix 36, numerals `0-9` then `a-z`, written in lower case, read
//!   in either case): `lead` = 6 for 14-19 digits, `length - 8` for 12-13 (the middle
//!   always has at least 4 characters: 36^4 > 10^6). The first middle digit `d` is mapped
//!   to the letter numeral `10 + d` and FF1 is cycle-walked until the middle has a
//!   letter: the token always contains a letter, so it is never a PAN. Any PAN qualifies.
//! * **Lookup** token: HMAC-SHA256 under a separate key over `"cofre/lookup/v1:" || PAN`,
//!   64 lower-case hex characters; irreversible, for indexing records by card.

use aes::{Aes128, Aes192, Aes256};
use fpe::ff1::{FF1, FlexibleNumeralString};

use super::mac::hmac_sha256;
use super::pan::{Pan, luhn_valid};
use super::{ClearKey, Error};

/// Which token alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// Decimal digits, never Luhn-valid.
    Numeric,
    /// `0-9a-z`, always with at least one letter.
    Alphanumeric,
}

impl Alphabet {
    fn radix(self) -> u32 {
        match self {
            Alphabet::Numeric => 10,
            Alphabet::Alphanumeric => 36,
        }
    }
}

/// Bound on cycle-walking steps. The expected count is ~1.1; hitting this bound would need
/// a cycle of FF1 made almost only of unwanted strings, which for these domain sizes does
/// not happen, but the loop must be bounded all the same.
const MAX_WALK: usize = 10_000;

enum Ff1Cipher {
    A128(FF1<Aes128>),
    A192(FF1<Aes192>),
    A256(FF1<Aes256>),
}

/// An FF1 token key with its AES schedules for both alphabets expanded once.
pub struct TokenKey {
    decimal: Ff1Cipher,
    alnum: Ff1Cipher,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([REDACTED])")
    }
}

impl Ff1Cipher {
    fn new(key: &[u8], radix: u32) -> Result<Self, Error> {
        let bad_radix = |_| Error::Parameter("FF1 radix");
        // fpe panics on a wrong key length, so the length is matched first.
        Ok(match key.len() {
            16 => Ff1Cipher::A128(FF1::new(key, radix).map_err(bad_radix)?),
            24 => Ff1Cipher::A192(FF1::new(key, radix).map_err(bad_radix)?),
            32 => Ff1Cipher::A256(FF1::new(key, radix).map_err(bad_radix)?),
            got => return Err(Error::KeyLength { got }),
        })
    }

    fn run(&self, encrypt: bool, tweak: &[u8], numerals: Vec<u16>) -> Result<Vec<u16>, Error> {
        let ns = FlexibleNumeralString::from(numerals);
        let bad = |_| Error::Token("numeral string outside the FF1 domain");
        let out = match (self, encrypt) {
            (Ff1Cipher::A128(c), true) => c.encrypt(tweak, &ns),
            (Ff1Cipher::A128(c), false) => c.decrypt(tweak, &ns),
            (Ff1Cipher::A192(c), true) => c.encrypt(tweak, &ns),
            (Ff1Cipher::A192(c), false) => c.decrypt(tweak, &ns),
            (Ff1Cipher::A256(c), true) => c.encrypt(tweak, &ns),
            (Ff1Cipher::A256(c), false) => c.decrypt(tweak, &ns),
        }
        .map_err(bad)?;
        Ok(out.into())
    }
}

/// FF1 encryption of a numeral string (each numeral < radix), exposed for the NIST
/// known-answer tests and the calculator.
pub fn ff1_encrypt(
    key: &ClearKey,
    radix: u32,
    tweak: &[u8],
    numerals: &[u16],
) -> Result<Vec<u16>, Error> {
    Ff1Cipher::new(key.expose_secret(), radix)?.run(true, tweak, numerals.to_vec())
}

/// FF1 decryption of a numeral string.
pub fn ff1_decrypt(
    key: &ClearKey,
    radix: u32,
    tweak: &[u8],
    numerals: &[u16],
) -> Result<Vec<u16>, Error> {
    Ff1Cipher::new(key.expose_secret(), radix)?.run(false, tweak, numerals.to_vec())
}

fn numeral_char(n: u16) -> char {
    char::from_digit(u32::from(n), 36).unwrap_or('?')
}

fn char_numeral(c: u8, radix: u32) -> Option<u16> {
    char::from(c).to_digit(radix).map(|v| v as u16)
}

/// The leading PAN digits a token of `len` digits keeps in clear: the BIN (6) when the
/// enciphered middle is then long enough for FF1's 10^6 minimum domain, fewer for the
/// shortest PANs. Tokens of the lengths that kept 6 before (numeric 16-19, alphanumeric
/// 14-19) are unchanged. `None` outside 12-19.
pub fn kept_lead(len: usize, alphabet: Alphabet) -> Option<usize> {
    if !(12..=19).contains(&len) {
        return None;
    }
    // The shortest middle whose domain reaches 10^6: 6 decimal digits, 4 of radix 36.
    let min_middle = match alphabet {
        Alphabet::Numeric => 6,
        Alphabet::Alphanumeric => 4,
    };
    Some((len - 4 - min_middle).min(6))
}

/// lead || middle || last4 as ASCII bytes, for the Luhn test during cycle walking.
fn frame(lead: &str, middle: &[u16], last4: &str) -> Vec<u8> {
    let mut s = Vec::with_capacity(lead.len() + middle.len() + 4);
    s.extend_from_slice(lead.as_bytes());
    s.extend(middle.iter().map(|&n| numeral_char(n) as u8));
    s.extend_from_slice(last4.as_bytes());
    s
}

impl TokenKey {
    /// From an AES-128/192/256 key.
    pub fn new(key: &ClearKey) -> Result<Self, Error> {
        Ok(Self {
            decimal: Ff1Cipher::new(key.expose_secret(), 10)?,
            alnum: Ff1Cipher::new(key.expose_secret(), 36)?,
        })
    }

    fn cipher(&self, alphabet: Alphabet) -> &Ff1Cipher {
        match alphabet {
            Alphabet::Numeric => &self.decimal,
            Alphabet::Alphanumeric => &self.alnum,
        }
    }

    /// Tokenises a PAN (see the module documentation for the construction and limits).
    pub fn tokenise(&self, pan: &Pan, alphabet: Alphabet) -> Result<String, Error> {
        let digits = pan.digits();
        let lead_len = kept_lead(pan.len(), alphabet).ok_or(Error::PanFormat)?;
        let (lead, last4) = (&digits[..lead_len], pan.last4());
        let tweak = frame(lead, &[], last4);
        let mut middle: Vec<u16> = pan
            .digit_values()
            .skip(lead_len)
            .take(pan.len() - lead_len - 4)
            .map(u16::from)
            .collect();
        let in_target: fn(&str, &[u16], &str) -> bool = match alphabet {
            Alphabet::Numeric => {
                if !pan.is_luhn_valid() {
                    return Err(Error::PanLuhn);
                }
                if let Some(last) = middle.last_mut() {
                    *last = (*last + 1) % 10;
                }
                |l, m, t| !luhn_valid(&frame(l, m, t))
            }
            Alphabet::Alphanumeric => {
                if let Some(first) = middle.first_mut() {
                    *first += 10;
                }
                |_, m, _| m.iter().any(|&n| n >= 10)
            }
        };
        let cipher = self.cipher(alphabet);
        for _ in 0..MAX_WALK {
            middle = cipher.run(true, &tweak, middle)?;
            if in_target(lead, &middle, last4) {
                return Ok(String::from_utf8_lossy(&frame(lead, &middle, last4)).into_owned());
            }
        }
        Err(Error::Token("cycle walk did not terminate"))
    }

    /// Recovers the PAN from a token made by [`TokenKey::tokenise`] with this key.
    /// Letters are read in either case; anything else that is not a token under this
    /// key (wrong length, characters, frame, or a walk back that does not end on a
    /// valid PAN) is an error.
    pub fn detokenise(&self, token: &str, alphabet: Alphabet) -> Result<Pan, Error> {
        if !token.is_ascii() {
            return Err(Error::Token("character outside the token alphabet"));
        }
        let t = token.to_ascii_lowercase();
        let len = t.len();
        let lead_len = kept_lead(len, alphabet).ok_or(Error::Token("token length out of range"))?;
        let (lead, rest) = t.split_at(lead_len);
        let (mid, last4) = rest.split_at(len - lead_len - 4);
        if !lead
            .bytes()
            .chain(last4.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(Error::Token(
                "token must keep the leading and last 4 digits",
            ));
        }
        let radix = alphabet.radix();
        let mut middle: Vec<u16> = mid
            .bytes()
            .map(|c| char_numeral(c, radix))
            .collect::<Option<_>>()
            .ok_or(Error::Token("character outside the token alphabet"))?;
        let tweak = frame(lead, &[], last4);
        let in_target = |m: &[u16]| match alphabet {
            Alphabet::Numeric => !luhn_valid(&frame(lead, m, last4)),
            Alphabet::Alphanumeric => m.iter().any(|&n| n >= 10),
        };
        if !in_target(&middle) {
            return Err(Error::Token("not a token under this key"));
        }
        let cipher = self.cipher(alphabet);
        let mut walked = false;
        for _ in 0..MAX_WALK {
            middle = cipher.run(false, &tweak, middle)?;
            if in_target(&middle) {
                walked = true;
                break;
            }
        }
        if !walked {
            return Err(Error::Token("cycle walk did not terminate"));
        }
        match alphabet {
            Alphabet::Numeric => {
                if let Some(last) = middle.last_mut() {
                    *last = (*last + 9) % 10;
                }
            }
            Alphabet::Alphanumeric => match middle.split_first_mut() {
                Some((first, others))
                    if (10..20).contains(first) && others.iter().all(|&n| n < 10) =>
                {
                    *first -= 10
                }
                _ => return Err(Error::Token("not a token under this key")),
            },
        }
        let digits = String::from_utf8_lossy(&frame(lead, &middle, last4)).into_owned();
        let pan = Pan::new(&digits).map_err(|_| Error::Token("not a token under this key"))?;
        if alphabet == Alphabet::Numeric && !pan.is_luhn_valid() {
            return Err(Error::Token("not a token under this key"));
        }
        Ok(pan)
    }
}

/// The irreversible lookup token: lower-case hex of HMAC-SHA256(key, "cofre/lookup/v1:" || PAN).
pub fn lookup_token(key: &ClearKey, pan: &Pan) -> String {
    let mut data = Vec::with_capacity(16 + pan.len());
    data.extend_from_slice(b"cofre/lookup/v1:");
    data.extend_from_slice(pan.digits().as_bytes());
    hex::encode(hmac_sha256(key.expose_secret(), &data))
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
