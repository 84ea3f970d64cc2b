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
//!   cards in any status (the processor includes inactive cards).
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
//!   `POST /account` reads it ([`minor_units`]: whole units, kept in minor units; negative
//!   or above 10^13 minor units is `limit_out_of_range` naming the field);
//!   `creditLimitBeforeUpdate`, if sent, must equal the current limit (`limit_changed`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use serde_json::{Value, json};

use super::accounts::minor_units;
use super::config::KeyAssociation;
use super::http::{ApiError, Ctx, Reply, Route};
use super::issuing::{card_number, find_card, hsm_card, number};
use super::store::{Card, StoreError};
use crate::client::{ClientError, Dcvv2Moment, Dcvv2Request, PinReference, Verification};
use crate::handler;
use crate::protocol::{Status, Tag};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::processor(
            Method::POST,
            "/cards/v1/pin/codes",
            "/cards/v1/pin/codes",
            handler!(security_codes),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/security-codes",
            "/cards/v1/pin/codes",
            handler!(security_codes),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/dynamic-values",
            "/cards/pin/dynamic-values",
            handler!(dynamic_values),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/invalid-attempts",
            "/cards/pin/invalid-attempts",
            handler!(invalid_attempts),
        ),
        Route::processor(
            Method::POST,
            "/cards/pin/validation",
            "/cards/pin/validation",
            handler!(pin_validation),
        ),
        Route::processor(
            Method::PUT,
            "/cards/embosser/block",
            "/cards/embosser/block",
            handler!(block_code),
        ),
        Route::processor(
            Method::PUT,
            "/cards/pin/status",
            "/cards/pin/status",
            handler!(pin_status),
        ),
        Route::processor(
            Method::PUT,
            "/cards/status-L8V1",
            "/cards/status-L8V1",
            handler!(card_status),
        ),
        Route::processor(
            Method::PUT,
            "/cards/credit-limit",
            "/cards/credit-limit",
            handler!(credit_limit),
        ),
    ]
}

/// Whether a card may be used (PIN validation, CVV checks, dCVV2): `active`, else
/// `422 card_blocked` (blocked, lost, stolen) or `422 card_not_active` (inactive,
/// replaced, cancelled, ...).
pub fn usable(card: &Card) -> Result<(), ApiError> {
    match card.status.as_str() {
        "active" => Ok(()),
        "blocked" | "lost" | "stolen" => Err(ApiError::unprocessable(
            "card_blocked",
            format!("the card is {}", card.status),
        )),
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

async fn card_at(ctx: &Ctx, field: &str) -> Result<Card, ApiError> {
    let text = ctx.at(field).as_str().unwrap_or("");
    find_card(&ctx.app, &ctx.tenant, text, field).await
}

fn org(ctx: &Ctx) -> i64 {
    ctx.at("/organizationNumber").as_i64().unwrap_or(0)
}

fn daemon_said(e: &ClientError) -> Option<Status> {
    match e {
        ClientError::Status { status, .. } => Some(*status),
        _ => None,
    }
}

/// RFC 3339 UTC, seconds.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

async fn security_codes(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    let ka = key_association(&ctx, "/keyAssociation")?;
    let blob = if card.pin_blob.is_empty() {
        None
    } else {
        Some(
            hex::decode(&card.pin_blob)
                .map_err(|_| ApiError::internal("a stored PIN blob is not hex"))?,
        )
    };
    let encrypted = ctx
        .app
        .hsm
        .codes_export_blocks(
            &hsm_card(&card),
            &ctx.app.config.keys.cvk,
            &card.expiry,
            &card.service_code,
            &ka.transport_key,
            blob.as_deref(),
        )
        .await?;
    let blocks: Vec<String> = encrypted.chunks(8).map(hex::encode_upper).collect();
    if !(blocks.len() == 3 || blocks.len() == 4) || encrypted.len() % 8 != 0 {
        return Err(ApiError::internal(
            "card.codes.export answered an odd length",
        ));
    }
    let users: Vec<Value> = blocks[..3]
        .iter()
        .enumerate()
        .map(|(i, b)| json!({"key": (i + 1).to_string(), "value": b}))
        .collect();
    let mut out = json!({ "usersDefined": users });
    if let Some(pin) = blocks.get(3) {
        out["pinEncrypt"] = json!(pin);
    }
    tracing::info!(card = card.id, "security codes exported");
    Reply::ok(out)
}

fn account_type(card: &Card) -> &'static str {
    if matches!(card.kind.as_str(), "debit" | "prepaid") {
        "Debit"
    } else {
        "Credit"
    }
}

async fn dynamic_values(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    key_association(&ctx, "/keyAssociation")?;
    let hcard = hsm_card(&card);
    let mut out = json!({
        "cardNumber": card_number(&card),
        "accountType": account_type(&card),
    });
    if ctx.at("/disableDCVV2").as_str() == Some("Y") {
        ctx.app.hsm.dcvv2_set(&hcard, false).await?;
        if card.dcvv2 != "off" {
            ctx.app
                .store
                .update_card(&ctx.client_id, card.id, "dcvv2_off", |c| {
                    c.dcvv2 = "off".into();
                })
                .await?;
        }
        return Reply::ok(out);
    }
    usable(&card).map_err(|e| e.field("/cardNumber"))?;
    if card.dcvv2 != "on" {
        // Enabled before the first code is handed out: static CVV2 stops working
        // before anyone can use the dynamic one.
        ctx.app.hsm.dcvv2_set(&hcard, true).await?;
        ctx.app
            .store
            .update_card(&ctx.client_id, card.id, "dcvv2_on", |c| {
                c.dcvv2 = "on".into();
            })
            .await?;
    }
    let now = SystemTime::now();
    let r = ctx
        .app
        .hsm
        .dcvv2_generate(&Dcvv2Request {
            card: hcard,
            key: ctx.app.config.keys.dcvv2.clone(),
            expiry: card.expiry.clone(),
            moment: Dcvv2Moment::Now,
        })
        .await?;
    let code = r
        .str(Tag::Dcvv2)
        .ok_or_else(|| ApiError::internal("dcvv2.generate answered without a code"))?;
    out["dcvv2"] = json!(code);
    out["dcvv2ExpiryMinutes"] = json!("5");
    out["dcvv2GenerationTime"] = json!(rfc3339(now));
    Reply::ok(out)
}

async fn invalid_attempts(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    let r = ctx.app.hsm.pin_attempts(&hsm_card(&card)).await?;
    let attempts = r.u32(Tag::Attempts).unwrap_or(0);
    let limit = r.u32(Tag::Limit).unwrap_or(0);
    let locked = r.bool(Tag::Locked).unwrap_or(false);
    let blocked = locked || card.pin_status == "blocked";
    let mut area = json!({
        "cardNumber": card_number(&card),
        "cardInvalidPinTries": attempts,
        "maxNumberInvalidPinTries": limit,
        "blockedIndicator": if blocked { "B" } else { "N" },
    });
    if let Some(seq) = ctx.at("/cardSequenceNumber").as_i64() {
        area["cardSequenceNumber"] = json!(seq);
    }
    if let Some(t) = r.u64(Tag::LastFailure).filter(|t| *t > 0) {
        let date = rfc3339(UNIX_EPOCH + Duration::from_secs(t));
        area["cardInvalidPinTryDate"] = json!(date.get(..10).unwrap_or(""));
    }
    Reply::ok(json!({ "outputArea": area }))
}

/// Records a refused PIN validation and returns the refusal.
async fn refuse(ctx: &Ctx, card: &Card, err: ApiError) -> ApiError {
    let detail = json!({"code": err.code, "channel": ctx.at("/channel")});
    if let Err(e) = ctx
        .app
        .store
        .card_event(&ctx.client_id, card.id, "pin_refused", &detail)
        .await
    {
        return e.into();
    }
    // The cardholder's occurrences (GET /api/v1/portadores/{id}/ocorrencias) show it too.
    if let Err(e) = ctx
        .app
        .store
        .record_occurrence(card.customer_id, "pin_refused", err.code, &ctx.client_id)
        .await
    {
        return e.into();
    }
    tracing::info!(card = card.id, code = err.code, "PIN validation refused");
    err
}

async fn pin_validation(ctx: Ctx) -> Result<Reply, ApiError> {
    let field = "/currentPinBlock";
    let card = card_at(&ctx, "/cardNumber").await?;
    let ka = key_association(&ctx, "/keyAssociation")?;
    if let Err(e) = usable(&card) {
        return Err(refuse(&ctx, &card, e.field("/cardNumber")).await);
    }
    if card.pin_status == "blocked" {
        let e = ApiError::unprocessable("card_blocked", "the card's PIN is blocked")
            .field("/cardNumber");
        return Err(refuse(&ctx, &card, e).await);
    }
    let text = ctx.at(field).as_str().unwrap_or("");
    let block = match hex::decode(text) {
        Ok(b) if b.len() == 8 => b,
        _ => {
            let e = ApiError::unprocessable("invalid_pin_block", "currentPinBlock: 16 hex digits")
                .field(field);
            return Err(refuse(&ctx, &card, e).await);
        }
    };
    let outcome = ctx
        .app
        .hsm
        .pin_verify(
            &hsm_card(&card),
            &ka.pin_key,
            0,
            &block,
            &ctx.app.config.keys.pvk,
            &PinReference::Pvv {
                pvv: card.pvv.clone(),
                pvki: 1,
            },
        )
        .await;
    let refusal = match outcome {
        Ok(Verification::Verified { .. }) => {
            return Reply::ok(json!({ "cardNumber": card_number(&card) }));
        }
        Ok(Verification::Locked) => {
            ApiError::unprocessable("pin_locked", "exceeded number of invalid PIN tries")
        }
        Ok(_) => ApiError::unprocessable("invalid_pin", "incorrect PIN provided").field(field),
        Err(e) if daemon_said(&e) == Some(Status::InvalidPinBlock) => {
            ApiError::unprocessable("invalid_pin_block", "invalid current PIN block value")
                .field(field)
        }
        Err(e) if daemon_said(&e) == Some(Status::PinLocked) => {
            ApiError::unprocessable("pin_locked", "exceeded number of invalid PIN tries")
        }
        Err(e) => return Err(e.into()),
    };
    Err(refuse(&ctx, &card, refusal).await)
}

async fn block_code(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    let code = ctx
        .at("/blockCode")
        .as_str()
        .unwrap_or("")
        .trim()
        .to_owned();
    let function = ctx.at("/functionCode").as_str().unwrap_or("");
    let updated = match function {
        "B" => {
            if code.len() != 1 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ApiError::unprocessable(
                    "invalid_block_code",
                    "blockCode: one letter or digit",
                )
                .field("/blockCode"));
            }
            if !matches!(card.status.as_str(), "active" | "inactive" | "blocked") {
                return Err(ApiError::unprocessable(
                    "card_status_final",
                    format!("the card is {}", card.status),
                )
                .field("/cardNumber"));
            }
            let upper = code.to_ascii_uppercase();
            ctx.app
                .store
                .update_card(&ctx.client_id, card.id, "block", |c| {
                    if c.status != "blocked"
                        && let Some(o) = c.body.as_object_mut()
                    {
                        o.insert("statusBeforeBlock".into(), json!(c.status));
                    }
                    c.status = "blocked".into();
                    c.block_code = upper;
                })
                .await?
        }
        "U" => {
            if card.status != "blocked" {
                return Err(ApiError::unprocessable(
                    "card_not_blocked",
                    format!("the card is {}", card.status),
                )
                .field("/cardNumber"));
            }
            ctx.app
                .store
                .update_card(&ctx.client_id, card.id, "unblock", |c| {
                    let before = c
                        .body
                        .as_object_mut()
                        .and_then(|o| o.remove("statusBeforeBlock"));
                    c.status = before
                        .as_ref()
                        .and_then(Value::as_str)
                        .filter(|s| matches!(*s, "active" | "inactive"))
                        .unwrap_or("active")
                        .to_owned();
                    c.block_code.clear();
                })
                .await?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_function_code",
                "functionCode: B (block) or U (unblock)",
            )
            .field("/functionCode"));
        }
    };
    let mut out = json!({
        "organizationNumber": org(&ctx),
        "cardNumber": card_number(&updated),
        "functionCode": function,
        "blockCode": if function == "B" { updated.block_code.as_str() } else { code.as_str() },
    });
    if let Some(seq) = ctx.at("/cardSequence").as_i64() {
        out["cardSequence"] = json!(seq);
    }
    Reply::ok(out)
}

async fn pin_status(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    match ctx.at("/serviceFunctionCode").as_str().unwrap_or("") {
        "B" => {
            ctx.app
                .store
                .update_card(&ctx.client_id, card.id, "pin_block", |c| {
                    c.pin_status = "blocked".into();
                })
                .await?;
        }
        "U" => {
            usable(&card).map_err(|e| e.field("/cardNumber"))?;
            ctx.app.hsm.pin_attempts_reset(&hsm_card(&card)).await?;
            ctx.app
                .store
                .update_card(&ctx.client_id, card.id, "pin_unblock", |c| {
                    c.pin_status = "active".into();
                })
                .await?;
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_service_function",
                "serviceFunctionCode: B (block PIN) or U (unblock PIN)",
            )
            .field("/serviceFunctionCode"));
        }
    }
    let mut out = json!({ "cardNumber": card_number(&card) });
    if let Some(seq) = ctx.at("/cardSequenceNumber").as_i64() {
        out["cardSequenceNumber"] = json!(seq);
    }
    Reply::ok(out)
}

async fn card_status(ctx: Ctx) -> Result<Reply, ApiError> {
    let card = card_at(&ctx, "/cardNumber").await?;
    let wanted = match ctx.at("/cardStatus").as_i64() {
        Some(0) => "inactive",
        Some(1) => "active",
        Some(2) => "blocked",
        Some(3) => "cancelled",
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_card_status",
                "cardStatus: 0 inactive, 1 active, 2 blocked, 3 cancelled",
            )
            .field("/cardStatus"));
        }
    };
    if !matches!(card.status.as_str(), "active" | "inactive" | "blocked") {
        return Err(ApiError::unprocessable(
            "card_status_final",
            format!("the card is {}", card.status),
        )
        .field("/cardNumber"));
    }
    if card.status == wanted {
        return Err(ApiError::unprocessable(
            "status_unchanged",
            "the card already has this status",
        )
        .field("/cardStatus"));
    }
    ctx.app
        .store
        .update_card(&ctx.client_id, card.id, "status", |c| {
            c.status = wanted.to_owned();
            if wanted != "blocked" {
                c.block_code.clear();
            }
        })
        .await?;
    Reply::ok(json!({ "successMessage": format!("card status updated to {wanted}") }))
}

/// Minor units as the processor's whole-unit number (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn whole_units(minor: i64) -> f64 {
    minor as f64 / 100.0
}

async fn credit_limit(ctx: Ctx) -> Result<Reply, ApiError> {
    let field = "/accountNumber";
    let limit = minor_units(ctx.at("/creditLimit"), "/creditLimit")?;
    let before = match ctx.at("/creditLimitBeforeUpdate") {
        Value::Null => None,
        v => Some(minor_units(v, "/creditLimitBeforeUpdate")?),
    };
    let check_before = |current: i64| match before {
        Some(b) if b != current => Err(ApiError::unprocessable(
            "limit_changed",
            "creditLimitBeforeUpdate is not the current limit",
        )
        .field("/creditLimitBeforeUpdate")),
        _ => Ok(()),
    };
    let text = ctx.at(field).as_str().unwrap_or("");
    let mut out = json!({
        "organizationNumber": org(&ctx),
        "foreignUseIndicator": ctx.at("/foreignUseIndicator").as_str().unwrap_or(""),
        "creditLimit": whole_units(limit),
    });
    match find_card(&ctx.app, &ctx.tenant, text, field).await {
        Ok(card) => {
            check_before(card.credit_limit)?;
            let c = ctx
                .app
                .store
                .update_card(&ctx.client_id, card.id, "credit_limit", |c| {
                    c.credit_limit = limit;
                })
                .await?;
            out["cardNumber"] = json!(card_number(&c));
            out["accountNumber"] = json!(number(c.account_id));
        }
        Err(e) if e.code == "card_not_found" => {
            let not_found = || {
                ApiError::unprocessable("account_not_found", "no such card or account").field(field)
            };
            let id = super::issuing::parse_number(text, field).map_err(|_| not_found())?;
            let account = match ctx.app.store.account(id).await {
                Ok(a) if a.tenant.is_empty() || a.tenant == ctx.tenant => a,
                Ok(_) | Err(StoreError::NotFound(_)) => return Err(not_found()),
                Err(e) => return Err(e.into()),
            };
            check_before(account.credit_limit)?;
            ctx.app
                .store
                .update_account(&ctx.client_id, account.id, "credit_limit", |a| {
                    a.credit_limit = limit;
                })
                .await?;
            out["accountNumber"] = json!(number(account.id));
        }
        Err(e) => return Err(e),
    }
    Reply::ok(out)
}
