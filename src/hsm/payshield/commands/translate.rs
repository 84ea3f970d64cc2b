//! PIN translation through `pin.translate`, so the PCI rules on formats (PCI PIN
//! Security Requirement 3-3) and the role's key patterns apply as on the native
//! protocol:
//!
//! * `CA` (TPK -> ZPK) and `CC` (ZPK -> ZPK): the source key, the destination ZPK, the
//!   maximum PIN length (2N), the PIN block (16H), its format code (2N), the
//!   destination format code (2N), the account number (12N).
//! * `G0` (TDES DUKPT -> ZPK): the BDK, the destination ZPK, the KSN descriptor (3H, not
//!   used: the KSN is the X9.24-1 10-byte KSN), the KSN (20H), the PIN block (16H, ISO
//!   format 0 under the transaction's PIN key), the destination format code (2N), the
//!   account number (12N).
//!
//! Answer: the PIN length (2N), the PIN block under the ZPK (16H), its format code
//! (2N). A PIN longer than the request's maximum is `24` (`CA`, `CC`).

use crate::keys::KeyKind;
use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{
    Answer, Keys, account_card, body, format_code, pin_block, pin_block_answer, pin_format,
};

/// `CA` (`source` TPK) or `CC` (`source` ZPK).
pub fn zone(data: &[u8], keys: &Keys<'_>, source: KeyKind) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let from_key = c.key()?;
    let to_key = c.key()?;
    let max: u8 = c.digits(2)?.parse().map_err(|_| ErrorCode::INVALID_INPUT)?;
    let block = pin_block(&mut c)?;
    let from = pin_format(c.digits(2)?)?;
    let to = pin_format(c.digits(2)?)?;
    let account = c.digits(12)?;
    c.end()?;
    if !(4..=12).contains(&max) {
        return Err(ErrorCode::PIN_LENGTH);
    }
    let from_key = keys.resolve(from_key, &[source])?;
    let to_key = keys.resolve(to_key, &[KeyKind::Zpk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .str(Tag::Key, &from_key)
            .u8(Tag::Format, from)
            .bytes(Tag::PinBlock, &block)
            .str(Tag::DestKey, &to_key)
            .u8(Tag::DestFormat, to);
    })?;
    Ok((body, translated(to, max)))
}

/// `G0`.
pub fn dukpt(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let bdk = c.key()?;
    let to_key = c.key()?;
    c.hex(3)?;
    let ksn = hex::decode(c.hex(20)?).map_err(|_| ErrorCode::INVALID_INPUT)?;
    let block = pin_block(&mut c)?;
    let to = pin_format(c.digits(2)?)?;
    let account = c.digits(12)?;
    c.end()?;
    let bdk = keys.resolve(bdk, &[KeyKind::Bdk])?;
    let to_key = keys.resolve(to_key, &[KeyKind::Zpk])?;
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .str(Tag::Key, &bdk)
            .bytes(Tag::Ksn, &ksn)
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block)
            .str(Tag::DestKey, &to_key)
            .u8(Tag::DestFormat, to);
    })?;
    Ok((body, translated(to, 12)))
}

/// PIN length, PIN block, format code; a PIN over `max` digits is `24`.
fn translated(to: u8, max: u8) -> Answer {
    Box::new(move |f: &Fields<'_>| {
        let length = f
            .u8(Tag::PinLength)
            .ok()
            .flatten()
            .ok_or(ErrorCode::INTERNAL)?;
        if length > max {
            return Err(ErrorCode::PIN_LENGTH);
        }
        let block = pin_block_answer(f)?;
        let code = format_code(to).ok_or(ErrorCode::INTERNAL)?;
        Ok(format!("{length:02}{block}{code}").into_bytes())
    })
}
