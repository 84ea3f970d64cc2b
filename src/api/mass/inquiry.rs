//! `GET /cards/mass-card-issue-L8V3`: the newest request of a product as the
//! processor's card list, a page (or a cursor) at a time.

use serde_json::{Value, json};

use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::number;

/// Cards per inquiry page.
const PAGE: i64 = 50;

/// A query parameter of 1 to `max` digits.
fn query_number(ctx: &Ctx, name: &'static str, max: usize) -> Result<i64, ApiError> {
    let v = ctx.query(name).ok_or_else(|| {
        ApiError::bad_request("missing_parameter", format!("{name} is required")).field(name)
    })?;
    let t = v.trim();
    if t.is_empty() || t.len() > max || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name}: 1 to {max} digits"),
        )
        .field(name));
    }
    t.parse()
        .map_err(|_| ApiError::bad_request("invalid_parameter", name).field(name))
}

pub(super) async fn inquiry(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let org = query_number(&ctx, "organizationNumber", 3)?;
    let logo = query_number(&ctx, "logo", 3)?;
    let card_type = query_number(&ctx, "serviceType", 2)?;
    let page = match ctx.query("page") {
        None => 1,
        Some(_) => query_number(&ctx, "page", 6)?.max(1),
    };
    // Cursor pagination (cofre's lists all offer it): `cursor` is the `nextCursor` of the
    // previous answer (the last card sequence seen); it takes precedence over `page`.
    let cursor = match ctx.query("cursor") {
        None => None,
        Some(_) => Some(query_number(&ctx, "cursor", 6)?),
    };
    if ctx.app.config.product(org, Some(logo)).is_none() {
        return Err(ApiError::unprocessable(
            "unknown_product",
            "no product for this organization and logo",
        )
        .field("logo"));
    }
    let m = r
        .mass_issue_latest(org, logo, card_type, false)
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable("mass_issue_not_found", "no mass issue for this product")
                .field("logo")
        })?;
    let cards = r
        .batch_cards(m.id, cursor.unwrap_or((page - 1) * PAGE), PAGE)
        .await?;
    let pages = ((m.issued + PAGE - 1) / PAGE).max(1);
    let offset = cursor.unwrap_or((page - 1) * PAGE);
    let next = offset + i64::try_from(cards.len()).unwrap_or(0);
    let page = cursor.map_or(page, |c| c / PAGE + 1);
    let cards: Vec<Value> = cards
        .iter()
        .map(|c| {
            json!({
                "cardNumber": format!("{:0>19}", c.token),
                "cardType": card_type.to_string(),
                "cardStatus": "0",
                "isActive": false,
            })
        })
        .collect();
    Reply::ok(json!({ "outputArea": {
        "hasMoreRecords": next < m.issued,
        "nextCursor": (next < m.issued).then(|| next.to_string()),
        "totalCardsCount": m.issued,
        "totalPagesCount": pages,
        "currentPage": page,
        "cards": cards,
        "massIssueId": number(m.id),
        "state": m.state,
        "requested": m.requested,
        "issued": m.issued,
        "failed": m.failed,
        "fileName": m.file_name,
    }}))
}
