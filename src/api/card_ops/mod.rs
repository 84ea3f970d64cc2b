//! Card security operations and controls at the processor's paths: security codes
//! (`POST /cards/v1/pin/codes` = `/cards/pin/security-codes`), dynamic CVV2, invalid PIN
//! tries, PIN validation, and the card controls (block code, PIN block, card status,
//! card credit limit). Every secret value stays in the daemon: the facade passes tokens,
//! key ids, PIN blocks and LMK-encrypted PIN blobs, and returns ciphertext.
//!
//! Choices where the processor's documents are silent:
//! * Security codes: `usersDefined` keys are `"1"` (CVV, the card's service code), `"2"`
//!   (CVV2) and `"3"` (iCVV); each value and `pinEncrypt` is one 8-byte TDES-ECB block
//!   under the `keyAssociation`'s transport key as 16 upper-case hex characters, laid out
//!   as protocol/README.md (card.codes.export, `format` 1) says. Codes are given for
//!   inactive, active and blocked cards (the processor includes inactive cards), never
//!   for a lost, stolen or cancelled card nor one blocked for theft or fraud
//!   (`card_blocked`).
//! * Dynamic CVV2: `dcvv2ExpiryMinutes` is `"5"` (the 300 s time step; the daemon accepts
//!   one step each side, so a code stays good at least 5 minutes), `dcvv2GenerationTime`
//!   is RFC 3339 UTC to the second. `disableDCVV2` = `Y` turns dCVV2 off (static CVV2
//!   works again) and answers no code; a new code needs a usable card ([`usable`]).
//! * `blockedIndicator` is `B` when the daemon's try counter is locked or the issuer
//!   blocked the PIN (`PUT /cards/pin/status`), else `N`.
//! * PIN validation refuses, without asking the daemon, a card that is not usable
//!   (`card_not_active`, `card_blocked`) or whose PIN the issuer blocked (`card_blocked`).
//!   Every refusal is a history row `pin_refused` with its code.
//! * `PUT /cards/embosser/block`: `B` sets status `blocked` and the block code (one
//!   letter or digit); `U` restores the status the card had before the block and
//!   clears the code (a card not blocked is `card_not_blocked`).
//! * `PUT /cards/status-L8V1` `cardStatus`: 0 inactive, 1 active, 2 blocked, 3 cancelled
//!   (final: cancelled, lost, stolen and replaced cards are `card_status_final`); the
//!   same status is `status_unchanged`.
//! * `PUT /cards/credit-limit`: `accountNumber` may be a card number (the card's own
//!   limit) or an account number (the account's limit). `creditLimit` is read as
//!   `POST /account` reads it ([`minor_units`](crate::api::issuing::minor_units): whole
//!   units, kept in minor units; negative or above 10^13 minor units is
//!   `limit_out_of_range` naming the field);
//!   `creditLimitBeforeUpdate`, if sent, must equal the current limit (`limit_changed`).

mod codes;
mod limits;
mod pin;
mod status;

use std::time::SystemTime;

use axum::http::Method;

use super::config::KeyAssociation;
use super::issuing::find_card;
use crate::api::call::{ApiError, Ctx, Route};
use crate::api::domain::CardStatus;
use crate::api::store::{Card, Records};
use crate::{handler, handler_tx};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::processor(
            Method::POST,
            "/cards/v1/pin/codes",
            "/cards/v1/pin/codes",
            handler!(codes::security_codes),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/security-codes",
            "/cards/v1/pin/codes",
            handler!(codes::security_codes),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/dynamic-values",
            "/cards/pin/dynamic-values",
            handler!(codes::dynamic_values),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/invalid-attempts",
            "/cards/pin/invalid-attempts",
            handler!(pin::invalid_attempts),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/validation",
            "/cards/pin/validation",
            handler!(pin::pin_validation),
        ),
        Route::processor(
            Method::PUT,
            "/cards/embosser/block",
            "/cards/embosser/block",
            handler_tx!(status::block_code),
        ),
        Route::processor(
            Method::PUT,
            "/cards/pin/status",
            "/cards/pin/status",
            handler_tx!(pin::pin_status),
        ),
        Route::processor(
            Method::PUT,
            "/cards/status-L8V1",
            "/cards/status-L8V1",
            handler_tx!(status::card_status),
        ),
        Route::processor(
            Method::PUT,
            "/cards/credit-limit",
            "/cards/credit-limit",
            handler_tx!(limits::credit_limit),
        ),
    ]
}

/// Whether a card may be used (PIN validation, CVV checks, dCVV2): `active`, else
/// `422 card_blocked` (blocked, lost, stolen) or `422 card_not_active` (inactive,
/// replaced, cancelled, ...).
pub fn usable(card: &Card) -> Result<(), ApiError> {
    match card.status {
        CardStatus::Active => Ok(()),
        CardStatus::Blocked | CardStatus::Lost | CardStatus::Stolen => Err(
            ApiError::unprocessable("card_blocked", format!("the card is {}", card.status)),
        ),
        other => Err(ApiError::unprocessable(
            "card_not_active",
            format!("the card is {other}"),
        )),
    }
}

fn key_association<'a>(ctx: &'a Ctx, field: &str) -> Result<&'a KeyAssociation, ApiError> {
    let name = ctx.at(field).as_str().unwrap_or("").trim();
    ctx.app.config.key_associations.get(name).ok_or_else(|| {
        ApiError::unprocessable("unknown_key_association", "no such keyAssociation").field(field)
    })
}

async fn card_at(ctx: &Ctx, r: &mut Records<'_>, field: &str) -> Result<Card, ApiError> {
    let text = ctx.at(field).as_str().unwrap_or("");
    find_card(&ctx.app, r, text, field).await
}

fn org(ctx: &Ctx) -> i64 {
    ctx.at("/organizationNumber").as_i64().unwrap_or(0)
}

/// RFC 3339 UTC, seconds.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
