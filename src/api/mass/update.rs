//! `POST /cards/mass-card-issue-L8V3`: a request is checked, then added, updated or
//! cancelled while it waits its turn in the queue.

use sqlx::AnyConnection;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use super::batch::schedule;
use super::{MAX_QUANTITY, MassIssue, expiry_yymm};
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::domain::processor::MassIssueUpdate;
use crate::api::issuing::{known_organization, number, today, today_date};
use crate::api::store::Records;

pub(super) async fn add(
    ctx: Ctx,
    req: MassIssueUpdate,
    db: &mut AnyConnection,
) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let modify = match req.function_type.trim() {
        "" | "A" | "a" => false,
        "M" | "m" => true,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_function_type",
                "functionType: A (add) or M (modify)",
            )
            .field("/functionType"));
        }
    };
    let status = req.status;
    if status != 1 && status != 9 {
        return Err(ApiError::unprocessable("invalid_status", "status: 1 or 9").field("/status"));
    }
    let (org, logo) = (req.organization_number, req.logo);
    known_organization(&ctx, org, "/organizationNumber")?;
    if ctx.app.config.product(org.0, Some(logo)).is_none() {
        return Err(ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field("/logo"));
    }
    let quantity = req.quantity_to_create;
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(ApiError::unprocessable(
            "quantity_out_of_range",
            format!("quantityToCreate: 1 to {MAX_QUANTITY} cards"),
        )
        .field("/quantityToCreate"));
    }
    if !(0..=MAX_QUANTITY).contains(&req.minimum_quantity) {
        return Err(ApiError::unprocessable(
            "quantity_out_of_range",
            format!("minimumQuantity: 0 to {MAX_QUANTITY}"),
        )
        .field("/minimumQuantity"));
    }
    if expiry_yymm(req.expiry_date, today_date()).is_none() {
        return Err(ApiError::unprocessable(
            "invalid_expiry_date",
            "expiryDate: a date after today, at most 20 years ahead",
        )
        .field("/expiryDate"));
    }
    if !matches!(req.prepaid_card_flag, 0 | 1) {
        return Err(
            ApiError::unprocessable("invalid_prepaid_flag", "prepaidCardFlag: 0 or 1")
                .field("/prepaidCardFlag"),
        );
    }
    if ctx.app.config.bureau.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bureau_not_configured",
            "no card bureau is configured for embosser files",
        ));
    }
    let card_type = req.card_type;
    let queued = r.mass_issue_latest(org.0, logo, card_type, true).await?;
    let body = serde_json::to_value(&req).map_err(|e| ApiError::internal(e.to_string()))?;
    let cancel = status == 9;
    let (record, add_status) = match queued {
        Some(q) => {
            match r
                .mass_issue_update_queued(q.id, quantity, &body, cancel)
                .await?
            {
                Some(m) => (m, if cancel { 9 } else { 2 }),
                None if modify || cancel => return Err(started()),
                None => (
                    create(&ctx, &mut r, (org.0, logo, card_type), quantity, &body).await?,
                    1,
                ),
            }
        }
        None if modify || cancel => {
            return Err(ApiError::unprocessable(
                "mass_issue_not_found",
                "no request for this product that has not started",
            )
            .field("/logo"));
        }
        None => (
            create(&ctx, &mut r, (org.0, logo, card_type), quantity, &body).await?,
            1,
        ),
    };
    tracing::info!(
        mass_issue = record.id,
        requested = quantity,
        add_status,
        "mass issue"
    );
    let mut out = body.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("functionType");
        o.insert("dateLastMaintain".into(), json!(today()));
        o.insert("addStatus".into(), json!(add_status));
        o.insert("massIssueId".into(), json!(number(record.id)));
        o.insert("massIssueState".into(), json!(record.state));
    }
    Reply::ok(json!({ "outputArea": out }))
}

fn started() -> ApiError {
    ApiError::unprocessable(
        "mass_issue_started",
        "the request has started and can no longer be changed",
    )
    .field("/logo")
}

/// Queues a new request and starts its worker (which waits its turn).
async fn create(
    ctx: &Ctx,
    r: &mut Records<'_>,
    (org, logo, card_type): (i64, i64, i64),
    quantity: i64,
    body: &serde_json::Value,
) -> Result<MassIssue, ApiError> {
    let m = r
        .mass_issue_create(org, logo, card_type, quantity, body)
        .await?;
    // The worker's first step goes through the writer, so it starts after this
    // call's transaction committed (or finds nothing if it rolled back).
    schedule(
        Arc::clone(&ctx.app),
        ctx.tenant.clone(),
        m.id,
        crate::api::store::BatchClaim::Free,
    );
    Ok(m)
}
