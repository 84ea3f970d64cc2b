//! Dynamic CVV2 (dCVV2): a one-time 3-digit code for card-not-present purchases, derived
//! with HMAC-SHA256 from the PAN, the expiry and a moving factor (a counter, or a time
//! step as in RFC 6238), truncated as in RFC 4226 section 5.3. `protocol/dcvv2.md` is
//! the byte-for-byte specification; this file follows it.
//!
//! Owns: the message layout, truncation, the time-step rule and window verification.
//! Must not touch: clocks (callers pass `unix_seconds` or the counter in) and state:
//! one-time use, the last accepted step and lockout after failures are the daemon's.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::mac::hmac_sha256;
use super::{ClearKey, Error, ct_eq};

/// Domain-separation label that starts every message: a dCVV2 key can never yield a
/// value that is also a valid MAC of some other cofre format, and `v1` leaves room for
/// a future layout without ambiguity.
pub const LABEL: &[u8; 14] = b"cofre-dcvv2-v1";

/// Recommended T0 for time-step mode: the Unix epoch, as in RFC 6238.
pub const DEFAULT_T0: u64 = 0;

/// Recommended step for time-step mode: 5 minutes, long enough to read a code from an
/// app and type it at a checkout, short enough that a skimmed code soon goes stale.
pub const DEFAULT_STEP_SECONDS: u64 = 300;

/// Largest `back` or `forward` a [`Window`] may have. Every extra step adds about 1/1000
/// to an attacker's chance per guess, so wide windows are refused rather than honoured.
pub const MAX_WINDOW_SIDE: u64 = 10;

const PAN_MIN: usize = 12;
const PAN_MAX: usize = 19;
/// Label, PAN length byte, longest PAN, expiry, moving factor.
const MESSAGE_MAX: usize = LABEL.len() + 1 + PAN_MAX + 4 + 8;

/// A dCVV2 value: exactly 3 ASCII digits. Secret (it authorises a purchase), so `Debug`
/// is redacted, there is no `Display` or `PartialEq`, and it zeroizes on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dcvv2Code([u8; 3]);

impl Dcvv2Code {
    /// The 3 digits, zero-padded ("007"), for the few places allowed to see them.
    pub fn expose_secret(&self) -> &str {
        // Only `from_value` builds this type and it writes ASCII digits, so the fallback
        // is unreachable; it exists to keep this accessor free of panics.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    fn from_value(value: u32) -> Self {
        let v = value % 1000;
        Self([digit(v / 100), digit(v / 10), digit(v)])
    }
}

impl fmt::Debug for Dcvv2Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dcvv2Code([REDACTED])")
    }
}

/// The ASCII digit of `n mod 10`.
fn digit(n: u32) -> u8 {
    b"0123456789"[(n % 10) as usize]
}

/// How far around the expected moving factor a verifier looks: steps
/// `factor - back ..= factor + forward`, clipped to `0 ..= u64::MAX`.
///
/// Time-step mode: `back: 1` absorbs a code typed just before its step ended; `forward: 1`
/// only if codes come from a device with its own clock. Counter mode: pass `last accepted
/// + 1` as the factor, `back: 0` and a small `forward` for codes generated but never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Steps before the expected factor to also accept (at most [`MAX_WINDOW_SIDE`]).
    pub back: u64,
    /// Steps after the expected factor to also accept (at most [`MAX_WINDOW_SIDE`]).
    pub forward: u64,
}

/// RFC 6238 time step: `floor((unix_seconds - t0) / step_seconds)`. Refuses a zero step
/// and a time before `t0` (a step would be negative, which the format cannot carry).
pub fn time_step(unix_seconds: u64, t0: u64, step_seconds: u64) -> Result<u64, Error> {
    if step_seconds == 0 {
        return Err(Error::Parameter("time step must be at least 1 second"));
    }
    let elapsed = unix_seconds
        .checked_sub(t0)
        .ok_or(Error::Parameter("time is before T0"))?;
    Ok(elapsed / step_seconds)
}

/// Computes the dCVV2 for a card and moving factor (a counter, or [`time_step`]'s result).
///
/// The key must be 16 or 32 bytes; the PAN 12 to 19 digits (Luhn not required: tokens
/// and test PANs may fail it); the expiry 4 digits YYMM with month 01-12.
pub fn dcvv2(
    key: &ClearKey,
    pan: &str,
    expiry_yymm: &str,
    moving_factor: u64,
) -> Result<Dcvv2Code, Error> {
    let key = dcvv2_key(key)?;
    Message::new(pan, expiry_yymm)?.code(key, moving_factor)
}

/// Verifies a presented dCVV2 for exactly one moving factor, in constant time.
/// A presented value that is not 3 digits is an error, not a mismatch.
pub fn verify(
    key: &ClearKey,
    pan: &str,
    expiry_yymm: &str,
    moving_factor: u64,
    presented: &str,
) -> Result<bool, Error> {
    let window = Window::default();
    Ok(verify_window(key, pan, expiry_yymm, moving_factor, window, presented)?.is_some())
}

/// Verifies a presented dCVV2 against every step of `window` around `moving_factor` and
/// returns the highest matching step, or `None`.
///
/// The highest match is returned so that a caller that stores it and refuses steps at or
/// below it cannot be replayed the same digits at a later step of the same window. That
/// store, and lockout after repeated failures, are the caller's: this function is pure.
/// Every step is computed and compared even after a match, so timing does not say which.
pub fn verify_window(
    key: &ClearKey,
    pan: &str,
    expiry_yymm: &str,
    moving_factor: u64,
    window: Window,
    presented: &str,
) -> Result<Option<u64>, Error> {
    let key = dcvv2_key(key)?;
    let mut message = Message::new(pan, expiry_yymm)?;
    let presented = presented_digits(presented)?;
    if window.back > MAX_WINDOW_SIDE || window.forward > MAX_WINDOW_SIDE {
        return Err(Error::Parameter("window wider than 10 steps on a side"));
    }
    let first = moving_factor.saturating_sub(window.back);
    let last = moving_factor.saturating_add(window.forward);
    let mut matched = None;
    for step in first..=last {
        let code = message.code(key, step)?;
        if ct_eq(&code.0, &presented) {
            matched = Some(step);
        }
    }
    Ok(matched)
}

/// The key bytes, if the length is one this format accepts: 16 bytes (128-bit security,
/// the AES-128 / double-length TDES class) or 32 (SHA-256's full strength). Other lengths
/// are refused, which catches a DES key or a truncated import loaded in the wrong slot.
fn dcvv2_key(key: &ClearKey) -> Result<&[u8], Error> {
    let k = key.expose_secret();
    if matches!(k.len(), 16 | 32) {
        Ok(k)
    } else {
        Err(Error::KeyLength { got: k.len() })
    }
}

/// A presented code: exactly 3 ASCII digits.
fn presented_digits(presented: &str) -> Result<[u8; 3], Error> {
    match presented.as_bytes() {
        &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_digit) => Ok([a, b, c]),
        [_, _, _] => Err(Error::NotDecimal("dCVV2")),
        _ => Err(Error::FieldLength {
            field: "dCVV2",
            expected: "3 digits",
        }),
    }
}

/// The HMAC input of protocol/dcvv2.md: `LABEL || len(PAN) || PAN || YYMM || factor`,
/// with the factor's 8 bytes last so a window scan rewrites only them. It holds the PAN,
/// so it zeroizes on drop; the capacity is exact, so no reallocation leaves a copy behind.
struct Message(Zeroizing<Vec<u8>>);

impl Message {
    fn new(pan: &str, expiry_yymm: &str) -> Result<Self, Error> {
        let pan = pan.as_bytes();
        if !(PAN_MIN..=PAN_MAX).contains(&pan.len()) || !pan.iter().all(u8::is_ascii_digit) {
            return Err(Error::PanFormat);
        }
        let expiry = expiry_bytes(expiry_yymm)?;
        let mut buf = Zeroizing::new(Vec::with_capacity(MESSAGE_MAX));
        // The length byte keeps PAN and expiry apart: without it, a 12-digit PAN plus
        // expiry could spell the same bytes as a 13-digit PAN plus another expiry.
        for part in [LABEL.as_slice(), &[pan.len() as u8], pan, &expiry, &[0; 8]] {
            buf.extend_from_slice(part);
        }
        Ok(Self(buf))
    }

    fn code(&mut self, key: &[u8], moving_factor: u64) -> Result<Dcvv2Code, Error> {
        let factor_at = self.0.len() - 8;
        self.0[factor_at..].copy_from_slice(&moving_factor.to_be_bytes());
        let mac = Zeroizing::new(hmac_sha256(key, &self.0));
        Ok(Dcvv2Code::from_value(dynamic_truncate(mac.as_slice())?))
    }
}

/// Expiry as 4 ASCII digits YYMM with month 01-12. Unlike the static CVV (defined over
/// any 4 digits) this is a new format, so an impossible month is refused as a likely
/// field swap (MMYY) rather than silently yielding codes no card will ever show.
fn expiry_bytes(expiry: &str) -> Result<[u8; 4], Error> {
    let &[y1, y2, m1, m2] = expiry.as_bytes() else {
        return Err(Error::FieldLength {
            field: "expiry",
            expected: "4 digits (YYMM)",
        });
    };
    let out = [y1, y2, m1, m2];
    if !out.iter().all(u8::is_ascii_digit) {
        return Err(Error::NotDecimal("expiry"));
    }
    let month = (m1 - b'0') * 10 + (m2 - b'0');
    if !(1..=12).contains(&month) {
        return Err(Error::Parameter("expiry month must be 01 to 12"));
    }
    Ok(out)
}

/// RFC 4226 section 5.3 dynamic truncation: the low nibble of the last byte picks an
/// offset 0-15; the 4 bytes there, big-endian, with the top bit cleared (so the value is
/// the same whether a host reads it as signed or unsigned). Any MAC of 20 bytes or more
/// (HMAC-SHA1 in RFC 4226, HMAC-SHA256 here and in RFC 6238) has the 19 bytes needed.
fn dynamic_truncate(mac: &[u8]) -> Result<u32, Error> {
    if mac.len() < 20 {
        return Err(Error::FieldLength {
            field: "MAC",
            expected: "at least 20 bytes",
        });
    }
    // In bounds: offset + 3 <= 18 < 20 <= mac.len().
    let offset = usize::from(mac[mac.len() - 1] & 0x0F);
    let word = mac[offset..offset + 4]
        .iter()
        .fold(0u32, |w, &b| w << 8 | u32::from(b));
    Ok(word & 0x7FFF_FFFF)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const K1: &str = "000102030405060708090A0B0C0D0E0F";
    const PAN1: &str = "4111111111111111";

    fn key(h: &str) -> ClearKey {
        ClearKey::from_hex(h).unwrap()
    }

    /// The ```vector blocks of protocol/dcvv2.md section 7, as (field, first word) maps.
    /// They were computed with Python's hmac/hashlib, not with this code; the HMAC-SHA256
    /// step itself is checked against RFC 4231 in mac.rs.
    fn spec_vectors() -> Vec<HashMap<&'static str, &'static str>> {
        let spec = include_str!("../../protocol/dcvv2.md");
        spec.split("```vector\n")
            .skip(1)
            .map(|block| {
                let block = block.split("```").next().unwrap();
                let fields = block.lines().filter_map(|l| l.split_once(' '));
                fields
                    .map(|(k, v)| (k, v.split_whitespace().next().unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn protocol_vectors_every_intermediate() {
        let vectors = spec_vectors();
        assert_eq!(vectors.len(), 7);
        for v in &vectors {
            let k = key(v["key"]);
            let factor: u64 = v["factor"].parse().unwrap();
            if let Some(unix) = v.get("unix") {
                let (t0, step) = (v["t0"].parse().unwrap(), v["step"].parse().unwrap());
                assert_eq!(time_step(unix.parse().unwrap(), t0, step), Ok(factor));
            }
            let mut m = Message::new(v["pan"], v["expiry"]).unwrap();
            let code = m.code(k.expose_secret(), factor).unwrap();
            let msg = m.0.as_slice();
            assert_eq!(hex::encode_upper(msg), v["message"]);
            let mac = hmac_sha256(k.expose_secret(), msg);
            assert_eq!(hex::encode_upper(mac), v["hmac"]);
            let offset: usize = v["offset"].parse().unwrap();
            assert_eq!(hex::encode_upper(&mac[offset..offset + 4]), v["bytes"]);
            assert_eq!(dynamic_truncate(&mac).unwrap().to_string(), v["value"]);
            assert_eq!(code.expose_secret(), v["code"]);
            let code = dcvv2(&k, v["pan"], v["expiry"], factor).unwrap();
            assert_eq!(code.expose_secret(), v["code"]);
            assert!(verify(&k, v["pan"], v["expiry"], factor, v["code"]).unwrap());
        }
    }

    // protocol/dcvv2.md vectors 4 and 5, plus the edges of the rule.
    #[test]
    fn time_steps() {
        assert_eq!(time_step(1_767_225_600, 0, 300), Ok(5_890_752));
        assert_eq!(time_step(1_800_000_123, 1_700_000_000, 600), Ok(166_666));
        assert_eq!(time_step(1_767_225_599, 0, 300), Ok(5_890_751));
        assert_eq!(time_step(42, 42, 1), Ok(0));
        assert_eq!(time_step(u64::MAX, 0, 1), Ok(u64::MAX));
        assert!(matches!(time_step(100, 0, 0), Err(Error::Parameter(_))));
        assert!(matches!(time_step(99, 100, 30), Err(Error::Parameter(_))));
    }

    // RFC 4226 Appendix D: HMAC-SHA1("12345678901234567890", counter 0-9), the published
    // truncated decimal, and the published 6-digit HOTP value (decimal mod 10^6).
    const RFC4226_APPENDIX_D: &str = "\
        cc93cf18508d94934c64b65d8ba7667fb7cde4b0 1284755224 755224
        75a48a19d4cbe100644e8ac1397eea747a2d33ab 1094287082 287082
        0bacb7fa082fef30782211938bc1c5e70416ff44 137359152 359152
        66c28227d03a2d5529262ff016a1e6ef76557ece 1726969429 969429
        a904c900a64b35909874b33e61c5938a8e15ed1c 1640338314 338314
        a37e783d7b7233c083d4f62926c7a25f238d0316 868254676 254676
        bc9cd28561042c83f219324d3c607256c03272ae 1918287922 287922
        a4fb960c0bc06e1eabb804e5b397cdc4b45596fa 82162583 162583
        1b3c89f65e6c9e883012052823443f048b4332db 673399871 399871
        1637409809a679dc698207310c8c7fc07290d9e5 645520489 520489";

    #[test]
    fn dynamic_truncation_rfc4226_appendix_d() {
        for line in RFC4226_APPENDIX_D.lines() {
            let [mac, decimal, hotp] = line.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("bad line {line}");
            };
            let value = dynamic_truncate(&hex::decode(mac).unwrap()).unwrap();
            assert_eq!(value.to_string(), decimal);
            assert_eq!(format!("{:06}", value % 1_000_000), hotp);
        }
        assert_eq!(RFC4226_APPENDIX_D.lines().count(), 10);
        assert!(dynamic_truncate(&[0xFF; 19]).is_err());
        assert!(dynamic_truncate(&[]).is_err());
        // Offset 15 reads bytes 15..19 and clears the top bit.
        assert_eq!(dynamic_truncate(&[0xFF; 20]), Ok(0x7FFF_FFFF));
    }

    #[test]
    fn every_input_rule() {
        let k = key(K1);
        let with_key =
            |n: usize| dcvv2(&ClearKey::from_bytes(&vec![7; n]).unwrap(), PAN1, "2812", 0);
        let with_pan = |pan| dcvv2(&k, pan, "2812", 0).err();
        let with_expiry = |expiry| dcvv2(&k, PAN1, expiry, 0).err();
        let with_code = |code| verify(&k, PAN1, "2812", 0, code);
        for n in [1, 8, 15, 17, 24, 31, 33, 64] {
            assert_eq!(with_key(n).err(), Some(Error::KeyLength { got: n }));
        }
        assert!(with_key(16).is_ok() && with_key(32).is_ok());
        // Too short, too long, a letter, a space, a sign, a non-ASCII digit.
        for pan in [
            "",
            "41111111111",
            "41111111111111111111",
            "411111111111111a",
            "4111 11111111",
            "-41111111111",
            "41111111111111\u{0661}",
        ] {
            assert_eq!(with_pan(pan), Some(Error::PanFormat), "{pan}");
        }
        // 12 and 19 digits are accepted; Luhn is not required (the last PAN fails it).
        for pan in ["000000000000", "9999999999999999999", "4111111111111112"] {
            assert_eq!(with_pan(pan), None);
        }
        for expiry in ["", "281", "28121", "\u{FF12}\u{FF18}12"] {
            assert!(matches!(
                with_expiry(expiry),
                Some(Error::FieldLength { .. })
            ));
        }
        for expiry in ["28 2", "2a12", "+812", "-812"] {
            assert_eq!(with_expiry(expiry), Some(Error::NotDecimal("expiry")));
        }
        for expiry in ["2800", "2813", "2899"] {
            assert!(matches!(with_expiry(expiry), Some(Error::Parameter(_))));
        }
        for expiry in ["0001", "9912", "2806"] {
            assert_eq!(with_expiry(expiry), None);
        }
        for code in ["", "18", "1840", "\u{0661}\u{0668}"] {
            assert!(matches!(with_code(code), Err(Error::FieldLength { .. })));
        }
        for code in ["18a", " 84", "+84", "-84"] {
            assert_eq!(with_code(code), Err(Error::NotDecimal("dCVV2")));
        }
        // Vector 1: right code, wrong code, right code at the wrong counter.
        assert_eq!(with_code("184"), Ok(true));
        assert_eq!(with_code("185"), Ok(false));
        assert_eq!(verify(&k, PAN1, "2812", 1, "184"), Ok(false));
    }

    #[test]
    fn window_scan() {
        let k = key(K1);
        let scan = |factor, back, forward, code| {
            verify_window(&k, PAN1, "2812", factor, Window { back, forward }, code)
        };
        // Vector 6 (counter 50 -> 003) is found one step either side, not two.
        assert_eq!(scan(51, 1, 1, "003"), Ok(Some(50)));
        assert_eq!(scan(49, 1, 1, "003"), Ok(Some(50)));
        assert_eq!(scan(52, 1, 1, "003"), Ok(None));
        // Counters 94 and 103 of this card both give 435 (found with the Python oracle):
        // the highest match wins so a stored "last step" blocks a replay of the digits.
        assert_eq!(scan(99, 5, 4, "435"), Ok(Some(103)));
        assert_eq!(scan(99, 5, 3, "435"), Ok(Some(94)));
        // Vector 1 at counter 0: the window clips at 0 and at u64::MAX without overflow.
        assert_eq!(scan(0, 10, 0, "184"), Ok(Some(0)));
        assert!(scan(u64::MAX, 0, 10, "000").is_ok());
        for (back, forward) in [(11, 0), (0, 11), (u64::MAX, u64::MAX)] {
            assert!(matches!(
                scan(50, back, forward, "003"),
                Err(Error::Parameter(_))
            ));
        }
        assert!(scan(50, 1, 1, "03").is_err());
    }

    // The message holds the PAN, and a `Vec` that grows leaves its old buffer, PAN
    // included, unzeroized in freed memory: the longest message must fit the capacity
    // reserved up front (label 14 + length 1 + PAN 19 + expiry 4 + factor 8 = 46 bytes).
    #[test]
    fn the_longest_message_fits_without_reallocating() {
        assert_eq!(MESSAGE_MAX, 46);
        let mut m = Message::new("9999999999999999999", "2812").unwrap();
        assert_eq!((m.0.len(), m.0.capacity()), (MESSAGE_MAX, MESSAGE_MAX));
        m.code(K1.as_bytes(), u64::MAX).unwrap();
        assert_eq!(m.0.capacity(), MESSAGE_MAX);
    }

    #[test]
    fn nothing_secret_is_printed() {
        let k = key(K1);
        let code = dcvv2(&k, PAN1, "2812", 0).unwrap();
        assert_eq!(format!("{code:?}"), "Dcvv2Code([REDACTED])");
        let short_key = ClearKey::from_bytes(&[0x5A; 20]).unwrap();
        let errors = [
            dcvv2(&k, "411111111111111x", "2812", 0).unwrap_err(),
            dcvv2(&k, PAN1, "2813", 0).unwrap_err(),
            verify(&k, PAN1, "2812", 0, "18x").unwrap_err(),
            dcvv2(&short_key, PAN1, "2812", 0).unwrap_err(),
        ];
        for text in errors.iter().map(ToString::to_string) {
            for secret in ["4111", "2812", "2813", "18", "5A", "5a", "90"] {
                assert!(!text.contains(secret), "{text}");
            }
        }
    }
}
