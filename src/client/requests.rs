//! The typed arguments and outcomes of the calls: the card, PIN references, request
//! structs for operations with optional fields, and [`Verification`]. Each knows how
//! to write its fields; none prints a PAN, PIN block, PVV or token in `Debug`.

use std::fmt;

use super::{ClientError, Response};
use crate::protocol::{FieldsWriter, Status, Tag};

/// The card of a request.
#[derive(Clone)]
pub enum Card {
    /// A clear PAN (what switches send).
    Pan(String),
    /// A PAN token (what the records service holds), with its token key version if known.
    Token {
        /// The token.
        token: String,
        /// The token key version that made it.
        version: Option<u32>,
    },
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Card::Pan(_) => f.write_str("Card::Pan([REDACTED])"),
            Card::Token { version, .. } => write!(f, "Card::Token([REDACTED], v{version:?})"),
        }
    }
}

impl Card {
    pub(super) fn write(&self, w: &mut FieldsWriter<'_>) {
        match self {
            Card::Pan(p) => {
                w.str(Tag::Pan, p);
            }
            Card::Token { token, version } => {
                w.str(Tag::Token, token);
                if let Some(v) = version {
                    w.u32(Tag::TokenVersion, *v);
                }
            }
        }
    }
}

impl Card {
    /// Writes the card as pin.rebind's new card (`new_pan` or `new_token`).
    pub(super) fn write_as_new(&self, w: &mut FieldsWriter<'_>) {
        match self {
            Card::Pan(p) => {
                w.str(Tag::NewPan, p);
            }
            Card::Token { token, version } => {
                w.str(Tag::NewToken, token);
                if let Some(v) = version {
                    w.u32(Tag::NewTokenVersion, *v);
                }
            }
        }
    }
}

/// IBM 3624 validation data parameters (protocol/README.md: give all or none).
#[derive(Debug, Clone)]
pub struct IbmParams {
    /// Decimalisation table, 16 digits.
    pub decimalization: String,
    /// First PAN digit of the validation data (0-based).
    pub validation_start: u8,
    /// Number of PAN digits.
    pub validation_length: u8,
    /// Pad character (hex).
    pub pad: String,
}

impl IbmParams {
    pub(super) fn write(&self, w: &mut FieldsWriter<'_>) {
        w.str(Tag::Decimalization, &self.decimalization)
            .u8(Tag::ValidationStart, self.validation_start)
            .u8(Tag::ValidationLength, self.validation_length)
            .str(Tag::Pad, &self.pad);
    }
}

/// The stored PIN verification value of a card.
#[derive(Clone)]
pub enum PinReference {
    /// Visa PVV with its PVKI.
    Pvv {
        /// 4 digits.
        pvv: String,
        /// 0-6.
        pvki: u8,
    },
    /// IBM 3624 offset, with optional non-default parameters.
    Offset {
        /// The offset digits.
        offset: String,
        /// Parameters (`None`: the defaults of protocol/README.md).
        params: Option<IbmParams>,
    },
}

impl fmt::Debug for PinReference {
    // A PVV or offset with the PVK narrows the PIN down: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinReference::Pvv { pvki, .. } => write!(f, "PinReference::Pvv(pvki {pvki})"),
            PinReference::Offset { params, .. } => {
                write!(f, "PinReference::Offset(params {params:?})")
            }
        }
    }
}

impl PinReference {
    pub(super) fn write(&self, w: &mut FieldsWriter<'_>) {
        match self {
            PinReference::Pvv { pvv, pvki } => {
                w.str(Tag::Pvv, pvv).u8(Tag::Pvki, *pvki);
            }
            PinReference::Offset { offset, params } => {
                w.str(Tag::Offset, offset);
                if let Some(p) = params {
                    p.write(w);
                }
            }
        }
    }
}

/// How `pin.generate` derives the card's verification value.
#[derive(Debug, Clone)]
pub enum PinMethod {
    /// Visa PVV under the given PVKI (0-6; the daemon's default is 1).
    Pvv {
        /// PVV key index.
        pvki: u8,
    },
    /// IBM 3624 offset (`None`: the default parameters).
    Ibm3624(Option<IbmParams>),
}

impl PinMethod {
    pub(super) fn write(&self, w: &mut FieldsWriter<'_>) {
        match self {
            PinMethod::Pvv { pvki } => {
                w.u8(Tag::Method, 0).u8(Tag::Pvki, *pvki);
            }
            PinMethod::Ibm3624(params) => {
                w.u8(Tag::Method, 1);
                if let Some(p) = params {
                    p.write(w);
                }
            }
        }
    }
}

/// A PIN delivery: the transport key and the PIN block format under it.
#[derive(Debug, Clone)]
pub struct PinDelivery {
    /// Transport key id.
    pub key: String,
    /// ISO 9564 format (`None`: 0 for a TDES key, 4 for an AES key).
    pub format: Option<u8>,
}

impl PinDelivery {
    pub(super) fn write(&self, w: &mut FieldsWriter<'_>) {
        w.str(Tag::DeliveryKey, &self.key);
        if let Some(f) = self.format {
            w.u8(Tag::Format, f);
        }
    }
}

/// The alphabet of a PAN token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alphabet {
    /// Digits only (the default).
    #[default]
    Numeric,
    /// Digits and letters.
    Alphanumeric,
}

impl Alphabet {
    pub(super) fn code(self) -> u8 {
        match self {
            Alphabet::Numeric => 0,
            Alphabet::Alphanumeric => 1,
        }
    }
}

/// Which dCVV2 time step or counter a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dcvv2Moment {
    /// The daemon's clock.
    #[default]
    Now,
    /// A counter moving factor.
    Counter(u64),
    /// The time step of this Unix time (seconds).
    UnixTime(u64),
}

impl Dcvv2Moment {
    pub(super) fn write(self, w: &mut FieldsWriter<'_>) {
        match self {
            Dcvv2Moment::Now => {}
            Dcvv2Moment::Counter(c) => {
                w.u64(Tag::Counter, c);
            }
            Dcvv2Moment::UnixTime(t) => {
                w.u64(Tag::UnixTime, t);
            }
        }
    }
}

/// pan.generate.
#[derive(Debug, Clone, Default)]
pub struct PanGenerateRequest {
    /// Issuer BIN, 6-11 digits.
    pub bin: String,
    /// PAN length (`None`: 16).
    pub pan_length: Option<u8>,
    /// Token alphabet.
    pub alphabet: Alphabet,
    /// Transport key to receive the PAN encrypted under.
    pub transport_key: Option<String>,
}

/// pin.translate.
#[derive(Clone)]
pub struct PinTranslateRequest {
    /// The card.
    pub card: Card,
    /// Source key (ZPK or TPK).
    pub key: String,
    /// Source format.
    pub format: u8,
    /// The enciphered PIN block.
    pub pin_block: Vec<u8>,
    /// Destination key.
    pub dest_key: String,
    /// Destination format.
    pub dest_format: u8,
    /// Destination PAN (PAN-bound formats: must equal the card's).
    pub dest_pan: Option<String>,
}

/// pin.generate.
#[derive(Debug, Clone)]
pub struct PinGenerateRequest {
    /// The card.
    pub card: Card,
    /// PIN verification key.
    pub pvk: String,
    /// PVV or IBM 3624 offset.
    pub method: PinMethod,
    /// PIN length (`None`: 4).
    pub pin_length: Option<u8>,
    /// Also deliver the PIN under a transport key.
    pub delivery: Option<PinDelivery>,
}

/// pin.rebind: a card's PIN (its LMK-encrypted `pin_blob`) carried over to a new card
/// (a reissue that keeps the PIN).
#[derive(Clone)]
pub struct PinRebindRequest {
    /// The card the blob belongs to.
    pub card: Card,
    /// The old card's LMK-encrypted PIN.
    pub pin_blob: Vec<u8>,
    /// The new card.
    pub new_card: Card,
    /// PIN verification key for the new card's PVV or offset.
    pub pvk: String,
    /// PVV or IBM 3624 offset.
    pub method: PinMethod,
}

impl fmt::Debug for PinRebindRequest {
    // The blob is opaque, but it is the PIN: never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinRebindRequest")
            .field("card", &self.card)
            .field("new_card", &self.new_card)
            .field("pvk", &self.pvk)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// pin.change: the old PIN block is verified first, then replaced.
#[derive(Clone)]
pub struct PinChangeRequest {
    /// The card.
    pub card: Card,
    /// Key of both PIN blocks.
    pub key: String,
    /// Format of both PIN blocks.
    pub format: u8,
    /// The current PIN, enciphered.
    pub pin_block: Vec<u8>,
    /// The new PIN, enciphered.
    pub new_pin_block: Vec<u8>,
    /// PIN verification key.
    pub pvk: String,
    /// The card's current PVV or offset.
    pub reference: PinReference,
}

/// The card and key of dcvv2.generate and dcvv2.verify.
#[derive(Debug, Clone)]
pub struct Dcvv2Request {
    /// The card.
    pub card: Card,
    /// dCVV2 key.
    pub key: String,
    /// Card expiry, YYMM.
    pub expiry: String,
    /// Time step or counter.
    pub moment: Dcvv2Moment,
}

/// key.generate.
#[derive(Debug, Clone, Default)]
pub struct KeyGenerateRequest {
    /// New key id.
    pub key: String,
    /// Key kind (zpk, pvk, cvk, mac, ...).
    pub kind: String,
    /// Algorithm (tdes, aes, hmac; `None`: the kind's default).
    pub algorithm: Option<String>,
    /// Length in bytes (`None`: the algorithm's default).
    pub key_length: Option<u8>,
    /// Whether the key may be exported (`None`: the daemon's default).
    pub exportable: Option<bool>,
    /// MAC keys: the shortest MAC verification accepts (`None`: the full length).
    pub mac_min_length: Option<u8>,
}

macro_rules! redacted_debug {
    ($ty:ident, $($shown:ident),*) => {
        impl fmt::Debug for $ty {
            // PIN blocks are never shown, not even enciphered.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    .finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(
    PinTranslateRequest,
    card,
    key,
    format,
    dest_key,
    dest_format
);
redacted_debug!(PinChangeRequest, card, key, format, pvk, reference);

/// The outcome of a verification: a PIN, CVV, dCVV2 or MAC that does not verify is an
/// answer, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// Verified.
    Verified {
        /// Version of the key that verified (the PVK's for PINs when no other is named).
        key_version: Option<u32>,
    },
    /// Did not verify (and, for PINs and dCVV2, the failure was counted).
    Failed,
    /// The card's tries are exhausted; nothing was verified.
    Locked,
    /// dCVV2: the code was already used.
    Replayed,
    /// dCVV2: the code belongs to a time step outside the window (not counted).
    Expired,
}

impl Verification {
    /// Whether the value verified.
    pub fn is_verified(self) -> bool {
        matches!(self, Verification::Verified { .. })
    }

    /// Reads a verification's response; statuses that are not an outcome of the check
    /// itself (`unknown_key`, `not_authorised`, ...) are errors.
    pub(super) fn from_response(r: Response) -> Result<Self, ClientError> {
        match r.status() {
            Some(Status::Ok) => Ok(Verification::Verified {
                key_version: r.u32(Tag::KeyVersion).or_else(|| r.u32(Tag::PvkVersion)),
            }),
            Some(Status::VerificationFailed) => Ok(Verification::Failed),
            Some(Status::PinLocked) => Ok(Verification::Locked),
            Some(Status::Replayed) => Ok(Verification::Replayed),
            Some(Status::Expired) => Ok(Verification::Expired),
            _ => Err(r.status_error()),
        }
    }
}

/// The outcome of pin.change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PinChange {
    /// Changed: the response carries the new `pvv` or `offset`, `pin_blob`,
    /// `key_version` and `pvk_version`.
    Changed(Response),
    /// The old PIN did not verify (counted).
    WrongPin,
    /// The card's tries are exhausted; nothing was looked at.
    Locked,
}
