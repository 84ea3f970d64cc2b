//! PAN tokens.
//!
//! * **Numeric** (FF1, NIST SP 800-38G, radix 10): the token keeps the PAN's length, its
//!   first 6 digits (BIN) and its last 4; the middle digits are enciphered. A numeric token
//!   is never Luhn-valid, so it can never be mistaken for a card number. Construction:
//!   1. the PAN must be Luhn-valid and at least 16 digits (the middle then has at least 6
//!      digits, the 10^6 minimum domain SP 800-38G Rev. 1 sets for FF1);
//!   2. the last middle digit is incremented mod 10 ("bump"): any single-digit change breaks
//!      the Luhn check, so the bumped string is in N, the set of non-Luhn-valid strings
//!      with this BIN and last 4;
//!   3. FF1 is applied to the middle digits, repeatedly, until the result is in N again
//!      (cycle walking, which makes FF1 a permutation of N; on average 1.1 calls).
//!
//!   Detokenising walks back with FF1⁻¹ and un-bumps; the result must be Luhn-valid, so a
//!   string that is not a token under this key is refused 9 times in 10.
//! * **Alphanumeric** (FF1, radix 36, lower-case `0-9a-z`): same frame (BIN and last 4
//!   kept, PAN at least 14 digits so the middle domain 36^m reaches 10^6), the first middle
//!   digit `d` is mapped to the letter `a+d` and FF1 is cycle-walked until the middle has a
//!   letter: the token always contains a letter, so it is never a PAN. Any PAN qualifies.
//! * **Lookup** token: HMAC-SHA256 under a separate key over `"cofre/lookup/v1:" || PAN`,
//!   64 lower-case hex characters; irreversible, for indexing records by card.
//!
//! In both FF1 forms the tweak is the ASCII of BIN || last 4, so equal middles under
//! different BINs or last digits give unrelated tokens. Tokens are deterministic for a
//! given key (version): the same PAN always gives the same token.

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

/// BIN || middle || last4 as ASCII bytes, for the Luhn test during cycle walking.
fn frame(bin: &str, middle: &[u16], last4: &str) -> Vec<u8> {
    let mut s = Vec::with_capacity(bin.len() + middle.len() + 4);
    s.extend_from_slice(bin.as_bytes());
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
        let (bin, last4) = (pan.bin6(), pan.last4());
        let tweak = frame(bin, &[], last4);
        let mut middle: Vec<u16> = pan
            .digit_values()
            .skip(6)
            .take(pan.len() - 10)
            .map(u16::from)
            .collect();
        let in_target: fn(&str, &[u16], &str) -> bool = match alphabet {
            Alphabet::Numeric => {
                if pan.len() < 16 {
                    return Err(Error::Token(
                        "numeric tokens need a PAN of at least 16 digits",
                    ));
                }
                if !pan.is_luhn_valid() {
                    return Err(Error::PanLuhn);
                }
                if let Some(last) = middle.last_mut() {
                    *last = (*last + 1) % 10;
                }
                |b, m, l| !luhn_valid(&frame(b, m, l))
            }
            Alphabet::Alphanumeric => {
                if pan.len() < 14 {
                    return Err(Error::Token(
                        "alphanumeric tokens need a PAN of at least 14 digits",
                    ));
                }
                if let Some(first) = middle.first_mut() {
                    *first += 10;
                }
                |_, m, _| m.iter().any(|&n| n >= 10)
            }
        };
        let cipher = self.cipher(alphabet);
        for _ in 0..MAX_WALK {
            middle = cipher.run(true, &tweak, middle)?;
            if in_target(bin, &middle, last4) {
                return Ok(String::from_utf8_lossy(&frame(bin, &middle, last4)).into_owned());
            }
        }
        Err(Error::Token("cycle walk did not terminate"))
    }

    /// Recovers the PAN from a token made by [`TokenKey::tokenise`] with this key.
    pub fn detokenise(&self, token: &str, alphabet: Alphabet) -> Result<Pan, Error> {
        let t = token.trim().to_ascii_lowercase();
        let len = t.len();
        let min = if alphabet == Alphabet::Numeric {
            16
        } else {
            14
        };
        if !(min..=19).contains(&len) {
            return Err(Error::Token("token length out of range"));
        }
        let (bin, rest) = t.split_at(6);
        let (mid, last4) = rest.split_at(len - 10);
        if !bin.bytes().chain(last4.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(Error::Token("token must keep the BIN and last 4 digits"));
        }
        let radix = alphabet.radix();
        let mut middle: Vec<u16> = mid
            .bytes()
            .map(|c| char_numeral(c, radix))
            .collect::<Option<_>>()
            .ok_or(Error::Token("character outside the token alphabet"))?;
        let tweak = frame(bin, &[], last4);
        let in_target = |m: &[u16]| match alphabet {
            Alphabet::Numeric => !luhn_valid(&frame(bin, m, last4)),
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
        let digits = String::from_utf8_lossy(&frame(bin, &middle, last4)).into_owned();
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
