//! Typed values of the records service and the rules that belong to a value alone:
//! tenants, record numbers, card kinds, statuses and block codes, exact money, calendar
//! dates, and the Brazilian documents (CPF, CNPJ, CEP, UF).
//!
//! The bottom layer of `api`: it imports nothing else of the facade, does no I/O and
//! reads no clock (today is a parameter). A value that exists is valid: every parser is
//! total and refuses instead of rounding, clamping or guessing.

pub mod br;
mod card;
pub mod contact;
mod date;
pub mod emboss;
mod money;
mod number;

pub use card::{BlockCode, BlockType, CardKind, CardStatus, DcvvState, PinStatus};
pub use date::Date;
pub use money::Money;
pub use number::{RecordNumber, Tenant};

/// A value that did not parse: the reason is short and never repeats the value (it may
/// be a document number or a card reference).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);
