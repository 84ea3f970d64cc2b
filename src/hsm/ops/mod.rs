//! The operations: one typed request per opcode, parsed once from the body's fields
//! ([`Request::parse`]), and one synchronous function per operation from that request
//! to response fields. No sockets, no clock (the time comes in through [`Ctx`]), no
//! store writes (key administration lives in [`admin`], run off the connection task;
//! counted operations hand their decision to the counter store, [`counted`]).
//! [`super::dispatch`] picks the request type and the function for an opcode.
//!
//! Errors map to one wire status each ([`OpError`]); the message is short and never
//! holds a secret, a PAN or a PIN.

pub mod admin;
pub mod codes;
pub mod counted;
pub mod dcvv2;
pub mod dukpt;
mod error;
pub mod fields;
pub mod mac;
pub mod pin;
pub mod pin_issue;
pub mod pin_lmk;
mod secrets;
pub mod tokens;
pub mod translate;

use crate::crypto::pan::Pan;
use crate::crypto::token::Alphabet;
use crate::keys::Operation;
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::config::HsmConfig;
use super::counters::{CardNamer, CounterStore};
use super::keyring::KeyRing;
use super::metrics::Metrics;
use super::policy::Role;
pub use error::{OpError, OpResult, bad};
pub use secrets::DaemonSecrets;

/// Everything an operation may read.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The key cache.
    pub ring: &'a KeyRing,
    /// LMK-derived keys and configured key ids.
    pub secrets: &'a DaemonSecrets,
    /// The daemon's configuration (lockout limits, the weak-PIN policy, delivery keys).
    pub config: &'a HsmConfig,
    /// The counter store (PIN and dCVV2 tries).
    pub store: &'a dyn CounterStore,
    /// Names cards in the counter store.
    pub namer: &'a CardNamer,
    /// Counters the operations bump (weak PINs, MAC failures per key).
    pub metrics: &'a Metrics,
    /// The caller's role.
    pub role: &'a Role,
    /// Unix time now, seconds.
    pub now_unix: u64,
    /// Seconds since start.
    pub uptime: u64,
}

/// A request type: the tags it reads and how it is parsed from them. Parsing checks
/// every value it reads (a missing or bad one is `malformed_field` naming its tag);
/// what needs a key, the card or the counter store is checked when it runs.
pub trait Request<'a>: Sized {
    /// Every tag the operation reads: any other field is refused before it is parsed.
    const TAGS: &'static [Tag];
    /// The typed request.
    fn parse(f: &Fields<'a>) -> Result<Self, OpError>;
}

/// health (0x0001): no fields.
#[derive(Debug)]
pub struct Health;

impl Request<'_> for Health {
    const TAGS: &'static [Tag] = &[];
    fn parse(_: &Fields<'_>) -> Result<Self, OpError> {
        Ok(Health)
    }
}

/// health: version, LMK KCV, uptime, role.
pub fn health(ctx: &Ctx<'_>, _: &Health, out: &mut FieldsWriter<'_>) -> OpResult {
    out.str(Tag::ServerVersion, env!("CARGO_PKG_VERSION"))
        .str(Tag::LmkKcv, &ctx.secrets.lmk_kcv)
        .u64(Tag::Uptime, ctx.uptime)
        .str(Tag::Role, &ctx.role.name);
    Ok(())
}

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
pub fn authorise_keys(role: &Role, fields: &Fields<'_>) -> OpResult {
    // Administration names keys to create; the role's key patterns still apply.
    for tag in KEY_FIELDS {
        if let Some(id) = fields.str(*tag)?
            && !role.allows_key(id)
        {
            return Err(OpError::new(
                Status::NotAuthorised,
                format!("role {} may not use key {id}", role.name),
            ));
        }
    }
    Ok(())
}

/// How a request names a card: a clear PAN, or a token with the token key version
/// that made it when the caller knows it.
#[derive(Debug, Clone)]
pub enum CardRef<'a> {
    /// A clear PAN.
    Pan(Pan),
    /// A PAN token (resolved with the configured token key).
    Token {
        /// The token as sent.
        token: &'a str,
        /// The token key version, if given.
        version: Option<u32>,
    },
}

/// The tags that name a card: `[pan, token, token_version]` (or pin.rebind's new card).
pub type CardTags = [Tag; 3];
/// The request's card.
pub const CARD: CardTags = [Tag::Pan, Tag::Token, Tag::TokenVersion];
/// pin.rebind's new card.
pub const NEW_CARD: CardTags = [Tag::NewPan, Tag::NewToken, Tag::NewTokenVersion];

impl<'a> CardRef<'a> {
    /// Parses the card named by `tags`: exactly one of the PAN and the token; a token
    /// version only with a token.
    pub fn parse(f: &Fields<'a>, [pan, token, version]: CardTags) -> Result<Self, OpError> {
        match (f.str(pan)?, f.str(token)?, f.u32(version)?) {
            (Some(_), Some(_), _) => Err(OpError::field(
                token,
                format!("give {} or {}, not both", pan.name(), token.name()),
            )),
            (None, None, _) => Err(OpError::field(
                pan,
                format!(
                    "the card is missing: give {} or {}",
                    pan.name(),
                    token.name()
                ),
            )),
            (Some(_), None, Some(_)) => Err(OpError::field(
                version,
                format!("{} goes with {} only", version.name(), token.name()),
            )),
            (Some(p), None, None) => Ok(CardRef::Pan(Pan::new(p).map_err(bad(pan))?)),
            (None, Some(t), v) => Ok(CardRef::Token {
                token: t,
                version: v,
            }),
        }
    }
}

/// A card resolved to its PAN (a token detokenised once).
#[derive(Debug, Clone)]
pub struct Card {
    /// The PAN.
    pub pan: Pan,
    /// For a card named by token: the token key version that made the token.
    pub token_version: Option<u32>,
}

impl Card {
    /// Resolves a card reference with the configured token key.
    pub fn resolve(ctx: &Ctx<'_>, r: &CardRef<'_>) -> Result<Self, OpError> {
        match r {
            CardRef::Pan(pan) => Ok(Card {
                pan: pan.clone(),
                token_version: None,
            }),
            CardRef::Token { token, version } => {
                let (pan, v) = detokenise(ctx, token, *version)?;
                Ok(Card {
                    pan,
                    token_version: Some(v),
                })
            }
        }
    }

    /// Every answer about a card named by token names the token key version that read
    /// it (`tag`: `token_version`, or `new_token_version` for pin.rebind's new card).
    pub fn write_version(&self, tag: Tag, out: &mut FieldsWriter<'_>) {
        if let Some(v) = self.token_version {
            out.u32(tag, v);
        }
    }
}

/// Detokenises with the configured token key: a named version, or each usable version
/// in turn until one yields a valid PAN. Tokens with letters are alphanumeric.
pub fn detokenise(ctx: &Ctx<'_>, token: &str, version: Option<u32>) -> Result<(Pan, u32), OpError> {
    let alphabet = if token.bytes().any(|b| b.is_ascii_alphabetic()) {
        Alphabet::Alphanumeric
    } else {
        Alphabet::Numeric
    };
    let id = &ctx.secrets.token_key;
    let candidates: &[_] = match version {
        Some(v) => std::slice::from_ref(ctx.ring.version(id, Operation::Tokenise, v)?),
        None => ctx.ring.verifying(id, Operation::Tokenise)?,
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
