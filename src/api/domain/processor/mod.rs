//! The processor's request bodies, typed: each operation's body is parsed once, at the
//! edge, into one of these (after the spec's schema check). The fields cofre acts on
//! are domain values (record numbers, card references, money, dates, organizations); every other field the processor defines is kept, never dropped, in
//! the `extra` map of its object (`#[serde(flatten)]`), so that serialising a request
//! gives back what was sent (with numbers in their canonical form) for the record's
//! stored body. Field names are the processor's (camelCase).
//!
//! A value that does not parse is refused by its type with a stable code (see
//! [`super::refuse`]): `card_not_found` for a card reference that can name no card,
//! `invalid_number`, `invalid_amount`, `invalid_date`, `unknown_organization`.

mod cards;
mod records;

pub use cards::{
    BlockCodeUpdate, CardAction, CardActivation, CardCodes, CardStatusUpdate, CreditLimitUpdate,
    DynamicValues, EmbosserAdd, EmbosserFields, InvalidAttempts, MassInquiry, MassIssueUpdate,
    PanInquiry, PinStatusUpdate, PinValidation,
};
pub use records::{
    AccountAdd, AccountData, CustomerActivation, CustomerAdd, CustomerUpdate, InstantCard,
    InstantCardAccount, Person,
};

use serde_json::{Map, Value};

/// The fields of an object that cofre keeps but does not interpret.
pub type Extra = Map<String, Value>;

#[cfg(test)]
mod tests;
