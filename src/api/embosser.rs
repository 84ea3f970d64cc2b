//! Embosser records (cards): `POST /cards/embosser/l8vf` (= `/cards/embosser`),
//! `PUT /cards/activation`, `POST /cards/embosser/card-pan-l8v2` and the reissue
//! `PUT /cards/embosser/cardAction-L8V2`.
//!
//! Choices where the processor's documents are silent:
//! * Embosser add: `postToAccount` is the account, which must be the customer's
//!   (`customerNumber`, optional: the account's owner); `cardNumber` must be empty or
//!   zeros (cofre draws the PAN; another value is `422 card_number_assigned`). The card
//!   kind is `deviceIndicator` `D`/`V`/`W` = digital wallet, else `typeOfCard`
//!   0/1/absent = physical credit, 2 = debit, 3 = prepaid, 4 = digital wallet.
//!   `embossedName1` (else `name1`, else the customer's name) is the embossed name, at
//!   most 26 characters. `expirationDate` must be from this month to 20 years on (else
//!   the product's validity, 5 years by default); `posServiceCode` 0/absent takes the
//!   product's service code (else 201), another must be 3 digits starting 1, 2, 5, 6, 7
//!   or 9. Purchase limits are kept in the body and must be 0 to 10^11 (major units).
//!   Every new record is inactive (`currentCardActivation` is kept, not acted on) and
//!   gets a random PIN (`pinSuppression` is kept, not acted on).
//! * Activation `serviceType`: A activates every inactive card of the account; S this
//!   card; T and U this card and mark the card it replaced `replaced` (a lost or stolen
//!   one keeps that status); I deactivates this card (back to `inactive`). A card that is
//!   lost, stolen, replaced, cancelled or blocked is not activated (`422
//!   card_not_activatable`); activating an active card counts 0.
//! * card-pan-l8v2: both function types find the card by any form (PAN token, padded
//!   token, clear PAN tokenised by the daemon) and answer `panToken` (the 19-character
//!   `cardNumber` form) and, in `cardNumber`, the MASKED PAN: the clear PAN never leaves
//!   cofre (function C cannot answer it; a PCI client that needs it uses the bureau file).
//! * cardAction: 1 (issue new), 2 (reissue), 3 (replacement) and 6 (emergency
//!   replacement) always issue a NEW card record with a new PAN, expiry and random PIN
//!   (so `randomPin` is kept but a new card has a new PIN either way), inactive, and set
//!   the old card's `replaced_by`. `cardActionReason` `L` (lost) or `S` (stolen) blocks
//!   the old card at once (status `lost`/`stolen`); `D` (damaged), `E` (expired) or none
//!   leave it usable until the new card is activated with serviceType T. 4 (cards
//!   returned) issues nothing and blocks the card (status `blocked`). A card already
//!   replaced, or cancelled, is `422 card_not_reissuable`.

use crate::api::domain::CardStatus;
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::config::Product;
use super::customers::owned_customer;
use super::issuing::{
    CardSpec, card_number, expiry_date, expiry_in, find_card, new_card, number, number_field,
    product_of,
};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::store::{Account, Card, Records, StoreError};
use crate::{handler, handler_tx};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    let embosser = "/cards/embosser/l8vf";
    let pan = "/cards/embosser/card-pan-l8v2";
    let action = "/cards/embosser/cardAction-L8V2";
    vec![
        Route::processor(Method::POST, embosser, embosser, handler!(add)),
        Route::processor(Method::POST, "/cards/embosser", embosser, handler!(add)),
        Route::processor(
            Method::PUT,
            "/cards/activation",
            "/cards/activation",
            handler_tx!(activate),
        ),
        Route::processor(Method::POST, pan, pan, handler!(pan_inquiry)),
        Route::processor(Method::PUT, action, action, handler!(card_action)),
    ]
}

/// The caller's account `id`, else `422 account_not_found` naming `field`.
async fn owned_account(r: &mut Records<'_>, id: i64, field: &str) -> Result<Account, ApiError> {
    r.find_account(id)
        .await?
        .ok_or_else(|| ApiError::unprocessable("account_not_found", "no such account").field(field))
}

fn product_or_unknown<'a>(ctx: &'a Ctx, account: &Account) -> Result<&'a Product, ApiError> {
    product_of(&ctx.app, account).ok_or_else(|| {
        ApiError::unprocessable("unknown_product", "the account's product is not configured")
    })
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let account_id = number_field(&ctx.body["postToAccount"], "/postToAccount")?;
    let account = owned_account(&mut r, account_id, "/postToAccount").await?;
    let customer_id = match &ctx.body["customerNumber"] {
        Value::String(s) if s.trim().trim_start_matches('0').is_empty() => account.customer_id,
        Value::Null => account.customer_id,
        v => number_field(v, "/customerNumber")?,
    };
    let customer = owned_customer(&mut r, customer_id, "/customerNumber").await?;
    if account.customer_id != customer.id {
        return Err(ApiError::unprocessable(
            "account_not_of_customer",
            "the account does not belong to this customer",
        )
        .field("/postToAccount"));
    }
    let given = ctx.body["cardNumber"].as_str().unwrap_or("").trim();
    if !given.trim_start_matches('0').is_empty() {
        return Err(ApiError::unprocessable(
            "card_number_assigned",
            "cofre draws card numbers: send cardNumber empty or zeros",
        )
        .field("/cardNumber"));
    }
    drop(r);
    drop(reader);
    let product = product_or_unknown(&ctx, &account)?;
    let spec = CardSpec::read(&ctx.body, "", product, &customer, None)?;
    let new = new_card(&ctx, product, &account, &customer, &spec, ctx.body.clone()).await?;
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "logo": product.logo,
        "accountNumber": number(account.id),
    });
    if let Some(seq) = ctx.body["cardSequence"].as_i64() {
        out["cardSequence"] = json!(seq);
    }
    let (tenant, actor, dialect) = (
        ctx.tenant.clone(),
        ctx.client_id.clone(),
        ctx.app.store.dialect(),
    );
    ctx.commit(move |db: &mut AnyConnection| {
        Box::pin(async move {
            let mut r = Records::new(db, dialect, tenant, &actor);
            let card = r.create_card(new, CardStatus::Inactive, "create").await?;
            tracing::info!(card = card.id, kind = %card.kind, "card added");
            out["cardNumber"] = json!(card_number(&card));
            Reply::ok(out)
        })
    })
    .await
}

fn not_activatable(card: &Card) -> ApiError {
    ApiError::unprocessable(
        "card_not_activatable",
        format!("the card is {}", card.status),
    )
    .field("/cardNumber")
}

async fn activate(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let card = find_card(&ctx.app, &mut r, raw, "/cardNumber").await?;
    let service = ctx.body["serviceType"].as_str().unwrap_or("");
    let mut activated = 0;
    match service {
        "A" => {
            for c in r.cards_of_account(card.account_id).await? {
                if c.status == CardStatus::Inactive {
                    r.update_card(c.id, "activate", |c| c.status = CardStatus::Active)
                        .await?;
                    activated += 1;
                }
            }
        }
        "S" | "T" | "U" => {
            match card.status {
                CardStatus::Inactive => {
                    r.update_card(card.id, "activate", |c| c.status = CardStatus::Active)
                        .await?;
                    activated = 1;
                }
                CardStatus::Active => {}
                _ => return Err(not_activatable(&card)),
            }
            if service != "S"
                && let Some(prior) = r.card_replaced_by(card.id).await?
                && matches!(
                    prior.status,
                    CardStatus::Active | CardStatus::Inactive | CardStatus::Blocked
                )
            {
                r.update_card(prior.id, "deactivate-prior", |c| {
                    c.status = CardStatus::Replaced
                })
                .await?;
            }
        }
        "I" => match card.status {
            CardStatus::Active => {
                r.update_card(card.id, "deactivate", |c| c.status = CardStatus::Inactive)
                    .await?;
            }
            CardStatus::Inactive => {}
            _ => return Err(not_activatable(&card)),
        },
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_service_type",
                "serviceType is A, S, T, I or U",
            )
            .field("/serviceType"));
        }
    }
    let account = r.account(card.account_id).await?;
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "cardNumber": card_number(&card),
        "serviceType": service,
        "numberCardsActivated": activated,
    });
    if let Some(p) = product_of(&ctx.app, &account) {
        out["logo"] = json!(p.logo);
    }
    Reply::ok(out)
}

async fn pan_inquiry(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let card = find_card(&ctx.app, &mut r, raw, "/cardNumber").await?;
    let account = r.account(card.account_id).await?;
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "cardNumber": card.masked_pan,
        "accountNumber": number(card.account_id),
        "panToken": card_number(&card),
    });
    if let Some(seq) = ctx.body["cardSequence"].as_i64() {
        out["cardSequence"] = json!(seq);
    }
    if let Some(p) = product_of(&ctx.app, &account) {
        out["logo"] = json!(p.logo);
    }
    Reply::ok(out)
}

async fn card_action(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let old = find_card(&ctx.app, &mut r, raw, "/cardNumber").await?;
    let action = ctx.body["cardAction"].as_i64().unwrap_or(-1);
    if !matches!(action, 1 | 2 | 3 | 4 | 6) {
        return Err(ApiError::unprocessable(
            "invalid_card_action",
            "cardAction is 1 (issue new), 2 (reissue), 3 (replacement), 4 (cards returned) or 6 (emergency replacement)",
        )
        .field("/cardAction"));
    }
    let random_pin = ctx.body["randomPin"].as_i64().unwrap_or(-1);
    if !matches!(random_pin, 0 | 1) {
        return Err(
            ApiError::unprocessable("invalid_random_pin", "randomPin is 0 or 1")
                .field("/randomPin"),
        );
    }
    let reason = ctx.body["cardActionReason"].as_str().unwrap_or("").trim();
    let old_status = match reason.to_ascii_uppercase().as_str() {
        "L" => Some(CardStatus::Lost),
        "S" => Some(CardStatus::Stolen),
        "D" | "E" | "" => None,
        _ => {
            return Err(ApiError::unprocessable(
                "unknown_reason",
                "cardActionReason is L (lost), S (stolen), D (damaged), E (expired) or empty",
            )
            .field("/cardActionReason"));
        }
    };
    if old.replaced_by.is_some()
        || old.status == CardStatus::Cancelled
        || old.status == CardStatus::Replaced
    {
        return Err(ApiError::unprocessable(
            "card_not_reissuable",
            "the card was replaced or cancelled",
        )
        .field("/cardNumber"));
    }
    let account = r.account(old.account_id).await?;
    let customer = r.customer(old.customer_id).await?;
    drop(r);
    drop(reader);
    let product = product_or_unknown(&ctx, &account)?;
    let issued = if action == 4 {
        None
    } else {
        let spec = CardSpec {
            kind: old.kind,
            expiry: expiry_in(product.validity_years.unwrap_or(5)),
            service_code: old.service_code.clone(),
        };
        let mut body = old.body.0.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("reissuedFrom".into(), json!(card_number(&old)));
            o.insert("cardActionRequest".into(), ctx.body.clone());
        }
        Some(new_card(&ctx, product, &account, &customer, &spec, body).await?)
    };
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "cardAction": action,
        "randomPin": random_pin,
        "logo": product.logo,
        "customerNumber": number(customer.id),
    });
    for k in [
        "cardSequence",
        "numberCardsRequested",
        "numberCardsReturned",
    ] {
        if let Some(n) = ctx.body[k].as_i64() {
            out[k] = json!(n);
        }
    }
    let old_id = old.id;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            // The old card is read again here: of two concurrent reissues of one card,
            // exactly one commits a replacement; the other is refused.
            let card = match issued {
                None => {
                    r.try_update_card(old_id, "cards-returned", |c| {
                        if c.replaced_by.is_some() || c.status.is_final() {
                            return Err(not_reissuable());
                        }
                        c.status = CardStatus::Blocked;
                        Ok(())
                    })
                    .await??
                }
                Some(issued) => {
                    let (_, c) = r
                        .reissue_card(old_id, issued, old_status, "reissue")
                        .await
                        .map_err(|e| match e {
                            StoreError::Rule(_) => not_reissuable(),
                            other => other.into(),
                        })?;
                    if let Some(d) = expiry_date(&c.expiry) {
                        out["expiryDate"] = json!(d);
                    }
                    c
                }
            };
            tracing::info!(old = old_id, new = card.id, action, "card action");
            out["cardNumber"] = json!(card_number(&card));
            if let Some(name) = card.body["embossedName1"].as_str() {
                out["embosserName1"] = json!(name);
            }
            Reply::ok(out)
        })
    })
    .await
}

fn not_reissuable() -> ApiError {
    ApiError::unprocessable("card_not_reissuable", "the card was replaced or cancelled")
        .field("/cardNumber")
}
