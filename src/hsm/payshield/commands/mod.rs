//! The supported host commands, each mapped onto one native operation: a command's
//! fields become the native request's fields ([`Plan::Native`]), the native operation
//! runs through [`crate::hsm::dispatch`] (role policy, key patterns, counters, metrics),
//! and its answer becomes the command's answer fields or error code ([`error_code`]).
//! No command computes cryptography of its own, apart from `A0` wrapping the key the
//! native `key.generate` made into its `S` block (as `cofre keys export --payshield`).
//!
//! Key fields are `S` key blocks under the LMK ([`crate::keys::payshield`]): each is
//! opened here, checked against the key cofre holds, and passed on as the key's id.

mod cvv;
mod diagnostics;
mod ibm;
mod keys;
mod lmk;
mod mac;
mod pin;
mod translate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::crypto::{ClearKey, ct_eq};
use crate::keys::KeyKind;
use crate::keys::payshield::{self, BlockError};
use crate::protocol::{Fields, FieldsWriter, Opcode, Status, Tag};

use super::super::keyring::KeyRing;
use super::super::ops::OpError;
use super::super::state::Shared;
use super::fields::Cursor;
use super::frame::ErrorCode;

/// Turns the native operation's `ok` fields into the command's answer fields.
pub type Answer = Box<dyn Fn(&Fields<'_>) -> Result<Vec<u8>, ErrorCode> + Send + Sync>;

/// What a command becomes.
pub enum Plan {
    /// Refused before any operation ran (counted under the operation, if one).
    Refuse {
        /// The native operation the command maps to (metrics), if known.
        op: Option<Opcode>,
        /// The error code to answer.
        error: ErrorCode,
    },
    /// Run the native operation `op` with `body`, then answer with `answer`.
    Native {
        /// The operation.
        op: Opcode,
        /// The request's native fields.
        body: Vec<u8>,
        /// How an `ok` answer's fields become the command's.
        answer: Answer,
    },
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::Refuse { op, error } => write!(f, "Refuse({op:?}, {})", error.as_str()),
            Plan::Native { op, .. } => write!(f, "Native({op})"),
        }
    }
}

/// What the commands need to read key fields.
pub struct Keys<'a> {
    /// The LMK-derived key block protection key.
    pub kbpk: &'a ClearKey,
    /// The keys cofre holds.
    pub ring: &'a Arc<KeyRing>,
    /// Blocks already resolved against this ring (one connection's), if any.
    pub cache: Option<&'a BlockCache>,
    /// The daemon's state, for answers that read the ring after their operation
    /// (`A0` answers the new key's block); `None` refuses those commands (`41`).
    pub shared: Option<&'a Arc<Shared>>,
}

/// The ring the entries hold for (kept alive, so it is never confused with a later one)
/// and the entries.
type Entries = (Option<Arc<KeyRing>>, HashMap<String, Resolved>);

/// A key field resolved against the ring: the key id, version and kind it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Key id.
    pub id: String,
    /// Key version.
    pub version: u32,
    /// The held version's kind.
    pub kind: KeyKind,
}

/// Key blocks one connection has resolved, so that a switch sending the same block in
/// every command pays for opening it once: block text -> [`Resolved`], valid for one
/// key ring (a reload or key administration makes a new ring, and the cache starts
/// over). Only blocks that resolved are kept, at most [`BlockCache::CAPACITY`].
#[derive(Debug, Default)]
pub struct BlockCache {
    entries: Mutex<Entries>,
}

impl BlockCache {
    /// Distinct blocks kept per connection.
    pub const CAPACITY: usize = 64;

    fn get(&self, ring: &Arc<KeyRing>, block: &str) -> Option<Resolved> {
        let g = self.entries.lock().ok()?;
        if !g.0.as_ref().is_some_and(|r| Arc::ptr_eq(r, ring)) {
            return None;
        }
        g.1.get(block).cloned()
    }

    fn put(&self, ring: &Arc<KeyRing>, block: &str, resolved: &Resolved) {
        let Ok(mut g) = self.entries.lock() else {
            return;
        };
        if !g.0.as_ref().is_some_and(|r| Arc::ptr_eq(r, ring)) || g.1.len() >= Self::CAPACITY {
            g.0 = Some(Arc::clone(ring));
            g.1.clear();
        }
        g.1.insert(block.to_owned(), resolved.clone());
    }
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys([REDACTED], {} key versions)", self.ring.len())
    }
}

impl Keys<'_> {
    /// Opens a key field and returns the id of the held key it names, if its kind is
    /// one of `kinds`. A block that fails its MAC is `A4`; one that is not a cofre block
    /// `83`; one naming an id and version cofre does not hold (or holding other
    /// material) `84`; a key of another kind `A6`.
    pub fn resolve(&self, field: &str, kinds: &[KeyKind]) -> Result<String, ErrorCode> {
        let named = self.named(field)?;
        if !kinds.contains(&named.kind) {
            return Err(ErrorCode::KEY_USAGE);
        }
        Ok(named.id)
    }

    /// Opens a key field of any kind: the id, version and kind of the held key version
    /// it names (errors as [`Keys::resolve`], without the kind check).
    pub fn named(&self, field: &str) -> Result<Resolved, ErrorCode> {
        if let Some(r) = self.cache.and_then(|c| c.get(self.ring, field)) {
            return Ok(r);
        }
        let named = payshield::unwrap(self.kbpk, field).map_err(|e| match e {
            BlockError::Mac => ErrorCode::KEY_BLOCK_MAC,
            BlockError::Format => ErrorCode::KEY_BLOCK_FORMAT,
        })?;
        let held = self
            .ring
            .held(&named.id, named.version)
            .filter(|k| ct_eq(k.key.expose_secret(), named.key.expose_secret()))
            .ok_or(ErrorCode::KEY_NOT_HELD)?;
        let resolved = Resolved {
            id: named.id.clone(),
            version: named.version,
            kind: held.kind,
        };
        if let Some(c) = self.cache {
            c.put(self.ring, field, &resolved);
        }
        Ok(resolved)
    }
}

/// The plan for one command.
pub fn plan(command: [u8; 2], data: &[u8], keys: &Keys<'_>) -> Plan {
    let (op, parsed): (Opcode, Result<(Vec<u8>, Answer), ErrorCode>) = match &command {
        b"NC" => (Opcode::Health, diagnostics::nc(data)),
        b"DC" => (Opcode::PinVerify, pin::verify_pvv(data, keys, KeyKind::Tpk)),
        b"EC" => (Opcode::PinVerify, pin::verify_pvv(data, keys, KeyKind::Zpk)),
        b"DA" => (
            Opcode::PinVerify,
            ibm::verify_offset(data, keys, KeyKind::Tpk),
        ),
        b"EA" => (
            Opcode::PinVerify,
            ibm::verify_offset(data, keys, KeyKind::Zpk),
        ),
        b"CW" => (Opcode::CvvGenerate, cvv::generate(data, keys)),
        b"CY" => (Opcode::CvvVerify, cvv::verify(data, keys)),
        b"CA" => (
            Opcode::PinTranslate,
            translate::zone(data, keys, KeyKind::Tpk),
        ),
        b"CC" => (
            Opcode::PinTranslate,
            translate::zone(data, keys, KeyKind::Zpk),
        ),
        b"G0" => (Opcode::PinTranslate, translate::dukpt(data, keys)),
        b"JA" => (Opcode::PinRandom, lmk::random(data)),
        b"JG" => (Opcode::PinTranslate, lmk::to_zpk(data, keys)),
        b"JE" => (Opcode::PinTranslate, lmk::from_zpk(data, keys)),
        b"DG" => (Opcode::PinReference, lmk::pvv(data, keys)),
        b"DE" => (Opcode::PinReference, lmk::offset(data, keys)),
        b"M6" => (Opcode::MacGenerate, mac::generate(data, keys)),
        b"M8" => (Opcode::MacVerify, mac::verify(data, keys)),
        b"BU" => (Opcode::KeyList, keys::kcv(data, keys)),
        b"A0" => (Opcode::KeyGenerate, keys::generate(data, keys)),
        _ => {
            return Plan::Refuse {
                op: None,
                error: ErrorCode::COMMAND_DISABLED,
            };
        }
    };
    match parsed {
        Ok((body, answer)) => Plan::Native { op, body, answer },
        Err(error) => Plan::Refuse {
            op: Some(op),
            error,
        },
    }
}

/// The error code of a native refusal.
pub fn error_code(e: &OpError) -> ErrorCode {
    let field = e.field.and_then(Tag::from_code);
    match e.status {
        Status::Ok => ErrorCode::OK,
        Status::VerificationFailed => ErrorCode::VERIFICATION_FAILED,
        Status::PinLocked => ErrorCode::PIN_LOCKED,
        Status::UnknownKey => ErrorCode::KEY_NOT_HELD,
        Status::WrongKeyUsage => ErrorCode::KEY_USAGE,
        Status::NotAuthorised | Status::BruteForceGuard => ErrorCode::NOT_AUTHORISED,
        Status::MalformedField => match field {
            Some(Tag::Format | Tag::DestFormat) => ErrorCode::PIN_BLOCK_FORMAT,
            Some(Tag::Pan | Tag::DestPan) => ErrorCode::ACCOUNT,
            _ => ErrorCode::INVALID_INPUT,
        },
        Status::InvalidPinBlock => ErrorCode::PIN_BLOCK,
        Status::InvalidBlob => ErrorCode::LMK_PIN,
        Status::TranslationNotAllowed => ErrorCode::PIN_BLOCK_FORMAT,
        Status::PanMismatch => ErrorCode::ACCOUNT,
        Status::KeyBlockRefused => ErrorCode::KEY_BLOCK_FORMAT,
        Status::StoreUnavailable | Status::Overloaded | Status::Internal => ErrorCode::INTERNAL,
        _ => ErrorCode::INVALID_INPUT,
    }
}

/// A native request body.
fn body(write: impl FnOnce(&mut FieldsWriter<'_>)) -> Result<Vec<u8>, ErrorCode> {
    let mut buf = Vec::new();
    let mut w = FieldsWriter::new(&mut buf);
    write(&mut w);
    w.finish().map_err(|_| ErrorCode::INVALID_INPUT)?;
    Ok(buf)
}

/// The card named by a payShield account number (the 12 rightmost PAN digits without
/// the check digit): those digits and a `0` in the check digit's place. Every
/// PAN-bound computation (ISO 9564 formats 0 and 3, the Visa PVV) reads exactly those 12
/// digits, so the result is the card's; the PIN tries are counted on this card name
/// (`protocol/payshield.md`, "PIN tries").
fn account_card(account: &str) -> String {
    format!("{account}0")
}

/// The ISO 9564 format of a payShield PIN block format code.
fn pin_format(code: &str) -> Result<u8, ErrorCode> {
    match code {
        "01" => Ok(0),
        "05" => Ok(1),
        "47" => Ok(3),
        _ => Err(ErrorCode::PIN_BLOCK_FORMAT),
    }
}

/// The payShield code of an ISO 9564 format.
fn format_code(format: u8) -> Option<&'static str> {
    match format {
        0 => Some("01"),
        1 => Some("05"),
        3 => Some("47"),
        _ => None,
    }
}

/// 16 hex characters as the 8 bytes of a TDES PIN block.
fn pin_block(c: &mut Cursor<'_>) -> Result<[u8; 8], ErrorCode> {
    let text = c.hex(16)?;
    let mut out = [0u8; 8];
    hex::decode_to_slice(text, &mut out).map_err(|_| ErrorCode::INVALID_INPUT)?;
    Ok(out)
}

/// The TDES PIN block of a native answer, as 16 hex characters.
fn pin_block_answer(f: &Fields<'_>) -> Result<String, ErrorCode> {
    f.bytes(Tag::PinBlock)
        .ok()
        .flatten()
        .filter(|b| b.len() == 8)
        .map(hex::encode_upper)
        .ok_or(ErrorCode::INTERNAL)
}

/// An answer without fields.
fn no_fields() -> Answer {
    Box::new(|_| Ok(Vec::new()))
}

#[cfg(test)]
mod tests;
