//! The credit limit of a card or, when the number is an account's, of the account,
//! checked against the limit the caller last saw.

use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::org;
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::minor_units;
use crate::api::issuing::{card_number, find_card, number};

/// Minor units as the processor's whole-unit number (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn whole_units(minor: i64) -> f64 {
    minor as f64 / 100.0
}

pub(super) async fn credit_limit(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
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
    match find_card(&ctx.app, &mut r, text, field).await {
        Ok(card) => {
            check_before(card.credit_limit)?;
            let c = r
                .update_card(card.id, "credit_limit", |c| {
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
            let id = crate::api::issuing::parse_number(text, field).map_err(|_| not_found())?;
            let account = r.find_account(id).await?.ok_or_else(not_found)?;
            check_before(account.credit_limit)?;
            r.update_account(account.id, "credit_limit", |a| {
                a.credit_limit = limit;
            })
            .await?;
            out["accountNumber"] = json!(number(account.id));
        }
        Err(e) => return Err(e),
    }
    Reply::ok(out)
}
