//! The card's status: the processor's block code (block and unblock, the status before
//! the block kept) and the card status change.

use serde_json::{Value, json};

use super::{card_at, org};
use crate::api::http::{ApiError, Ctx, Reply};
use crate::api::issuing::card_number;

pub(super) async fn block_code(ctx: Ctx) -> Result<Reply, ApiError> {
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

pub(super) async fn card_status(ctx: Ctx) -> Result<Reply, ApiError> {
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
