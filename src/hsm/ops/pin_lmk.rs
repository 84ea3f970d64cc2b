//! The PIN under the LMK (`pin_blob`) as a value of its own, for the issuer's host
//! commands that work on it (payShield `JA`, `DG`, `DE`): pin.random draws a PIN and
//! answers only its blob; pin.reference computes a PVV or an IBM 3624 offset from a
//! blob. Neither touches the card's PIN tries: a new blob does not unlock a card, and
//! computing a reference verifies nothing. The clear PIN exists only in here.

use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Tag};

use super::super::pin_policy::CallerDigits;
use super::fields::{self, NewReference};
use super::pin::{IBM, write_reference};
use super::pin_issue::draw;
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request};

/// pin.random (0x0029): a random PIN of a given length, answered only under the LMK.
#[derive(Debug, Clone)]
pub struct PinRandom<'a> {
    /// The card the blob is bound to.
    pub card: CardRef<'a>,
    /// PIN length, 4-12.
    pub pin_length: usize,
    /// Digit strings never to draw.
    pub weak_digits: CallerDigits,
}

/// The PIN length of a generation request: `pin_length`, 4-12, default 4.
pub fn pin_length(f: &Fields<'_>) -> Result<usize, OpError> {
    match f.u8(Tag::PinLength)?.unwrap_or(4) {
        n @ 4..=12 => Ok(usize::from(n)),
        _ => Err(OpError::field(Tag::PinLength, "pin_length must be 4-12")),
    }
}

impl<'a> Request<'a> for PinRandom<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::PinLength,
        Tag::WeakDigits,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            pin_length: pin_length(f)?,
            weak_digits: fields::weak_digits(f)?,
        })
    }
}

/// pin.random for a resolved card: the PIN is drawn as pin.generate draws it (uniform
/// among the PINs of that length the weak-PIN policy accepts) and sealed for the card.
pub fn random(
    ctx: &Ctx<'_>,
    r: &PinRandom<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let mut rng = rand::rng();
    let pin = draw(ctx, r.pin_length, &r.weak_digits, &mut rng)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&pin, &card.pan, &mut rng)?,
    );
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// pin.reference (0x002A): the PVV or offset of the PIN in a blob.
#[derive(Debug, Clone)]
pub struct PinReference<'a> {
    /// The card the blob belongs to.
    pub card: CardRef<'a>,
    /// Its LMK-encrypted PIN.
    pub pin_blob: &'a [u8],
    /// PIN verification key id.
    pub pvk: &'a str,
    /// PVV or offset.
    pub how: NewReference,
}

impl<'a> Request<'a> for PinReference<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::PinBlob,
        Tag::Pvk,
        Tag::Method,
        Tag::Pvki,
        IBM[0],
        IBM[1],
        IBM[2],
        IBM[3],
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            pin_blob: fields::required(fields::pin_blob(f, false)?, Tag::PinBlob)?,
            pvk: fields::key_id(f, Tag::Pvk)?,
            how: NewReference::parse(f)?,
        })
    }
}

/// pin.reference for a resolved card: the blob is opened for this card (`invalid_blob`
/// otherwise), then the PVV or offset is computed as pin.generate computes it.
pub fn reference(
    ctx: &Ctx<'_>,
    r: &PinReference<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    // The key before the blob, as "Order of checks" puts keys before cryptography.
    ctx.ring.active(r.pvk, Operation::PinVerification)?;
    let pin = ctx.secrets.open_pin(r.pin_blob, &card.pan)?;
    write_reference(ctx, r.pvk, &pin, &card.pan, &r.how, out)?;
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}
