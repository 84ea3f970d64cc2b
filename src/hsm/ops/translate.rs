//! pin.translate: a PIN block re-enciphered under another key and/or format, with the
//! PCI PIN translation rules (PCI PIN Security Requirement 3-3). Either side may be the
//! PIN under the LMK (`pin_blob`, an ISO 9564 format 4 block bound to the card): a
//! `pin_blob` in place of `key`, `format` and `pin_block`, or no `dest_key` and
//! `dest_format` for a `pin_blob` answer (payShield `JG` and `JE`). For the rules the
//! LMK form is format 4.

use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format};
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::dukpt::decipher_received;
use super::pin::{EncipheredPin, enciphered, wrong_algorithm};
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, bad, fields};

/// Where the PIN comes from.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    /// A PIN block under a PIN key (or a BDK with a KSN).
    Block(EncipheredPin<'a>),
    /// The card's PIN under the LMK.
    Lmk(&'a [u8]),
}

/// Where the PIN goes.
#[derive(Debug, Clone)]
pub enum Destination<'a> {
    /// A PIN block under a PIN key.
    Block {
        /// Destination key id.
        key: &'a str,
        /// Destination format.
        format: Format,
    },
    /// The card's PIN under the LMK.
    Lmk,
}

/// The source's tags other than `pin_blob`: a blob comes alone.
const BLOCK_SOURCE: [Tag; 4] = [Tag::Key, Tag::Ksn, Tag::Format, Tag::PinBlock];

impl<'a> Source<'a> {
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let Some(blob) = fields::pin_blob(f, true)? else {
            return Ok(Source::Block(enciphered(f, Tag::PinBlock)?));
        };
        for tag in BLOCK_SOURCE {
            if f.has(tag) {
                return Err(OpError::field(
                    tag,
                    "give pin_blob, or key, format and pin_block, not both",
                ));
            }
        }
        Ok(Source::Lmk(blob))
    }

    /// The format the PCI rules see: the LMK form is format 4.
    fn format(&self) -> Format {
        match self {
            Source::Block(b) => b.format,
            Source::Lmk(_) => Format::Iso4,
        }
    }
}

impl<'a> Destination<'a> {
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        if !f.has(Tag::DestKey) && !f.has(Tag::DestFormat) {
            return Ok(Destination::Lmk);
        }
        Ok(Destination::Block {
            key: fields::key_id(f, Tag::DestKey)?,
            format: fields::format(f, Tag::DestFormat, None)?,
        })
    }

    fn format(&self) -> Format {
        match self {
            Destination::Block { format, .. } => *format,
            Destination::Lmk => Format::Iso4,
        }
    }
}

/// pin.translate (0x0021). The PCI rules on formats are checked here, at parse time.
#[derive(Debug, Clone)]
pub struct PinTranslate<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// The source PIN.
    pub source: Source<'a>,
    /// The destination.
    pub dest: Destination<'a>,
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
        Tag::PinBlob,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let card = CardRef::parse(f, CARD)?;
        let source = Source::parse(f)?;
        let dest = Destination::parse(f)?;
        if matches!((&source, &dest), (Source::Lmk(_), Destination::Lmk)) {
            return Err(OpError::field(
                Tag::DestKey,
                "from the LMK form the destination is a key: give dest_key",
            ));
        }
        let dest_pan = f
            .str(Tag::DestPan)?
            .map(|d| Pan::new(d).map_err(bad(Tag::DestPan)))
            .transpose()?;
        let (from, to) = (source.format(), dest.format());
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
            source,
            dest,
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
    let (from, to) = (r.source.format(), r.dest.format());
    let dest_pan = r.dest_pan.as_ref().unwrap_or(&card.pan);
    if from.is_pan_bound() && to.is_pan_bound() && dest_pan.digits() != card.pan.digits() {
        return Err(OpError::new(
            Status::PanMismatch,
            "the PAN may not change between PAN-bound formats",
        ));
    }
    let (pin, key_version) = match &r.source {
        Source::Block(b) => {
            let (pin, v) = decipher_received(ctx, &b.key, from, &b.block, &card.pan)?;
            (pin, Some(v))
        }
        Source::Lmk(blob) => (ctx.secrets.open_pin(blob, &card.pan)?, None),
    };
    let dest = match r.dest {
        Destination::Block { key, .. } => Some(ctx.ring.active(key, Operation::PinBlock)?),
        Destination::Lmk => None,
    };
    match dest {
        Some(dest) => {
            let cipher = dest
                .cipher
                .as_ref()
                .filter(|c| c.algorithm() == to.algorithm())
                .ok_or_else(|| wrong_algorithm(to))?;
            let block = pinblock::encipher(to, cipher, &pin, Some(dest_pan), &mut rand::rng())
                .map_err(bad(Tag::DestFormat))?;
            out.bytes(Tag::PinBlock, block.as_bytes());
            write_length(&pin, key_version, out);
            out.u32(Tag::DestKeyVersion, dest.version);
        }
        None => {
            let blob = ctx.secrets.seal_pin(&pin, &card.pan, &mut rand::rng())?;
            out.bytes(Tag::PinBlob, &blob);
            write_length(&pin, key_version, out);
        }
    }
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// The PIN's length, as HSM host commands report it on translation (payShield CA, CC,
/// G0, JE; never the PIN itself), then the source key's version (none for a blob).
fn write_length(pin: &crate::crypto::Pin, key_version: Option<u32>, out: &mut FieldsWriter<'_>) {
    out.u8(Tag::PinLength, u8::try_from(pin.len()).unwrap_or(u8::MAX));
    if let Some(v) = key_version {
        out.u32(Tag::KeyVersion, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BLOB: [u8; 25] = [1; 25];

    /// What the source and destination parse to, or the refusal's status and field.
    #[derive(Debug, PartialEq)]
    enum Parsed {
        Ok {
            lmk_source: bool,
            dest: Option<(String, Format)>,
        },
        Refused(Status, Option<Tag>),
    }

    /// Parses a pin.translate body written by `write` (the card is always a PAN).
    fn parse(write: impl FnOnce(&mut FieldsWriter<'_>)) -> Parsed {
        let mut buf = Vec::new();
        let mut w = FieldsWriter::new(&mut buf);
        w.str(Tag::Pan, "4111111111111111");
        write(&mut w);
        w.finish().unwrap();
        let f = Fields::parse_strict(&buf).unwrap();
        f.only(PinTranslate::TAGS).unwrap();
        match PinTranslate::parse(&f) {
            Ok(r) => Parsed::Ok {
                lmk_source: matches!(r.source, Source::Lmk(_)),
                dest: match r.dest {
                    Destination::Block { key, format } => Some((key.to_owned(), format)),
                    Destination::Lmk => None,
                },
            },
            Err(e) => Parsed::Refused(e.status, e.field.and_then(Tag::from_code)),
        }
    }

    fn block_source(w: &mut FieldsWriter<'_>, format: u8) {
        w.str(Tag::Key, "zpk.a")
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, &[0; 8]);
    }

    fn refused(status: Status, tag: Option<Tag>) -> Parsed {
        Parsed::Refused(status, tag)
    }

    #[test]
    fn either_side_may_be_the_lmk_form() {
        // A block into the LMK form: neither dest_key nor dest_format.
        let into_lmk = Parsed::Ok {
            lmk_source: false,
            dest: None,
        };
        assert_eq!(parse(|w| block_source(w, 0)), into_lmk);
        // Format 1 (not PAN-bound) may go into the LMK form, as into format 4.
        assert_eq!(parse(|w| block_source(w, 1)), into_lmk);
        // The LMK form into a zone key.
        let r = parse(|w| {
            w.bytes(Tag::PinBlob, &BLOB)
                .str(Tag::DestKey, "zpk.b")
                .u8(Tag::DestFormat, 3);
        });
        let from_lmk = Parsed::Ok {
            lmk_source: true,
            dest: Some(("zpk.b".to_owned(), Format::Iso3)),
        };
        assert_eq!(r, from_lmk);
    }

    #[test]
    fn the_lmk_form_comes_alone_and_follows_the_format_4_rules() {
        for tag in [Tag::Key, Tag::Format, Tag::PinBlock, Tag::Ksn] {
            let r = parse(|w| {
                w.bytes(Tag::PinBlob, &BLOB);
                match tag {
                    Tag::Key => w.str(tag, "zpk.a"),
                    Tag::Format => w.u8(tag, 0),
                    _ => w.bytes(tag, &[0; 10]),
                };
                w.str(Tag::DestKey, "zpk.b").u8(Tag::DestFormat, 0);
            });
            assert_eq!(r, refused(Status::MalformedField, Some(tag)), "{tag:?}");
        }
        // From the LMK form to the LMK form: a destination key is missing.
        let r = parse(|w| {
            w.bytes(Tag::PinBlob, &BLOB);
        });
        assert_eq!(r, refused(Status::MalformedField, Some(Tag::DestKey)));
        // Half a destination.
        let r = parse(|w| {
            block_source(w, 0);
            w.u8(Tag::DestFormat, 0);
        });
        assert_eq!(r, refused(Status::MalformedField, Some(Tag::DestKey)));
        let r = parse(|w| {
            block_source(w, 0);
            w.str(Tag::DestKey, "zpk.b");
        });
        assert_eq!(r, refused(Status::MalformedField, Some(Tag::DestFormat)));
        // Nothing but format 1 goes into format 1; format 2 never goes anywhere.
        let r = parse(|w| {
            w.bytes(Tag::PinBlob, &BLOB)
                .str(Tag::DestKey, "zpk.b")
                .u8(Tag::DestFormat, 1);
        });
        assert_eq!(r, refused(Status::TranslationNotAllowed, None));
        let r = parse(|w| block_source(w, 2));
        assert_eq!(r, refused(Status::TranslationNotAllowed, None));
        // A blob of another length.
        let r = parse(|w| {
            w.bytes(Tag::PinBlob, &BLOB[..24])
                .str(Tag::DestKey, "zpk.b")
                .u8(Tag::DestFormat, 0);
        });
        assert_eq!(r, refused(Status::MalformedField, Some(Tag::PinBlob)));
    }
}
