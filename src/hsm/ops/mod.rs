//! Request execution: one synchronous function per operation, from parsed fields to
//! response fields. No sockets, no clock (the time comes in through [`Ctx`]), no
//! store writes (key administration lives in [`admin`], run off the connection task).
//!
//! Errors map to one wire status each ([`OpError`]); the message is short and never
//! holds a secret, a PAN or a PIN.

pub mod admin;
mod card;
pub mod counted;
mod pin;
mod secrets;

use crate::crypto::pan::Pan;
use crate::crypto::token::Alphabet;
use crate::keys::{KeysError, Operation};
use crate::protocol::{FieldError, Fields, FieldsWriter, Opcode, Status, Tag};

use super::keyring::KeyRing;
use super::policy::Role;
pub use secrets::DaemonSecrets;

/// Everything an operation may read.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The key cache.
    pub ring: &'a KeyRing,
    /// LMK-derived keys and configured key ids.
    pub secrets: &'a DaemonSecrets,
    /// The daemon's configuration (the weak-PIN policy, delivery keys).
    pub config: &'a super::config::HsmConfig,
    /// The caller's role.
    pub role: &'a Role,
    /// Unix time now, seconds.
    pub now_unix: u64,
    /// Seconds since start.
    pub uptime: u64,
}

/// A refusal: status, short message, and the field at fault if one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Wire status.
    pub status: Status,
    /// Short reason (never secret).
    pub message: String,
    /// Tag of the field at fault.
    pub field: Option<u8>,
    /// Machine-readable detail (e.g. `dcvv2_active`).
    pub reason: Option<&'static str>,
}

impl OpError {
    /// A refusal with a status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            reason: None,
        }
    }

    /// Adds a machine-readable reason.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// A malformed field.
    pub fn field(tag: Tag, message: impl Into<String>) -> Self {
        Self {
            status: Status::MalformedField,
            message: message.into(),
            field: Some(tag.code()),
            reason: None,
        }
    }

    /// Writes the error body.
    pub fn write(&self, out: &mut FieldsWriter<'_>) {
        out.str(Tag::Message, &sanitize(&self.message));
        if let Some(f) = self.field {
            out.u8(Tag::Field, f);
        }
        if let Some(r) = self.reason {
            out.str(Tag::Reason, r);
        }
    }
}

/// Messages are `str` fields: printable ASCII, at most 255 bytes.
fn sanitize(message: &str) -> String {
    message
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(255)
        .collect()
}

impl From<FieldError> for OpError {
    fn from(e: FieldError) -> Self {
        Self {
            status: Status::MalformedField,
            message: e.to_string(),
            field: Some(e.tag),
            reason: None,
        }
    }
}

impl From<KeysError> for OpError {
    fn from(e: KeysError) -> Self {
        let status = match &e {
            KeysError::UnknownKey(_) | KeysError::NoUsableVersion(_) => Status::UnknownKey,
            KeysError::WrongUsage { .. } => Status::WrongKeyUsage,
            KeysError::NotExportable(_) => Status::NotExportable,
            KeysError::Invalid(_) => Status::MalformedField,
            KeysError::Crypto(crate::crypto::Error::Tr31(_)) => Status::KeyBlockRefused,
            _ => Status::Internal,
        };
        Self::new(status, e.to_string())
    }
}

/// A crypto-layer refusal of a value from `tag`.
pub(crate) fn bad(tag: Tag) -> impl Fn(crate::crypto::Error) -> OpError {
    move |e| OpError::field(tag, format!("{}: {e}", tag.name()))
}

/// Result of an operation.
pub type OpResult = Result<(), OpError>;

/// Key ids named by a request, for the role's key patterns.
pub const KEY_FIELDS: &[Tag] = &[
    Tag::Key,
    Tag::DestKey,
    Tag::Pvk,
    Tag::DeliveryKey,
    Tag::TransportKey,
    Tag::Kek,
];

/// Checks every key id in the request against the role.
pub fn authorise_keys(role: &Role, fields: &Fields<'_>, op: Opcode) -> OpResult {
    // Administration names keys to create; the role's key patterns still apply.
    for tag in KEY_FIELDS {
        if let Some(id) = fields.str(*tag)?
            && !role.allows_key(id)
        {
            return Err(OpError::new(
                Status::NotAuthorised,
                format!("role {} may not use key {id} for {op}", role.name),
            ));
        }
    }
    Ok(())
}

/// Whether an operation writes to disk (run off the connection task).
pub fn is_admin(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::KeyList
            | Opcode::KeyGenerate
            | Opcode::KeyImport
            | Opcode::KeyExport
            | Opcode::KeyRotate
            | Opcode::KeyRetire
    )
}

/// Executes a non-administrative operation.
pub fn execute(ctx: &Ctx<'_>, op: Opcode, f: &Fields<'_>, out: &mut FieldsWriter<'_>) -> OpResult {
    match op {
        Opcode::Health => {
            f.only(&[])?;
            out.str(Tag::ServerVersion, env!("CARGO_PKG_VERSION"))
                .str(Tag::LmkKcv, &ctx.secrets.lmk_kcv)
                .u64(Tag::Uptime, ctx.uptime)
                .str(Tag::Role, &ctx.role.name);
            Ok(())
        }
        Opcode::PanGenerate => card::pan_generate(ctx, f, out),
        Opcode::Tokenise => card::tokenise(ctx, f, out),
        Opcode::Detokenise => card::detokenise_op(ctx, f, out),
        Opcode::PinTranslate => pin::translate(ctx, f, out),
        Opcode::PinDeliver => pin::deliver(ctx, f, out),
        Opcode::CvvGenerate => card::cvv_generate(ctx, f, out),
        Opcode::SecurityCodesExport => card::codes_export(ctx, f, out),
        Opcode::Dcvv2Generate => card::dcvv2_generate(ctx, f, out),
        Opcode::MacGenerate => card::mac_generate(ctx, f, out),
        Opcode::MacVerify => card::mac_verify(ctx, f, out),
        _ => Err(OpError::new(
            Status::Internal,
            format!("{op} is not executed here"),
        )),
    }
}

/// The card of a request: a clear `pan`, or a `token` (with an optional
/// `token_version`) detokenised with the configured token key. Returns the PAN and,
/// for a token, the token key version that produced it.
pub fn card(ctx: &Ctx<'_>, f: &Fields<'_>) -> Result<(Pan, Option<u32>), OpError> {
    card_named(ctx, f, [Tag::Pan, Tag::Token, Tag::TokenVersion])
}

/// A card named by the three tags `[pan, token, token_version]` (the request's card,
/// or pin.rebind's new card).
pub fn card_named(
    ctx: &Ctx<'_>,
    f: &Fields<'_>,
    [pan_tag, token_tag, version_tag]: [Tag; 3],
) -> Result<(Pan, Option<u32>), OpError> {
    match (f.str(pan_tag)?, f.str(token_tag)?) {
        (Some(_), Some(_)) => Err(OpError::field(
            token_tag,
            format!("give {} or {}, not both", pan_tag.name(), token_tag.name()),
        )),
        (None, None) => Err(OpError::field(
            pan_tag,
            format!(
                "the card is missing: give {} or {}",
                pan_tag.name(),
                token_tag.name()
            ),
        )),
        (Some(pan), None) => Ok((Pan::new(pan).map_err(bad(pan_tag))?, None)),
        (None, Some(token)) => {
            let (pan, v) = detokenise(ctx, token, f.u32(version_tag)?)?;
            Ok((pan, Some(v)))
        }
    }
}

/// Detokenises with the configured token key: a named version, or each usable version
/// in turn until one yields a Luhn-valid PAN.
pub fn detokenise(ctx: &Ctx<'_>, token: &str, version: Option<u32>) -> Result<(Pan, u32), OpError> {
    let alphabet = if token.bytes().any(|b| b.is_ascii_alphabetic()) {
        Alphabet::Alphanumeric
    } else {
        Alphabet::Numeric
    };
    let id = &ctx.secrets.token_key;
    let candidates: Vec<_> = match version {
        Some(v) => vec![ctx.ring.version(id, Operation::Tokenise, v)?],
        None => ctx
            .ring
            .verifying(id, Operation::Tokenise)?
            .iter()
            .collect(),
    };
    for k in candidates {
        if let Some(tk) = &k.token
            && let Ok(pan) = tk.detokenise(token, alphabet)
        {
            return Ok((pan, k.version));
        }
    }
    Err(OpError::new(
        Status::InvalidToken,
        "not a token under the token key",
    ))
}
