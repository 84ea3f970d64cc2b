//! `DA` (verify a terminal PIN, IBM 3624 offset) and `EA` (verify an interchange PIN,
//! IBM 3624 offset): `pin.verify` with an offset, so the card's PIN tries, per-card
//! ordering and the brute-force guard apply exactly as on the native protocol (and as
//! `DC`/`EC`: the card is the account number and a `0`).
//!
//! Fields: the TPK (`DA`) or ZPK (`EA`), the PVK, the maximum PIN length (2N, 04-12),
//! the PIN block (16H), its format code (2N), the check length (2N, 04 to the maximum),
//! the account number (12N), the decimalisation table (16N), the PIN validation data
//! (12 characters: hex digits and one `N`, where the account number's last 5 digits
//! go) and the offset (12: check-length digits, then `F`). Answer: no fields.
//!
//! The mapping is exact only where cofre computes the same validation data: the 16
//! characters (12 with `N` replaced by 5 digits) must be a run of the account number's
//! digits followed by one pad character repeated (`1111111NFFFF` is the account's 12
//! digits and `FFFF`: start 0, length 12, pad `F`). Any other validation data is `15`.

use crate::keys::KeyKind;
use crate::protocol::Tag;

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, account_card, body, no_fields, pin_block, pin_format};

/// The native validation data of a payShield one: (start, length, pad) over the card
/// named by `account`.
pub(super) fn validation(account: &str, data: &str) -> Result<(u8, u8, char), ErrorCode> {
    let (before, after) = data.split_once('N').ok_or(ErrorCode::INVALID_INPUT)?;
    if after.contains('N')
        || !before
            .bytes()
            .chain(after.bytes())
            .all(|b| b.is_ascii_hexdigit())
    {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let last5 = account.get(7..12).ok_or(ErrorCode::INVALID_INPUT)?;
    let full = format!("{before}{last5}{after}").to_ascii_uppercase();
    let digits = account.as_bytes();
    let full = full.as_bytes();
    if full.len() != 16 || digits.len() != 12 {
        return Err(ErrorCode::INVALID_INPUT);
    }
    for len in (1..=12usize).rev() {
        let (head, pad) = full.split_at(len);
        let Some(&p) = pad.first() else { continue };
        if !pad.iter().all(|&c| c == p) {
            continue;
        }
        if let Some(start) = (0..=12 - len).find(|&s| &digits[s..s + len] == head) {
            let start = u8::try_from(start).map_err(|_| ErrorCode::INVALID_INPUT)?;
            let len = u8::try_from(len).map_err(|_| ErrorCode::INVALID_INPUT)?;
            return Ok((start, len, char::from(p)));
        }
    }
    Err(ErrorCode::INVALID_INPUT)
}

/// The offset field: `check` digits, then `F` to 12 characters.
fn offset(field: &str, check: usize) -> Result<&str, ErrorCode> {
    let (digits, fill) = field
        .split_at_checked(check)
        .ok_or(ErrorCode::INVALID_INPUT)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) && fill.bytes().all(|b| b == b'F') {
        Ok(digits)
    } else {
        Err(ErrorCode::INVALID_INPUT)
    }
}

/// `DA` (`kind` TPK) or `EA` (`kind` ZPK).
pub fn verify_offset(
    data: &[u8],
    keys: &Keys<'_>,
    kind: KeyKind,
) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let pin_key = c.key()?;
    let pvk = c.key()?;
    let max: usize = c.digits(2)?.parse().map_err(|_| ErrorCode::INVALID_INPUT)?;
    let block = pin_block(&mut c)?;
    let format = pin_format(c.digits(2)?)?;
    let check: usize = c.digits(2)?.parse().map_err(|_| ErrorCode::INVALID_INPUT)?;
    let account = c.digits(12)?;
    let table = c.digits(16)?;
    let data = std::str::from_utf8(c.take(12)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    let offset_field = std::str::from_utf8(c.take(12)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    c.end()?;
    if !(4..=12).contains(&max) {
        return Err(ErrorCode::PIN_LENGTH);
    }
    if !(4..=max).contains(&check) {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let (start, len, pad) = validation(account, data)?;
    let offset = offset(offset_field, check)?;
    let pin_key = keys.resolve(pin_key, &[kind])?;
    let pvk = keys.resolve(pvk, &[KeyKind::Pvk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .str(Tag::Key, &pin_key)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, &block)
            .str(Tag::Pvk, &pvk)
            .str(Tag::Offset, offset)
            .str(Tag::Decimalization, table)
            .u8(Tag::ValidationStart, start)
            .u8(Tag::ValidationLength, len)
            .str(Tag::Pad, &pad.to_string());
    })?;
    Ok((body, no_fields()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn validation_data_maps_only_onto_account_digits_and_one_pad() {
        let account = "411111234567";
        // N at the end of 11 digits: the account's 7 first digits + its last 5, pad F.
        assert_eq!(validation(account, "4111112NFFFF"), Ok((0, 12, 'F')));
        assert_eq!(validation(account, "NFFFFFFFFFFF"), Ok((7, 5, 'F')));
        assert_eq!(validation(account, "1112N0000000"), Ok((3, 9, '0')));
        assert_eq!(validation(account, "Naaaaaaaaaaa"), Ok((7, 5, 'A')));
        for bad in [
            "4111112FFFFF",
            "41111NNFFFFF",
            "9111112NFFFF",
            "N12FFFFFFFFF",
            "4111112NFFFG",
            "4111112NFFF",
        ] {
            assert_eq!(
                validation(account, bad),
                Err(ErrorCode::INVALID_INPUT),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_offset_is_check_length_digits_then_f() {
        assert_eq!(offset("3104FFFFFFFF", 4), Ok("3104"));
        assert_eq!(offset("310412FFFFFF", 6), Ok("310412"));
        assert_eq!(offset("310412FFFFFF", 4), Err(ErrorCode::INVALID_INPUT));
        assert_eq!(offset("31A4FFFFFFFF", 4), Err(ErrorCode::INVALID_INPUT));
        assert_eq!(offset("3104", 12), Err(ErrorCode::INVALID_INPUT));
    }
}
