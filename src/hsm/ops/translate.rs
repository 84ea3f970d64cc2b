//! pin.translate: a PIN block re-enciphered under another key and/or format, with the
//! PCI PIN translation rules (PCI PIN Security Requirement 3-3).

use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format};
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::dukpt::decipher_received;
use super::pin::{EncipheredPin, enciphered, wrong_algorithm};
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, bad, fields};

/// pin.translate (0x0021). The PCI rules on formats are checked here, at parse time.
#[derive(Debug, Clone)]
pub struct PinTranslate<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// The source PIN block.
    pub pin: EncipheredPin<'a>,
    /// Destination key id.
    pub dest_key: &'a str,
    /// Destination format.
    pub dest_format: Format,
    /// Destination PAN, if given.
    pub dest_pan: Option<Pan>,
}

impl<'a> Request<'a> for PinTranslate<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Ksn,
        Tag::PinKeyType,
        Tag::Format,
        Tag::PinBlock,
        Tag::DestKey,
        Tag::DestFormat,
        Tag::DestPan,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let card = CardRef::parse(f, CARD)?;
        let pin = enciphered(f, Tag::PinBlock)?;
        let dest_key = fields::key_id(f, Tag::DestKey)?;
        let to = fields::format(f, Tag::DestFormat, None)?;
        let dest_pan = f
            .str(Tag::DestPan)?
            .map(|d| Pan::new(d).map_err(bad(Tag::DestPan)))
            .transpose()?;
        let from = pin.format;
        if from == Format::Iso2 || to == Format::Iso2 {
            return Err(OpError::new(
                Status::TranslationNotAllowed,
                "format 2 (ICC only) is never translated",
            ));
        }
        if to == Format::Iso1 && from != Format::Iso1 {
            return Err(OpError::new(
                Status::TranslationNotAllowed,
                format!(
                    "format {} may not be translated into format 1",
                    from.number()
                ),
            ));
        }
        Ok(Self {
            card,
            pin,
            dest_key,
            dest_format: to,
            dest_pan,
        })
    }
}

/// pin.translate of a resolved card.
pub fn translate(
    ctx: &Ctx<'_>,
    r: &PinTranslate<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let (from, to) = (r.pin.format, r.dest_format);
    let dest_pan = r.dest_pan.as_ref().unwrap_or(&card.pan);
    if from.is_pan_bound() && to.is_pan_bound() && dest_pan.digits() != card.pan.digits() {
        return Err(OpError::new(
            Status::PanMismatch,
            "the PAN may not change between PAN-bound formats",
        ));
    }
    let (pin, key_version) = decipher_received(ctx, &r.pin.key, from, &r.pin.block, &card.pan)?;
    let dest = ctx.ring.active(r.dest_key, Operation::PinBlock)?;
    let cipher = dest
        .cipher
        .as_ref()
        .filter(|c| c.algorithm() == to.algorithm())
        .ok_or_else(|| wrong_algorithm(to))?;
    let block = pinblock::encipher(to, cipher, &pin, Some(dest_pan), &mut rand::rng())
        .map_err(bad(Tag::DestFormat))?;
    // The PIN's length, as HSM host commands report it on translation (payShield CA,
    // CC, G0); never the PIN itself.
    let pin_length = u8::try_from(pin.len()).unwrap_or(u8::MAX);
    out.bytes(Tag::PinBlock, block.as_bytes())
        .u8(Tag::PinLength, pin_length)
        .u32(Tag::KeyVersion, key_version)
        .u32(Tag::DestKeyVersion, dest.version);
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}
