//! Typed values read from a request's fields, each checked once at the edge: a value
//! that breaks its rule is `malformed_field` naming its tag, and once a value exists it
//! is valid (an expiry has a real month, a PIN block the length of its format).

use crate::crypto::cvv::Cvv;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{Format, PinBlock};
use crate::crypto::pvv::{Ibm3624Params, Offset, Pvv};
use crate::protocol::{Fields, Tag};

use super::super::pin_policy::CallerDigits;
use super::{OpError, bad};

/// A required value: `malformed_field` naming `tag` when it is absent.
pub fn required<T>(value: Option<T>, tag: Tag) -> Result<T, OpError> {
    value.ok_or_else(|| OpError::field(tag, format!("{} is missing", tag.name())))
}

/// A required key id (its existence and usage are checked when it is used).
pub fn key_id<'a>(f: &Fields<'a>, tag: Tag) -> Result<&'a str, OpError> {
    required(f.str(tag)?, tag)
}

fn digits(text: &str, n: usize) -> bool {
    text.len() == n && text.bytes().all(|b| b.is_ascii_digit())
}

/// A card's expiry, `YYMM` with a month 01-12 (an impossible month is nearly always
/// MMYY sent by mistake, and would silently give a wrong CVV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry<'a>(&'a str);

impl<'a> Expiry<'a> {
    /// Reads the `expiry` field.
    pub fn parse(f: &Fields<'a>) -> Result<Self, OpError> {
        let text = required(f.str(Tag::Expiry)?, Tag::Expiry)?;
        let month = text.get(2..).and_then(|m| m.parse::<u8>().ok());
        if !digits(text, 4) || !matches!(month, Some(1..=12)) {
            return Err(OpError::field(
                Tag::Expiry,
                "expiry must be YYMM with a month 01-12",
            ));
        }
        Ok(Self(text))
    }

    /// The four digits.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// A service code: 3 digits.
pub fn service_code<'a>(f: &Fields<'a>) -> Result<&'a str, OpError> {
    let text = required(f.str(Tag::ServiceCode)?, Tag::ServiceCode)?;
    if !digits(text, 3) {
        return Err(OpError::field(
            Tag::ServiceCode,
            "service_code must be 3 digits",
        ));
    }
    Ok(text)
}

/// A presented 3-digit code (CVV family).
pub fn cvv(f: &Fields<'_>, tag: Tag) -> Result<Cvv, OpError> {
    Cvv::new(required(f.str(tag)?, tag)?).map_err(bad(tag))
}

/// A presented dCVV2: exactly 3 digits (anything else is malformed, never a counted
/// failure: it reveals nothing about the code).
pub fn dcvv2_code<'a>(f: &Fields<'a>) -> Result<&'a str, OpError> {
    let text = required(f.str(Tag::Dcvv2)?, Tag::Dcvv2)?;
    if !digits(text, 3) {
        return Err(OpError::field(Tag::Dcvv2, "dcvv2 must be 3 digits"));
    }
    Ok(text)
}

/// An ISO 9564 PIN block format, 0-4 (`default` when the field is absent, if any).
pub fn format(f: &Fields<'_>, tag: Tag, default: Option<u8>) -> Result<Format, OpError> {
    let n = required(f.u8(tag)?.or(default), tag)?;
    Format::from_number(n).map_err(|_| OpError::field(tag, "PIN block format must be 0-4"))
}

/// An enciphered PIN block of `format`'s length: 8 bytes for formats 0-3, 16 for 4.
pub fn pin_block(f: &Fields<'_>, tag: Tag, format: Format) -> Result<PinBlock, OpError> {
    let bytes = required(f.bytes(tag)?, tag)?;
    if bytes.len() != format.block_len() {
        return Err(OpError::field(
            tag,
            format!(
                "a format {} PIN block is {} bytes",
                format.number(),
                format.block_len()
            ),
        ));
    }
    PinBlock::from_bytes(bytes).map_err(bad(tag))
}

/// Bytes in an LMK-encrypted PIN (`pin_blob`): version, format 4 block, 8-byte MAC.
pub const BLOB_LEN: usize = 25;

/// A `pin_blob` of the right length (whether it opens for the card is checked later:
/// `invalid_blob`).
pub fn pin_blob<'a>(f: &Fields<'a>, optional: bool) -> Result<Option<&'a [u8]>, OpError> {
    let blob = match (f.bytes(Tag::PinBlob)?, optional) {
        (Some(b), _) => b,
        (None, true) => return Ok(None),
        (None, false) => return required(None, Tag::PinBlob),
    };
    if blob.len() != BLOB_LEN {
        return Err(OpError::field(Tag::PinBlob, "a pin_blob is 25 bytes"));
    }
    Ok(Some(blob))
}

/// The PVV key index, 0-6 (default 1).
pub fn pvki(f: &Fields<'_>) -> Result<u8, OpError> {
    match f.u8(Tag::Pvki)?.unwrap_or(1) {
        n @ 0..=6 => Ok(n),
        _ => Err(OpError::field(Tag::Pvki, "PVKI must be 0-6")),
    }
}

/// `method`: false for a Visa PVV (0, the default), true for an IBM 3624 offset (1).
pub fn method_ibm(f: &Fields<'_>) -> Result<bool, OpError> {
    match f.u8(Tag::Method)?.unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(OpError::field(
            Tag::Method,
            "method must be 0 (PVV) or 1 (IBM 3624)",
        )),
    }
}

/// The request's `weak_digits` (none when absent).
pub fn weak_digits(f: &Fields<'_>) -> Result<CallerDigits, OpError> {
    match f.str(Tag::WeakDigits)? {
        Some(t) => CallerDigits::parse(t).map_err(|e| OpError::field(Tag::WeakDigits, e)),
        None => Ok(CallerDigits::default()),
    }
}

/// IBM 3624 parameters as sent: the table, and the validation data's start, length and
/// pad (all three or none; none means the 12 rightmost PAN digits excluding the check
/// digit, which depend on the card's PAN: see [`IbmSpec::params_for`]).
#[derive(Debug, Clone)]
pub struct IbmSpec {
    table: [u8; 16],
    explicit: Option<(usize, usize, u8)>,
}

const DEFAULT_TABLE: &str = "0123456789012345";

impl IbmSpec {
    /// Reads `decimalization`, `validation_start`, `validation_length` and `pad`.
    pub fn parse(f: &Fields<'_>) -> Result<Self, OpError> {
        let table = f.str(Tag::Decimalization)?.unwrap_or(DEFAULT_TABLE);
        let parsed = Ibm3624Params::new(table, 0, 12, "F").map_err(bad(Tag::Decimalization))?;
        let explicit = match (
            f.u8(Tag::ValidationStart)?,
            f.u8(Tag::ValidationLength)?,
            f.str(Tag::Pad)?,
        ) {
            (None, None, None) => None,
            (Some(s), Some(l), Some(p)) => {
                let p = Ibm3624Params::new(DEFAULT_TABLE, usize::from(s), usize::from(l), p)
                    .map_err(|e| {
                        let tag = if l == 0 || l > 16 {
                            Tag::ValidationLength
                        } else {
                            Tag::Pad
                        };
                        bad(tag)(e)
                    })?;
                Some((p.validation_start, p.validation_length, p.pad))
            }
            _ => {
                return Err(OpError::field(
                    Tag::ValidationStart,
                    "give validation_start, validation_length and pad together, or none",
                ));
            }
        };
        Ok(Self {
            table: parsed.decimalisation_table,
            explicit,
        })
    }

    /// The parameters for this card: the validation data must lie inside its PAN.
    pub fn params_for(&self, pan: &Pan) -> Result<Ibm3624Params, OpError> {
        let mut params = Ibm3624Params::default_for(pan);
        params.decimalisation_table = self.table;
        if let Some((start, len, pad)) = self.explicit {
            if start + len > pan.len() {
                return Err(OpError::field(
                    Tag::ValidationLength,
                    "validation data runs past the PAN",
                ));
            }
            (
                params.validation_start,
                params.validation_length,
                params.pad,
            ) = (start, len, pad);
        }
        Ok(params)
    }
}

/// The stored verification value of a request: a Visa PVV with its PVKI, or an IBM 3624
/// offset with its parameters.
#[derive(Debug, Clone)]
pub enum Reference {
    /// Visa PVV.
    Pvv(Pvv, u8),
    /// IBM 3624 offset.
    Offset(Offset, IbmSpec),
}

/// The IBM 3624 parameter tags.
const IBM_TAGS: [Tag; 4] = [
    Tag::Decimalization,
    Tag::ValidationStart,
    Tag::ValidationLength,
    Tag::Pad,
];

/// Refuses the fields of the other method: a PVKI with an offset, IBM 3624 parameters
/// with a PVV.
fn only_for_method(f: &Fields<'_>, ibm: bool) -> Result<(), OpError> {
    let stray = if ibm {
        f.has(Tag::Pvki).then_some(Tag::Pvki)
    } else {
        IBM_TAGS.into_iter().find(|t| f.has(*t))
    };
    match stray {
        Some(tag) => Err(OpError::field(
            tag,
            format!(
                "{} belongs to the other PIN verification method",
                tag.name()
            ),
        )),
        None => Ok(()),
    }
}

impl Reference {
    /// Reads exactly one of `pvv` (with `pvki`) and `offset` (with the IBM parameters).
    pub fn parse(f: &Fields<'_>) -> Result<Self, OpError> {
        match (f.str(Tag::Pvv)?, f.str(Tag::Offset)?) {
            (Some(p), None) => {
                only_for_method(f, false)?;
                Ok(Reference::Pvv(p.parse().map_err(bad(Tag::Pvv))?, pvki(f)?))
            }
            (None, Some(o)) => {
                only_for_method(f, true)?;
                Ok(Reference::Offset(
                    Offset::new(o).map_err(bad(Tag::Offset))?,
                    IbmSpec::parse(f)?,
                ))
            }
            _ => Err(OpError::field(
                Tag::Pvv,
                "give exactly one of pvv and offset",
            )),
        }
    }
}

/// How a new PIN's reference is made: a Visa PVV under a PVKI, or an IBM 3624 offset.
#[derive(Debug, Clone)]
pub enum NewReference {
    /// Visa PVV.
    Pvv(u8),
    /// IBM 3624 offset.
    Offset(IbmSpec),
}

impl NewReference {
    /// Reads `method`, `pvki` and the IBM parameters.
    pub fn parse(f: &Fields<'_>) -> Result<Self, OpError> {
        let ibm = method_ibm(f)?;
        only_for_method(f, ibm)?;
        if ibm {
            Ok(NewReference::Offset(IbmSpec::parse(f)?))
        } else {
            Ok(NewReference::Pvv(pvki(f)?))
        }
    }
}
