//! The commands on the PIN under the LMK: cofre's `pin_blob` (`protocol/payshield.md`,
//! "The PIN under the LMK"), 50 hex characters in the payShield `PIN` field, bound to
//! the card the account number names.
//!
//! * `JA` (random PIN): the account number (12N), the PIN length (2N, optional, 04-12,
//!   default 04); `pin.random`. Answer: the PIN under the LMK (50H).
//! * `JG` (LMK -> ZPK): the destination ZPK, the PIN block format code (2N), the account
//!   number (12N), the PIN under the LMK (50H); `pin.translate` from the blob. Answer:
//!   the PIN block under the ZPK (16H).
//! * `JE` (ZPK -> LMK): the source ZPK, the PIN block (16H), its format code (2N), the
//!   account number (12N); `pin.translate` into the LMK form. Answer: the PIN under the
//!   LMK (50H).
//! * `DG` (Visa PVV of an LMK PIN): the PVK, the PIN under the LMK (50H), the account
//!   number (12N), the PVKI (1N); `pin.reference`. Answer: the PVV (4N).
//! * `DE` (IBM 3624 offset of an LMK PIN): the PVK, the PIN under the LMK (50H), the
//!   check length (2N, 04-12), the account number (12N), the decimalisation table (16N),
//!   the PIN validation data (12, as `DA`); `pin.reference` with an offset. Answer: the
//!   offset (12: as many digits as the PIN, then `F`); a PIN shorter than the check
//!   length is `24`.
//!
//! None of them touches the card's PIN tries.

use crate::keys::KeyKind;
use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::ibm::validation;
use super::{Answer, Keys, account_card, body, pin_block, pin_block_answer, pin_format};

/// Hex characters of the PIN under the LMK (a 25-byte `pin_blob`).
pub const LMK_PIN_LEN: usize = 50;

/// The PIN under the LMK: 50 hex characters as the blob's bytes.
fn lmk_pin(c: &mut Cursor<'_>) -> Result<Vec<u8>, ErrorCode> {
    hex::decode(c.hex(LMK_PIN_LEN)?).map_err(|_| ErrorCode::INVALID_INPUT)
}

/// An answer of one `pin_blob`, as 50 hex characters.
fn lmk_pin_answer() -> Answer {
    Box::new(|f: &Fields<'_>| {
        let blob = f
            .bytes(Tag::PinBlob)
            .ok()
            .flatten()
            .filter(|b| b.len() * 2 == LMK_PIN_LEN)
            .ok_or(ErrorCode::INTERNAL)?;
        Ok(hex::encode_upper(blob).into_bytes())
    })
}

/// `JA`.
pub fn random(data: &[u8]) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let account = c.digits(12)?;
    let length: u8 = if c.end().is_ok() {
        4
    } else {
        c.digits(2)?.parse().map_err(|_| ErrorCode::INVALID_INPUT)?
    };
    // Anything after the length (an excluded-PIN table) is not offered: 15.
    c.end()?;
    if !(4..=12).contains(&length) {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .u8(Tag::PinLength, length);
    })?;
    Ok((body, lmk_pin_answer()))
}

/// `JG`.
pub fn to_zpk(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let zpk = c.key()?;
    let to = pin_format(c.digits(2)?)?;
    let account = c.digits(12)?;
    let blob = lmk_pin(&mut c)?;
    c.end()?;
    let zpk = keys.resolve(zpk, &[KeyKind::Zpk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::DestKey, &zpk)
            .u8(Tag::DestFormat, to);
    })?;
    let answer: Answer = Box::new(|f: &Fields<'_>| Ok(pin_block_answer(f)?.into_bytes()));
    Ok((body, answer))
}

/// `JE`.
pub fn from_zpk(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let zpk = c.key()?;
    let block = pin_block(&mut c)?;
    let from = pin_format(c.digits(2)?)?;
    let account = c.digits(12)?;
    c.end()?;
    let zpk = keys.resolve(zpk, &[KeyKind::Zpk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .str(Tag::Key, &zpk)
            .u8(Tag::Format, from)
            .bytes(Tag::PinBlock, &block);
    })?;
    Ok((body, lmk_pin_answer()))
}

/// `DG`.
pub fn pvv(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let pvk = c.key()?;
    let blob = lmk_pin(&mut c)?;
    let account = c.digits(12)?;
    let pvki = c.digits(1)?;
    c.end()?;
    let pvk = keys.resolve(pvk, &[KeyKind::Pvk])?;
    let pvki = pvki.bytes().next().map_or(0, |d| d - b'0');
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::Pvk, &pvk)
            .u8(Tag::Pvki, pvki);
    })?;
    let answer: Answer = Box::new(|f: &Fields<'_>| {
        let pvv = f
            .str(Tag::Pvv)
            .ok()
            .flatten()
            .filter(|p| p.len() == 4)
            .ok_or(ErrorCode::INTERNAL)?;
        Ok(pvv.as_bytes().to_vec())
    });
    Ok((body, answer))
}

/// `DE`.
pub fn offset(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let pvk = c.key()?;
    let blob = lmk_pin(&mut c)?;
    let check: usize = c.digits(2)?.parse().map_err(|_| ErrorCode::INVALID_INPUT)?;
    let account = c.digits(12)?;
    let table = c.digits(16)?;
    let data = std::str::from_utf8(c.take(12)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    c.end()?;
    if !(4..=12).contains(&check) {
        return Err(ErrorCode::INVALID_INPUT);
    }
    let (start, len, pad) = validation(account, data)?;
    let pvk = keys.resolve(pvk, &[KeyKind::Pvk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::Pvk, &pvk)
            .u8(Tag::Method, 1)
            .str(Tag::Decimalization, table)
            .u8(Tag::ValidationStart, start)
            .u8(Tag::ValidationLength, len)
            .str(Tag::Pad, &pad.to_string());
    })?;
    let answer: Answer = Box::new(move |f: &Fields<'_>| {
        let offset = f
            .str(Tag::Offset)
            .ok()
            .flatten()
            .filter(|o| (4..=12).contains(&o.len()))
            .ok_or(ErrorCode::INTERNAL)?;
        if offset.len() < check {
            return Err(ErrorCode::PIN_LENGTH);
        }
        Ok(format!("{offset:F<12}").into_bytes())
    });
    Ok((body, answer))
}
