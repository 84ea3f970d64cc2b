//! The credit limit of a card or, when the number is an account's, of the account,
//! checked against the limit the caller last saw.

use serde_json::json;
use sqlx::AnyConnection;

use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::domain::processor::CreditLimitUpdate;
use crate::api::domain::{CardRef, Money, RecordNumber};
use crate::api::issuing::{card_number, card_organization, find_card, number};

/// A limit: 0 to [`Money::MAX`] (its two decimals were checked when it was parsed).
fn limit(m: Money, field: &str) -> Result<i64, ApiError> {
    if m < Money::ZERO || m > Money::MAX {
        return Err(ApiError::unprocessable(
            "limit_out_of_range",
            format!("{field}: 0 to 100000000000.00, at most 2 decimals"),
        )
        .field(field));
    }
    Ok(m.minor())
}

pub(super) async fn credit_limit(
    ctx: Ctx,
    req: CreditLimitUpdate,
    db: &mut AnyConnection,
) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let field = "/accountNumber";
    let new_limit = limit(req.credit_limit, "/creditLimit")?;
    let before = req
        .credit_limit_before_update
        .map(|m| limit(m, "/creditLimitBeforeUpdate"))
        .transpose()?;
    let check_before = |current: i64| match before {
        Some(b) if b != current => Err(ApiError::unprocessable(
            "limit_changed",
            "creditLimitBeforeUpdate is not the current limit",
        )
        .field("/creditLimitBeforeUpdate")),
        _ => Ok(()),
    };
    let org = req.organization_number;
    let mut out = json!({
        "organizationNumber": org,
        "foreignUseIndicator": req.foreign_use_indicator.as_deref().unwrap_or(""),
        "creditLimit": Money::from_minor(new_limit),
    });
    let card = match CardRef::parse(&req.account_number) {
        Ok(card_ref) => match find_card(&ctx.app, &mut r, &card_ref, field).await {
            Ok(card) => Some(card),
            Err(e) if e.code == "card_not_found" => None,
            Err(e) => return Err(e),
        },
        Err(_) => None,
    };
    match card {
        Some(card) => {
            let account = r.account(card.account_id).await?;
            card_organization(&ctx, Some(org), &account, "/organizationNumber")?;
            check_before(card.credit_limit)?;
            let c = r
                .update_card(card.id, "credit_limit", |c| {
                    c.credit_limit = new_limit;
                })
                .await?;
            out["cardNumber"] = json!(card_number(&c));
            out["accountNumber"] = json!(number(c.account_id));
        }
        None => {
            let not_found = || {
                ApiError::unprocessable("account_not_found", "no such card or account").field(field)
            };
            let id = RecordNumber::parse(&req.account_number).map_err(|_| not_found())?;
            let account = r.find_account(id).await?.ok_or_else(not_found)?;
            card_organization(&ctx, Some(org), &account, "/organizationNumber")?;
            check_before(account.credit_limit)?;
            r.update_account(account.id, "credit_limit", |a| {
                a.credit_limit = new_limit;
            })
            .await?;
            out["accountNumber"] = json!(number(account.id));
        }
    }
    Reply::ok(out)
}
