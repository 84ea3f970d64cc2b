//! `CW` (generate a card verification code) and `CY` (verify one): `cvv.generate` and
//! `cvv.verify` with the request's service code (`000` gives the CVV2, `999` the iCVV,
//! as the schemes define them).
//!
//! `CW` fields: the CVK, the PAN (up to 19N), `;`, the expiry (4N, YYMM), the service
//! code (3N); answer: the CVV (3N). `CY` fields: the CVK, the CVV (3N), the PAN, `;`,
//! the expiry, the service code; answer: no fields (`01` when it does not verify).

use crate::keys::KeyKind;
use crate::protocol::{Fields, Tag};

use super::super::fields::Cursor;
use super::super::frame::ErrorCode;
use super::{Answer, Keys, body, no_fields};

/// The longest PAN.
const MAX_PAN: usize = 19;

struct Card<'a> {
    pan: &'a str,
    expiry: &'a str,
    service_code: &'a str,
}

fn card<'a>(c: &mut Cursor<'a>) -> Result<Card<'a>, ErrorCode> {
    let pan = c.digits_until(b';', MAX_PAN)?;
    let expiry = c.digits(4)?;
    let service_code = c.digits(3)?;
    Ok(Card {
        pan,
        expiry,
        service_code,
    })
}

/// `CW`.
pub fn generate(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let cvk = c.key()?;
    let card = card(&mut c)?;
    c.end()?;
    let cvk = keys.resolve(cvk, &[KeyKind::Cvk])?;
    let body = body(|w| {
        w.str(Tag::Pan, card.pan)
            .str(Tag::Key, &cvk)
            .str(Tag::Expiry, card.expiry)
            .str(Tag::ServiceCode, card.service_code);
    })?;
    Ok((body, Box::new(generated)))
}

fn generated(f: &Fields<'_>) -> Result<Vec<u8>, ErrorCode> {
    let cvv = f
        .str(Tag::Cvv)
        .ok()
        .flatten()
        .filter(|v| v.len() == 3)
        .ok_or(ErrorCode::INTERNAL)?;
    Ok(cvv.as_bytes().to_vec())
}

/// `CY`.
pub fn verify(data: &[u8], keys: &Keys<'_>) -> Result<(Vec<u8>, Answer), ErrorCode> {
    let mut c = Cursor::new(data);
    let cvk = c.key()?;
    let cvv = c.digits(3)?;
    let card = card(&mut c)?;
    c.end()?;
    let cvk = keys.resolve(cvk, &[KeyKind::Cvk])?;
    let body = body(|w| {
        w.str(Tag::Pan, card.pan)
            .str(Tag::Key, &cvk)
            .str(Tag::Expiry, card.expiry)
            .str(Tag::ServiceCode, card.service_code)
            .str(Tag::Cvv, cvv);
    })?;
    Ok((body, no_fields()))
}
