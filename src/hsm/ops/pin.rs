//! PIN operations: verify, translate (PCI PIN translation rules), generate, change,
//! deliver. Clear PINs exist only inside these functions, in zeroizing types.

use crate::crypto::Pin;
use crate::crypto::cipher::Algorithm;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format, PinBlock};
use crate::crypto::pvv::{self, Ibm3624Params, Offset, Pvv};
use crate::keys::{KeyKind, KeysError, Operation};
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::super::keyring::CachedKey;
use super::super::pin_policy::{CallerDigits, PinPolicy, Weakness};
use super::{Ctx, OpError, OpResult, bad, card};

const CARD: &[Tag] = &[Tag::Pan, Tag::Token, Tag::TokenVersion];
const IBM: &[Tag] = &[
    Tag::Decimalization,
    Tag::ValidationStart,
    Tag::ValidationLength,
    Tag::Pad,
];

fn allowed(extra: &[&[Tag]]) -> Vec<Tag> {
    let mut v = CARD.to_vec();
    for e in extra {
        v.extend_from_slice(e);
    }
    v
}

fn format(f: &Fields<'_>, tag: Tag, default: Option<u8>) -> Result<Format, OpError> {
    let n = match (f.u8(tag)?, default) {
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) => return Err(OpError::field(tag, format!("{} is missing", tag.name()))),
    };
    Format::from_number(n).map_err(|_| OpError::field(tag, "PIN block format must be 0-4"))
}

/// Deciphers a PIN block under any usable version of `key_tag`'s key. Returns the PIN
/// and the version that produced a valid block.
fn decipher(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    key_tag: Tag,
    block_tag: Tag,
    format: Format,
    pan: &Pan,
) -> Result<(Pin, u32), OpError> {
    if format == Format::Iso2 {
        return Err(OpError::field(Tag::Format, "format 2 is for ICC use only"));
    }
    let block = PinBlock::from_bytes(f.req_bytes(block_tag)?).map_err(bad(block_tag))?;
    let versions = ctx
        .ring
        .verifying(f.req_str(key_tag)?, Operation::PinBlock)?;
    let mut fitting = false;
    for k in versions {
        let Some(cipher) = &k.cipher else { continue };
        if cipher.algorithm() != format.algorithm() {
            continue;
        }
        fitting = true;
        if let Ok(pin) = pinblock::decipher(format, cipher, &block, Some(pan)) {
            return Ok((pin, k.version));
        }
    }
    if !fitting {
        return Err(wrong_algorithm(format));
    }
    Err(OpError::new(
        Status::InvalidPinBlock,
        "PIN block is not valid under the key (wrong key, wrong PAN, or corrupted)",
    ))
}

fn wrong_algorithm(format: Format) -> OpError {
    let need = match format.algorithm() {
        Algorithm::Aes => "an AES",
        Algorithm::Tdes => "a TDES",
    };
    OpError::new(
        Status::WrongKeyUsage,
        format!("format {} needs {need} PIN key", format.number()),
    )
}

fn ibm_params(f: &Fields<'_>, pan: &Pan) -> Result<Ibm3624Params, OpError> {
    let table = f.str(Tag::Decimalization)?.unwrap_or("0123456789012345");
    let (start, len, pad) = (
        f.u8(Tag::ValidationStart)?,
        f.u8(Tag::ValidationLength)?,
        f.str(Tag::Pad)?,
    );
    let mut params = match (start, len, pad) {
        (None, None, None) => Ibm3624Params::default_for(pan),
        (Some(s), Some(l), Some(p)) => {
            Ibm3624Params::new(table, usize::from(s), usize::from(l), p).map_err(bad(Tag::Pad))?
        }
        _ => {
            return Err(OpError::field(
                Tag::ValidationStart,
                "give validation_start, validation_length and pad together, or none",
            ));
        }
    };
    if f.has(Tag::Decimalization) {
        let with_table = Ibm3624Params::new(
            table,
            params.validation_start,
            params.validation_length,
            "F",
        )
        .map_err(bad(Tag::Decimalization))?;
        params.decimalisation_table = with_table.decimalisation_table;
    }
    if params.validation_start + params.validation_length > pan.len() {
        return Err(OpError::field(
            Tag::ValidationLength,
            "validation data runs past the PAN",
        ));
    }
    Ok(params)
}

/// The stored verification value of a request: a PVV (with PVKI) or an offset.
enum Reference {
    Pvv(Pvv, u8),
    Offset(Offset, Ibm3624Params),
}

fn reference(f: &Fields<'_>, pan: &Pan) -> Result<Reference, OpError> {
    match (f.str(Tag::Pvv)?, f.str(Tag::Offset)?) {
        (Some(p), None) => {
            let pvki = f.u8(Tag::Pvki)?.unwrap_or(1);
            if pvki > 6 {
                return Err(OpError::field(Tag::Pvki, "PVKI must be 0-6"));
            }
            Ok(Reference::Pvv(
                p.parse::<Pvv>().map_err(bad(Tag::Pvv))?,
                pvki,
            ))
        }
        (None, Some(o)) => Ok(Reference::Offset(
            Offset::new(o).map_err(bad(Tag::Offset))?,
            ibm_params(f, pan)?,
        )),
        _ => Err(OpError::field(
            Tag::Pvv,
            "give exactly one of pvv and offset",
        )),
    }
}

/// Checks a PIN against the reference under every usable PVK version.
fn check_pin(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    pin: &Pin,
    pan: &Pan,
    r: &Reference,
) -> Result<Option<u32>, OpError> {
    let mut matched = None;
    for k in ctx
        .ring
        .verifying(f.req_str(Tag::Pvk)?, Operation::PinVerification)?
    {
        let Some(pvk) = &k.pvk else { continue };
        let ok = match r {
            Reference::Pvv(pvv, pvki) => pvv::verify_visa_pvv(pvk, *pvki, pin, pan, pvv),
            Reference::Offset(offset, params) => pvv::verify_ibm3624(pvk, pin, pan, params, offset),
        }
        .unwrap_or(false);
        // Every version is computed, so timing does not tell which matched.
        if ok && matched.is_none() {
            matched = Some(k.version);
        }
    }
    Ok(matched)
}

/// The fields of pin.verify; pin.change takes these and `new_pin_block`.
const VERIFY_FIELDS: &[Tag] = &[
    Tag::Key,
    Tag::Format,
    Tag::PinBlock,
    Tag::Pvk,
    Tag::Pvv,
    Tag::Pvki,
    Tag::Offset,
];

/// pin.verify of the card `pan` (resolved by the caller): `ok`, or
/// `verification_failed` (the caller counts failures).
pub fn verify(ctx: &Ctx<'_>, f: &Fields<'_>, pan: &Pan, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&allowed(&[VERIFY_FIELDS, IBM]))?;
    let reference = reference(f, pan)?;
    let format = format(f, Tag::Format, None)?;
    let (pin, key_version) = decipher(ctx, f, Tag::Key, Tag::PinBlock, format, pan)?;
    match check_pin(ctx, f, &pin, pan, &reference)? {
        Some(pvk_version) => {
            out.u32(Tag::KeyVersion, key_version)
                .u32(Tag::PvkVersion, pvk_version);
            Ok(())
        }
        None => Err(OpError::new(
            Status::VerificationFailed,
            "PIN does not verify",
        )),
    }
}

/// pin.translate, with the PCI PIN translation rules.
pub fn translate(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&allowed(&[&[
        Tag::Key,
        Tag::Format,
        Tag::PinBlock,
        Tag::DestKey,
        Tag::DestFormat,
        Tag::DestPan,
    ]]))?;
    let from = format(f, Tag::Format, None)?;
    let to = format(f, Tag::DestFormat, None)?;
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
    let (pan, _) = card(ctx, f)?;
    let dest_pan = match f.str(Tag::DestPan)? {
        Some(d) => Pan::new(d).map_err(bad(Tag::DestPan))?,
        None => Pan::new(pan.digits()).map_err(bad(Tag::Pan))?,
    };
    if from.is_pan_bound() && to.is_pan_bound() && dest_pan.digits() != pan.digits() {
        return Err(OpError::new(
            Status::PanMismatch,
            "the PAN may not change between PAN-bound formats",
        ));
    }
    let (pin, key_version) = decipher(ctx, f, Tag::Key, Tag::PinBlock, from, &pan)?;
    let dest = ctx
        .ring
        .active(f.req_str(Tag::DestKey)?, Operation::PinBlock)?;
    let cipher = dest
        .cipher
        .as_ref()
        .filter(|c| c.algorithm() == to.algorithm())
        .ok_or_else(|| wrong_algorithm(to))?;
    let block = pinblock::encipher(to, cipher, &pin, Some(&dest_pan), &mut rand::rng())
        .map_err(bad(Tag::DestFormat))?;
    out.bytes(Tag::PinBlock, block.as_bytes())
        .u32(Tag::KeyVersion, key_version)
        .u32(Tag::DestKeyVersion, dest.version);
    Ok(())
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

/// Writes the PIN enciphered under the delivery key, if one is named.
fn deliver_to(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    pin: &Pin,
    pan: &Pan,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let Some(id) = f.str(Tag::DeliveryKey)? else {
        return Ok(());
    };
    let key = delivery_key(ctx, id)?;
    let cipher = key
        .cipher
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "delivery key has no cipher"))?;
    let default = if cipher.algorithm() == Algorithm::Aes {
        4
    } else {
        0
    };
    let fmt = format(f, Tag::Format, Some(default))?;
    if fmt == Format::Iso2 || cipher.algorithm() != fmt.algorithm() {
        return Err(wrong_algorithm(fmt));
    }
    let block = pinblock::encipher(fmt, cipher, pin, Some(pan), &mut rand::rng())
        .map_err(bad(Tag::Format))?;
    out.bytes(Tag::DeliveryBlock, block.as_bytes())
        .u32(Tag::TransportKeyVersion, key.version);
    Ok(())
}

fn write_reference(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    pin: &Pin,
    pan: &Pan,
    method_ibm: bool,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let pvk_key = ctx
        .ring
        .active(f.req_str(Tag::Pvk)?, Operation::PinVerification)?;
    let pvk = pvk_key
        .pvk
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "not a PVK"))?;
    if method_ibm {
        let params = ibm_params(f, pan)?;
        let offset = pvv::ibm3624_offset(pvk, pin, pan, &params).map_err(bad(Tag::PinLength))?;
        out.str(Tag::Offset, &offset.to_string());
    } else {
        let pvki = f.u8(Tag::Pvki)?.unwrap_or(1);
        let value = pvv::visa_pvv(pvk, pvki, pin, pan).map_err(bad(Tag::Pvki))?;
        out.str(Tag::Pvv, &value.to_string());
    }
    out.u32(Tag::PvkVersion, pvk_key.version);
    Ok(())
}

/// Whether the request asks for an IBM 3624 offset (`method` 1) rather than a PVV (0).
fn method_ibm(f: &Fields<'_>) -> Result<bool, OpError> {
    match f.u8(Tag::Method)?.unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(OpError::field(
            Tag::Method,
            "method must be 0 (PVV) or 1 (IBM 3624)",
        )),
    }
}

/// The request's `weak_digits`, if any.
fn caller_digits(f: &Fields<'_>) -> Result<CallerDigits, OpError> {
    f.str(Tag::WeakDigits)?
        .map(|t| CallerDigits::parse(t).map_err(|e| OpError::field(Tag::WeakDigits, e)))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Draws at most this many PINs before giving up: with the policy's bounds at most
/// about a tenth of the 4-digit PINs are weak, so 64 draws all weak does not happen.
const MAX_DRAWS: usize = 64;

/// A random PIN of `len` digits that the policy does not refuse (weak draws are
/// drawn again).
fn random_strong_pin(
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

/// The `weak_pin` refusal for a rule.
fn weak(w: Weakness) -> OpError {
    OpError::new(
        Status::WeakPin,
        format!(
            "the new PIN is refused by the weak-PIN policy ({})",
            w.name()
        ),
    )
    .with_reason(w.name())
}

/// pin.generate for the card `pan` (resolved by the caller).
pub fn generate(ctx: &Ctx<'_>, f: &Fields<'_>, pan: &Pan, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&allowed(&[
        &[
            Tag::Pvk,
            Tag::Method,
            Tag::PinLength,
            Tag::Pvki,
            Tag::DeliveryKey,
            Tag::Format,
            Tag::WeakDigits,
        ],
        IBM,
    ]))?;
    let ibm = method_ibm(f)?;
    let caller = caller_digits(f)?;
    let len = usize::from(f.u8(Tag::PinLength)?.unwrap_or(4));
    let mut rng = rand::rng();
    let pin = random_strong_pin(&ctx.config.pin_policy, len, &caller, &mut rng)?;
    write_reference(ctx, f, &pin, pan, ibm, out)?;
    out.bytes(Tag::PinBlob, &ctx.secrets.seal_pin(&pin, pan, &mut rng)?);
    deliver_to(ctx, f, &pin, pan, out)
}

/// pin.change of the card `pan`: verify the old PIN block, then derive the new
/// reference and blob.
pub fn change(ctx: &Ctx<'_>, f: &Fields<'_>, pan: &Pan, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&allowed(&[
        VERIFY_FIELDS,
        &[Tag::NewPinBlock, Tag::WeakDigits],
        IBM,
    ]))?;
    let reference = reference(f, pan)?;
    let caller = caller_digits(f)?;
    let fmt = format(f, Tag::Format, None)?;
    let (old, key_version) = decipher(ctx, f, Tag::Key, Tag::PinBlock, fmt, pan)?;
    let (new, _) = decipher(ctx, f, Tag::Key, Tag::NewPinBlock, fmt, pan)?;
    if check_pin(ctx, f, &old, pan, &reference)?.is_none() {
        return Err(OpError::new(
            Status::VerificationFailed,
            "old PIN does not verify",
        ));
    }
    // Only once the old PIN is proven: a caller without the card's PIN learns nothing
    // about the new block (and the current-PIN rule comes first, so the card's own PIN
    // cannot be tested against weak_digits).
    let current = Some(old.expose_secret());
    if let Some(w) = ctx
        .config
        .pin_policy
        .weakness(new.expose_secret(), current, &caller)
    {
        return Err(weak(w));
    }
    let ibm = matches!(reference, Reference::Offset(..));
    write_reference(ctx, f, &new, pan, ibm, out)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&new, pan, &mut rand::rng())?,
    )
    .u32(Tag::KeyVersion, key_version);
    Ok(())
}

/// pin.rebind: the PIN of the card `old` (resolved by the caller), sealed in
/// `pin_blob`, carried over to the new card (`new_pan` or `new_token`): the new card's
/// PVV or offset and a blob bound to it. The PIN is clear only in here. Returns the new
/// card, whose tries the caller resets.
pub fn rebind(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    old: &Pan,
    out: &mut FieldsWriter<'_>,
) -> Result<Pan, OpError> {
    f.only(&allowed(&[
        &[
            Tag::NewPan,
            Tag::NewToken,
            Tag::NewTokenVersion,
            Tag::PinBlob,
            Tag::Pvk,
            Tag::Method,
            Tag::Pvki,
        ],
        IBM,
    ]))?;
    let (new, _) = super::card_named(ctx, f, [Tag::NewPan, Tag::NewToken, Tag::NewTokenVersion])?;
    if new.digits() == old.digits() {
        return Err(OpError::field(
            Tag::NewPan,
            "the new card is the old card: nothing to carry over",
        ));
    }
    let ibm = method_ibm(f)?;
    let pin = ctx.secrets.open_pin(f.req_bytes(Tag::PinBlob)?, old)?;
    write_reference(ctx, f, &pin, &new, ibm, out)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&pin, &new, &mut rand::rng())?,
    );
    Ok(new)
}

/// pin.deliver: an LMK-encrypted PIN re-enciphered under a delivery key.
pub fn deliver(ctx: &Ctx<'_>, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    f.only(&allowed(&[&[Tag::PinBlob, Tag::DeliveryKey, Tag::Format]]))?;
    let (pan, _) = card(ctx, f)?;
    f.req_str(Tag::DeliveryKey)?;
    let pin = ctx.secrets.open_pin(f.req_bytes(Tag::PinBlob)?, &pan)?;
    deliver_to(ctx, f, &pin, &pan, out)
}

/// Opens a blob for code export (card.codes.export).
pub fn open_blob(ctx: &Ctx<'_>, f: &Fields<'_>, pan: &Pan) -> Result<Option<Pin>, OpError> {
    f.bytes(Tag::PinBlob)?
        .map(|b| ctx.secrets.open_pin(b, pan))
        .transpose()
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
            assert!(
                p >= "9000" && p != "9001" && p != "9002" && p != "9999",
                "{p}"
            );
            assert!(!["9012", "9876", "9999"].contains(&p));
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
