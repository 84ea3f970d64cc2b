//! Issuing PINs: pin.generate (a random PIN the weak-PIN policy accepts), pin.rebind (a
//! card's PIN carried over to a new card) and pin.deliver (an LMK-encrypted PIN under a
//! PIN delivery key). The clear PIN exists only in here, in zeroizing types.

use crate::crypto::Pin;
use crate::crypto::pinblock::{self, Format};
use crate::keys::{KeyKind, KeysError, Operation};
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::super::keyring::CachedKey;
use super::super::pin_policy::{CallerDigits, PinPolicy};
use super::fields::{self, NewReference};
use super::pin::{IBM, write_reference};
use super::{CARD, Card, CardRef, Ctx, NEW_CARD, OpError, OpResult, Request, bad};

/// A PIN delivery: the delivery key and the PIN block format under it.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The delivery key id.
    pub key: &'a str,
    /// The format, if the request named one (default: 0 for TDES, 4 for AES).
    pub format: Option<Format>,
}

fn delivery<'a>(f: &Fields<'a>) -> Result<Option<Delivery<'a>>, OpError> {
    let format = f
        .u8(Tag::Format)?
        .map(|_| fields::format(f, Tag::Format, None))
        .transpose()?;
    match f.str(Tag::DeliveryKey)? {
        Some(key) => Ok(Some(Delivery { key, format })),
        None if format.is_some() => Err(OpError::field(
            Tag::Format,
            "format is the delivery block's: give delivery_key with it",
        )),
        None => Ok(None),
    }
}

/// The active version of a PIN delivery key: a `pin-delivery` key, or a transport key
/// while `pin_delivery_transport_keys` allows it (a migration switch).
fn delivery_key<'a>(ctx: &Ctx<'a>, id: &str) -> Result<&'a CachedKey, OpError> {
    match ctx.ring.active(id, Operation::PinDelivery) {
        Err(KeysError::WrongUsage {
            kind: KeyKind::Transport,
            ..
        }) if ctx.config.pin_delivery_transport_keys => {
            Ok(ctx.ring.active(id, Operation::TransportEncrypt)?)
        }
        other => Ok(other?),
    }
}

/// Writes the PIN enciphered under the delivery key.
fn deliver_to(
    ctx: &Ctx<'_>,
    d: &Delivery<'_>,
    pin: &Pin,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let key = delivery_key(ctx, d.key)?;
    let cipher = key
        .cipher
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "delivery key has no cipher"))?;
    let format = d.format.unwrap_or(match cipher.algorithm() {
        crate::crypto::cipher::Algorithm::Aes => Format::Iso4,
        crate::crypto::cipher::Algorithm::Tdes => Format::Iso0,
    });
    if format == Format::Iso2 || cipher.algorithm() != format.algorithm() {
        return Err(super::pin::wrong_algorithm(format));
    }
    let block = pinblock::encipher(format, cipher, pin, Some(&card.pan), &mut rand::rng())
        .map_err(bad(Tag::Format))?;
    out.bytes(Tag::DeliveryBlock, block.as_bytes())
        .u32(Tag::TransportKeyVersion, key.version);
    Ok(())
}

/// Draws at most this many PINs before giving up: with the policy's bounds at most
/// about a tenth of the 4-digit PINs are weak, so 64 weak draws in a row do not happen.
const MAX_DRAWS: usize = 64;

/// A random PIN of `len` digits that the policy does not refuse (weak draws are drawn
/// again, so the PIN is uniform among the accepted ones).
pub fn random_strong_pin(
    policy: &PinPolicy,
    len: usize,
    caller: &CallerDigits,
    rng: &mut impl rand::CryptoRng,
) -> Result<Pin, OpError> {
    for _ in 0..MAX_DRAWS {
        let pin = pinblock::random_pin(len, rng).map_err(bad(Tag::PinLength))?;
        if policy.weakness(pin.expose_secret(), None, caller).is_none() {
            return Ok(pin);
        }
    }
    Err(OpError::new(
        Status::Internal,
        "no PIN outside the weak-PIN policy was drawn",
    ))
}

/// A new PIN of `len` digits under the daemon's weak-PIN policy and the request's
/// `weak_digits` (pin.generate, pin.random).
pub fn draw(
    ctx: &Ctx<'_>,
    len: usize,
    weak_digits: &CallerDigits,
    rng: &mut impl rand::CryptoRng,
) -> Result<Pin, OpError> {
    random_strong_pin(&ctx.config.pin_policy, len, weak_digits, rng)
}

/// pin.generate (0x0022).
#[derive(Debug, Clone)]
pub struct PinGenerate<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// PIN verification key id.
    pub pvk: &'a str,
    /// PVV or offset.
    pub how: NewReference,
    /// PIN length, 4-12.
    pub pin_length: usize,
    /// Delivery, if asked.
    pub delivery: Option<Delivery<'a>>,
    /// Digit strings never to draw.
    pub weak_digits: CallerDigits,
}

impl<'a> Request<'a> for PinGenerate<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Pvk,
        Tag::Method,
        Tag::PinLength,
        Tag::Pvki,
        Tag::DeliveryKey,
        Tag::Format,
        Tag::WeakDigits,
        IBM[0],
        IBM[1],
        IBM[2],
        IBM[3],
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let card = CardRef::parse(f, CARD)?;
        let pvk = fields::key_id(f, Tag::Pvk)?;
        let how = NewReference::parse(f)?;
        let pin_length = super::pin_lmk::pin_length(f)?;
        Ok(Self {
            card,
            pvk,
            how,
            pin_length,
            delivery: delivery(f)?,
            weak_digits: fields::weak_digits(f)?,
        })
    }
}

/// pin.generate for a resolved card.
pub fn generate(
    ctx: &Ctx<'_>,
    r: &PinGenerate<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let mut rng = rand::rng();
    let pin = draw(ctx, r.pin_length, &r.weak_digits, &mut rng)?;
    write_reference(ctx, r.pvk, &pin, &card.pan, &r.how, out)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&pin, &card.pan, &mut rng)?,
    );
    if let Some(d) = &r.delivery {
        deliver_to(ctx, d, &pin, card, out)?;
    }
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

/// pin.rebind (0x0028): the old card, its blob, the new card, how to verify there.
#[derive(Debug, Clone)]
pub struct PinRebind<'a> {
    /// The card the blob belongs to.
    pub card: CardRef<'a>,
    /// Its LMK-encrypted PIN.
    pub pin_blob: &'a [u8],
    /// The new card.
    pub new_card: CardRef<'a>,
    /// PIN verification key id.
    pub pvk: &'a str,
    /// PVV or offset for the new card.
    pub how: NewReference,
}

impl<'a> Request<'a> for PinRebind<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::PinBlob,
        Tag::NewPan,
        Tag::NewToken,
        Tag::NewTokenVersion,
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
            new_card: CardRef::parse(f, NEW_CARD)?,
            pvk: fields::key_id(f, Tag::Pvk)?,
            how: NewReference::parse(f)?,
        })
    }
}

/// pin.rebind of resolved cards: the old card's PIN (from its blob) becomes the new
/// card's, with its PVV or offset and a blob bound to it. The caller resets the new
/// card's tries.
pub fn rebind(
    ctx: &Ctx<'_>,
    r: &PinRebind<'_>,
    old: &Card,
    new: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    if new.pan.digits() == old.pan.digits() {
        return Err(OpError::field(
            Tag::NewPan,
            "the new card is the old card: nothing to carry over",
        ));
    }
    let pin = ctx.secrets.open_pin(r.pin_blob, &old.pan)?;
    write_reference(ctx, r.pvk, &pin, &new.pan, &r.how, out)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&pin, &new.pan, &mut rand::rng())?,
    );
    old.write_version(Tag::TokenVersion, out);
    new.write_version(Tag::NewTokenVersion, out);
    Ok(())
}

/// pin.deliver (0x0024).
#[derive(Debug, Clone)]
pub struct PinDeliver<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// Its LMK-encrypted PIN.
    pub pin_blob: &'a [u8],
    /// The delivery key and format.
    pub delivery: Delivery<'a>,
}

impl<'a> Request<'a> for PinDeliver<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::PinBlob,
        Tag::DeliveryKey,
        Tag::Format,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let card = CardRef::parse(f, CARD)?;
        let pin_blob = fields::required(fields::pin_blob(f, false)?, Tag::PinBlob)?;
        fields::key_id(f, Tag::DeliveryKey)?;
        Ok(Self {
            card,
            pin_blob,
            delivery: fields::required(delivery(f)?, Tag::DeliveryKey)?,
        })
    }
}

/// pin.deliver: an LMK-encrypted PIN re-enciphered under a delivery key.
pub fn deliver(
    ctx: &Ctx<'_>,
    r: &PinDeliver<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let pin = ctx.secrets.open_pin(r.pin_blob, &card.pan)?;
    deliver_to(ctx, &r.delivery, &pin, card, out)?;
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    fn policy_excluding(n: u32) -> PinPolicy {
        PinPolicy {
            excluded: (0..n).map(|p| format!("{p:04}")).collect(),
            ..PinPolicy::default()
        }
    }

    #[test]
    fn random_pins_are_drawn_again_until_strong() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        // Nine PINs in ten refused: every draw that comes back is one of the rest.
        let policy = policy_excluding(9000);
        let caller = CallerDigits::parse("9001,9002").unwrap();
        for _ in 0..200 {
            let pin = random_strong_pin(&policy, 4, &caller, &mut rng).unwrap();
            let p = pin.expose_secret();
            assert!(p >= "9000", "{p}");
            assert!(
                !["9001", "9002", "9012", "9876", "9999"].contains(&p),
                "{p}"
            );
        }
        // Every PIN refused: a bounded number of draws, then an internal error.
        let e = random_strong_pin(&policy_excluding(10_000), 4, &caller, &mut rng).unwrap_err();
        assert_eq!(e.status, Status::Internal);
        // The policy off: any PIN.
        let off = PinPolicy {
            enabled: false,
            ..policy_excluding(10_000)
        };
        assert!(random_strong_pin(&off, 4, &caller, &mut rng).is_ok());
    }
}
