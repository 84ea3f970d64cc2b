//! `DC` (verify a terminal PIN, Visa PVV) and `EC` (verify an interchange PIN, Visa
//! PVV): `pin.verify` with a PVV, so the card's PIN tries, per-card ordering and the
//! brute-force guard apply exactly as on the native protocol.
//!
//! Fields: the TPK (`DC`) or ZPK (`EC`), the PVK, the PIN block (16H), its format code
//! (2N), the account number (12N), the PVKI (1N), the PVV (4N). Answer: no fields.

use crate::keys::KeyKind;
use crate::protocol::Tag;

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, account_card, body, no_fields, pin_block, pin_format};

/// `DC` (`kind` TPK) or `EC` (`kind` ZPK).
pub fn verify_pvv(
    data: &[u8],
    keys: &Keys<'_>,
    kind: KeyKind,
) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let pin_key = c.key()?;
    let pvk = c.key()?;
    let block = pin_block(&mut c)?;
    let format = pin_format(c.digits(2)?)?;
    let account = c.digits(12)?;
    let pvki = c.digits(1)?;
    let pvv = c.digits(4)?;
    c.end()?;
    let pin_key = keys.resolve(pin_key, &[kind])?;
    let pvk = keys.resolve(pvk, &[KeyKind::Pvk])?;
    let pvki = pvki.bytes().next().map_or(0, |d| d - b'0');
    let body = body(|w| {
        w.str(Tag::Pan, &account_card(account))
            .str(Tag::Key, &pin_key)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, &block)
            .str(Tag::Pvk, &pvk)
            .str(Tag::Pvv, pvv)
            .u8(Tag::Pvki, pvki);
    })?;
    Ok((body, no_fields()))
}
