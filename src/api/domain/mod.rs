//! Typed values of the records service and the rules that belong to a value alone:
//! tenants, record numbers, card kinds, statuses and block codes, exact money, calendar
//! dates, and the Brazilian documents (CPF, CNPJ, CEP, UF).
//!
//! The bottom layer of `api`: it imports nothing else of the facade, does no I/O and
//! reads no clock (today is a parameter). A value that exists is valid: every parser is
//! total and refuses instead of rounding, clamping or guessing.

pub mod br;
mod card;
mod card_ref;
pub mod contact;
mod date;
pub mod emboss;
mod money;
mod number;
pub mod processor;

pub use card::{BlockCode, BlockType, CardKind, CardStatus, DcvvState, PinStatus};
pub use card_ref::{CardRef, MAX_CARD_REF};
pub use date::Date;
pub use money::Money;
pub use number::{IntoRecordId, Organization, RecordNumber, Tenant, blank_or_number};

/// A value that did not parse: the reason is short and never repeats the value (it may
/// be a document number or a card reference).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

/// The error a domain value's deserializer gives: `code: reason`, where `code` is the
/// stable refusal code the edge answers (422 naming the field). The reason never repeats
/// the value.
pub fn refuse<E: serde::de::Error>(code: &'static str, reason: &str) -> E {
    E::custom(format_args!("{code}: {reason}"))
}

/// The codes [`refuse`] may give, for the edge to map a deserializer's message back to
/// its code.
pub const REFUSAL_CODES: &[&str] = &[
    "card_not_found",
    "invalid_number",
    "invalid_amount",
    "invalid_date",
    "unknown_organization",
];
