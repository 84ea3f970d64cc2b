//! PIN verification: pin.verify and pin.change (the old PIN verified, the new one judged
//! by the weak-PIN policy), and what PIN operations share: deciphering a PIN block under
//! a ZPK or TPK, checking a PIN against a PVV or offset, making a new one. Clear PINs
//! exist only inside these functions, in zeroizing types.

use crate::crypto::cipher::Algorithm;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format, PinBlock};
use crate::crypto::pvv::{self, Ibm3624Params, Offset};
use crate::crypto::{Pin, ct_eq};
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::super::pin_policy::{CallerDigits, Weakness};
use super::dukpt::{PinKey, decipher_received};
use super::fields::{self, NewReference, Reference};
use super::{CARD, Card, CardRef, Ctx, OpError, OpResult, Request, bad};

/// The IBM 3624 parameter tags.
pub const IBM: [Tag; 4] = [
    Tag::Decimalization,
    Tag::ValidationStart,
    Tag::ValidationLength,
    Tag::Pad,
];

/// A PIN block as received: its key, format and block.
#[derive(Debug, Clone)]
pub struct EncipheredPin<'a> {
    /// A ZPK or TPK id, or a BDK id with the terminal's KSN.
    pub key: PinKey<'a>,
    /// ISO 9564 format.
    pub format: Format,
    /// The block.
    pub block: PinBlock,
}

/// Deciphers `block` under any usable version of `key` whose algorithm fits the format.
/// Returns the PIN and the version that produced a valid block.
pub fn decipher(
    ctx: &Ctx<'_>,
    key: &str,
    format: Format,
    block: &PinBlock,
    pan: &Pan,
) -> Result<(Pin, u32), OpError> {
    if format == Format::Iso2 {
        return Err(OpError::field(Tag::Format, "format 2 is for ICC use only"));
    }
    let mut fitting = false;
    for k in ctx.ring.verifying(key, Operation::PinBlock)? {
        let Some(cipher) = &k.cipher else { continue };
        if cipher.algorithm() != format.algorithm() {
            continue;
        }
        fitting = true;
        if let Ok(pin) = pinblock::decipher(format, cipher, block, Some(pan)) {
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

/// A format whose cipher the key does not have: formats 0, 1, 3 need TDES, 4 AES.
pub fn wrong_algorithm(format: Format) -> OpError {
    let need = match format.algorithm() {
        Algorithm::Aes => "an AES",
        Algorithm::Tdes => "a TDES",
    };
    OpError::new(
        Status::WrongKeyUsage,
        format!("format {} needs {need} PIN key", format.number()),
    )
}

/// The IBM 3624 check: the offset's length is the PIN check length `m`, at most the
/// PIN's length `n`; the rightmost `m` digits of `PIN - natural PIN` (digit-wise mod 10)
/// must equal the offset (IBM z/OS ICSF "3624 PIN Verification Algorithm"; IBM CCA
/// "IBM-PINO": with a shorter offset the arithmetic starts at the low-order PIN digit).
fn offset_matches(
    pvk: &pvv::Pvk,
    pin: &Pin,
    pan: &Pan,
    params: &Ibm3624Params,
    offset: &Offset,
) -> bool {
    let (n, m) = (pin.len(), offset.len());
    if m > n {
        return false;
    }
    let Ok(full) = pvv::ibm3624_offset(pvk, pin, pan, params) else {
        return false;
    };
    let (full, presented) = (full.to_string(), offset.to_string());
    ct_eq(&full.as_bytes()[n - m..], presented.as_bytes())
}

/// Checks a PIN against the reference under every usable version of the PVK (all are
/// computed, so timing does not tell which matched).
fn check_pin(
    ctx: &Ctx<'_>,
    pvk_id: &str,
    pin: &Pin,
    pan: &Pan,
    reference: &Reference,
) -> Result<Option<u32>, OpError> {
    let params = match reference {
        Reference::Offset(_, spec) => Some(spec.params_for(pan)?),
        Reference::Pvv(..) => None,
    };
    let mut matched = None;
    for k in ctx.ring.verifying(pvk_id, Operation::PinVerification)? {
        let Some(pvk) = &k.pvk else { continue };
        let ok = match (reference, &params) {
            (Reference::Pvv(pvv, pvki), _) => {
                pvv::verify_visa_pvv(pvk, *pvki, pin, pan, pvv).unwrap_or(false)
            }
            (Reference::Offset(offset, _), Some(p)) => offset_matches(pvk, pin, pan, p, offset),
            (Reference::Offset(..), None) => false,
        };
        if ok && matched.is_none() {
            matched = Some(k.version);
        }
    }
    Ok(matched)
}

/// Writes the new PIN's PVV or offset (full length: the check length is the PIN's)
/// under the PVK's active version.
pub fn write_reference(
    ctx: &Ctx<'_>,
    pvk_id: &str,
    pin: &Pin,
    pan: &Pan,
    how: &NewReference,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let pvk_key = ctx.ring.active(pvk_id, Operation::PinVerification)?;
    let pvk = pvk_key
        .pvk
        .as_ref()
        .ok_or_else(|| OpError::new(Status::WrongKeyUsage, "not a PVK"))?;
    match how {
        NewReference::Offset(spec) => {
            let params = spec.params_for(pan)?;
            let offset = pvv::ibm3624_offset(pvk, pin, pan, &params).map_err(bad(Tag::Pvk))?;
            out.str(Tag::Offset, &offset.to_string());
        }
        NewReference::Pvv(pvki) => {
            let value = pvv::visa_pvv(pvk, *pvki, pin, pan).map_err(bad(Tag::Pvki))?;
            out.str(Tag::Pvv, &value.to_string());
        }
    }
    out.u32(Tag::PvkVersion, pvk_key.version);
    Ok(())
}

/// pin.verify (0x0020).
#[derive(Debug, Clone)]
pub struct PinVerify<'a> {
    /// The card.
    pub card: CardRef<'a>,
    /// The PIN block.
    pub pin: EncipheredPin<'a>,
    /// PIN verification key id.
    pub pvk: &'a str,
    /// PVV or offset.
    pub reference: Reference,
}

const VERIFY_TAGS: &[Tag] = &[
    Tag::Pan,
    Tag::Token,
    Tag::TokenVersion,
    Tag::Key,
    Tag::Ksn,
    Tag::PinKeyType,
    Tag::Format,
    Tag::PinBlock,
    Tag::Pvk,
    Tag::Pvv,
    Tag::Pvki,
    Tag::Offset,
    Tag::Decimalization,
    Tag::ValidationStart,
    Tag::ValidationLength,
    Tag::Pad,
];

/// Reads `key` (with `ksn`, a BDK), `format` and the block under `block_tag`.
pub fn enciphered<'a>(f: &Fields<'a>, block_tag: Tag) -> Result<EncipheredPin<'a>, OpError> {
    let key = PinKey::parse(f, fields::key_id(f, Tag::Key)?)?;
    let format = fields::format(f, Tag::Format, None)?;
    key.check_format(format)?;
    Ok(EncipheredPin {
        key,
        format,
        block: fields::pin_block(f, block_tag, format)?,
    })
}

impl<'a> Request<'a> for PinVerify<'a> {
    const TAGS: &'static [Tag] = VERIFY_TAGS;
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        Ok(Self {
            card: CardRef::parse(f, CARD)?,
            pin: enciphered(f, Tag::PinBlock)?,
            pvk: fields::key_id(f, Tag::Pvk)?,
            reference: Reference::parse(f)?,
        })
    }
}

/// pin.verify of a resolved card: `ok`, or `verification_failed` (the caller counts
/// failures).
pub fn verify(
    ctx: &Ctx<'_>,
    r: &PinVerify<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let (pin, key_version) =
        decipher_received(ctx, &r.pin.key, r.pin.format, &r.pin.block, &card.pan)?;
    match check_pin(ctx, r.pvk, &pin, &card.pan, &r.reference)? {
        Some(pvk_version) => {
            out.u32(Tag::KeyVersion, key_version)
                .u32(Tag::PvkVersion, pvk_version);
            card.write_version(Tag::TokenVersion, out);
            Ok(())
        }
        None => Err(OpError::new(
            Status::VerificationFailed,
            "PIN does not verify",
        )),
    }
}

/// pin.change (0x0023): pin.verify's fields, the new PIN block and `weak_digits`.
#[derive(Debug, Clone)]
pub struct PinChange<'a> {
    /// The old PIN, as pin.verify checks it.
    pub verify: PinVerify<'a>,
    /// The new PIN block (same key and format).
    pub new_block: PinBlock,
    /// Digit strings the new PIN must not equal.
    pub weak_digits: CallerDigits,
}

impl<'a> Request<'a> for PinChange<'a> {
    const TAGS: &'static [Tag] = &[
        Tag::Pan,
        Tag::Token,
        Tag::TokenVersion,
        Tag::Key,
        Tag::Format,
        Tag::PinBlock,
        Tag::NewPinBlock,
        Tag::Pvk,
        Tag::Pvv,
        Tag::Pvki,
        Tag::Offset,
        Tag::Decimalization,
        Tag::ValidationStart,
        Tag::ValidationLength,
        Tag::Pad,
        Tag::WeakDigits,
    ];
    fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let verify = PinVerify::parse(f)?;
        let new_block = fields::pin_block(f, Tag::NewPinBlock, verify.pin.format)?;
        Ok(Self {
            verify,
            new_block,
            weak_digits: fields::weak_digits(f)?,
        })
    }
}

/// The `weak_pin` refusal for a rule.
pub fn weak(ctx: &Ctx<'_>, w: Weakness) -> OpError {
    ctx.metrics.weak_pins.with_label_values(&[w.name()]).inc();
    OpError::new(
        Status::WeakPin,
        format!(
            "the new PIN is refused by the weak-PIN policy ({})",
            w.name()
        ),
    )
    .with_reason(w.name())
}

/// pin.change of a resolved card: verify the old PIN block, judge the new PIN, then
/// derive the new reference (same method and PVKI) and blob.
pub fn change(
    ctx: &Ctx<'_>,
    r: &PinChange<'_>,
    card: &Card,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let v = &r.verify;
    let pan = &card.pan;
    let (old, key_version) = decipher_received(ctx, &v.pin.key, v.pin.format, &v.pin.block, pan)?;
    let (new, _) = decipher_received(ctx, &v.pin.key, v.pin.format, &r.new_block, pan)?;
    if check_pin(ctx, v.pvk, &old, pan, &v.reference)?.is_none() {
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
        .weakness(new.expose_secret(), current, &r.weak_digits)
    {
        return Err(weak(ctx, w));
    }
    let how = match &v.reference {
        Reference::Pvv(_, pvki) => NewReference::Pvv(*pvki),
        Reference::Offset(_, spec) => NewReference::Offset(spec.clone()),
    };
    write_reference(ctx, v.pvk, &new, pan, &how, out)?;
    out.bytes(
        Tag::PinBlob,
        &ctx.secrets.seal_pin(&new, pan, &mut rand::rng())?,
    )
    .u32(Tag::KeyVersion, key_version);
    card.write_version(Tag::TokenVersion, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::ClearKey;

    // IBM z/OS ICSF, "3624 PIN Verification Algorithm": an offset of m digits checks
    // the rightmost m digits of a PIN of n >= m digits. Offsets are computed with the
    // full-length algorithm (tested against psec's published example in crypto::pvv).
    #[test]
    fn a_short_offset_checks_the_rightmost_pin_digits() {
        let pvk = pvv::Pvk::new(&ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap())
            .unwrap();
        let pan = Pan::new("4111111111111111").unwrap();
        let params = Ibm3624Params::default_for(&pan);
        let pin = Pin::new("739152").unwrap();
        let full = pvv::ibm3624_offset(&pvk, &pin, &pan, &params)
            .unwrap()
            .to_string();
        let short = Offset::new(&full[2..]).unwrap();
        assert!(offset_matches(&pvk, &pin, &pan, &params, &short));
        assert!(offset_matches(
            &pvk,
            &pin,
            &pan,
            &params,
            &Offset::new(&full).unwrap()
        ));
        // The leading digits are not checked; the rightmost are.
        assert!(offset_matches(
            &pvk,
            &Pin::new("009152").unwrap(),
            &pan,
            &params,
            &short
        ));
        assert!(!offset_matches(
            &pvk,
            &Pin::new("739153").unwrap(),
            &pan,
            &params,
            &short
        ));
        // A PIN shorter than the check length fails.
        assert!(!offset_matches(
            &pvk,
            &Pin::new("9152").unwrap(),
            &pan,
            &params,
            &Offset::new(&full).unwrap()
        ));
    }
}
