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

use axum::http::Method;
use serde_json::json;
use sqlx::AnyConnection;

use super::config::Product;
use super::customers::owned_customer;
use super::issuing::{
    CardSpec, card_number, card_organization, expiry_date, expiry_in, find_card, hsm_card,
    new_card, number, product_of,
};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::processor::{
    CardAction, CardActivation, EmbosserAdd, EmbosserFields, PanInquiry,
};
use crate::api::domain::{CardStatus, RecordNumber};
use crate::api::store::{Account, Card, NewCard, Records, StoreError};
use crate::client::{Card as HsmCard, PinMethod, PinRebindRequest};
use crate::protocol::Tag;
use crate::{typed_handler, typed_handler_tx};
use serde::Deserialize as _;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    let embosser = "/cards/embosser/l8vf";
    let pan = "/cards/embosser/card-pan-l8v2";
    let action = "/cards/embosser/cardAction-L8V2";
    vec![
        Route::processor(Method::POST, embosser, embosser, typed_handler!(add)),
        Route::processor(
            Method::POST,
            "/cards/embosser",
            embosser,
            typed_handler!(add),
        ),
        Route::processor(
            Method::PUT,
            "/cards/activation",
            "/cards/activation",
            typed_handler_tx!(activate),
        ),
        Route::processor(Method::POST, pan, pan, typed_handler!(pan_inquiry)),
        Route::processor(Method::PUT, action, action, typed_handler!(card_action)),
    ]
}

/// The caller's account `id`, else `422 account_not_found` naming `field`.
async fn owned_account(
    r: &mut Records<'_>,
    id: RecordNumber,
    field: &str,
) -> Result<Account, ApiError> {
    r.find_account(id)
        .await?
        .ok_or_else(|| ApiError::unprocessable("account_not_found", "no such account").field(field))
}

fn product_or_unknown<'a>(ctx: &'a Ctx, account: &Account) -> Result<&'a Product, ApiError> {
    product_of(&ctx.app, account).ok_or_else(|| {
        ApiError::unprocessable("unknown_product", "the account's product is not configured")
    })
}

fn to_body(req: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(req).map_err(|e| ApiError::internal(e.to_string()))
}

async fn add(ctx: Ctx, req: EmbosserAdd) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let account = owned_account(&mut r, req.post_to_account, "/postToAccount").await?;
    card_organization(
        &ctx,
        Some(req.organization_number),
        &account,
        "/organizationNumber",
    )?;
    let customer_id = match req.customer_number.filter(|n| !n.is_zero()) {
        Some(n) => n.id(),
        None => account.customer_id,
    };
    let customer = owned_customer(&mut r, customer_id, "/customerNumber").await?;
    if account.customer_id != customer.id {
        return Err(ApiError::unprocessable(
            "account_not_of_customer",
            "the account does not belong to this customer",
        )
        .field("/postToAccount"));
    }
    if !req.card_number.trim().trim_start_matches('0').is_empty() {
        return Err(ApiError::unprocessable(
            "card_number_assigned",
            "cofre draws card numbers: send cardNumber empty or zeros",
        )
        .field("/cardNumber"));
    }
    drop(r);
    drop(reader);
    let product = product_or_unknown(&ctx, &account)?;
    let spec = CardSpec::read(&req.embosser, "", product, &customer, None)?;
    let new = new_card(&ctx, product, &account, &customer, &spec, to_body(&req)?).await?;
    let mut out = json!({
        "organizationNumber": req.organization_number,
        "logo": product.logo,
        "accountNumber": number(account.id),
    });
    if let Some(seq) = req.card_sequence {
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

async fn activate(
    ctx: Ctx,
    req: CardActivation,
    db: &mut AnyConnection,
) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let card = find_card(&ctx.app, &mut r, &req.card_number, "/cardNumber").await?;
    let account = r.account(card.account_id).await?;
    card_organization(
        &ctx,
        req.organization_number,
        &account,
        "/organizationNumber",
    )?;
    let service = req.service_type.as_str();
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
    let mut out = json!({
        "organizationNumber": req.organization_number,
        "cardNumber": card_number(&card),
        "serviceType": service,
        "numberCardsActivated": activated,
    });
    if let Some(p) = product_of(&ctx.app, &account) {
        out["logo"] = json!(p.logo);
    }
    Reply::ok(out)
}

async fn pan_inquiry(ctx: Ctx, req: PanInquiry) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let card = find_card(&ctx.app, &mut r, &req.card_number, "/cardNumber").await?;
    let account = r.account(card.account_id).await?;
    card_organization(
        &ctx,
        Some(req.organization_number),
        &account,
        "/organizationNumber",
    )?;
    let mut out = json!({
        "organizationNumber": req.organization_number,
        "cardNumber": card.masked_pan,
        "accountNumber": number(card.account_id),
        "panToken": card_number(&card),
    });
    if let Some(seq) = req.card_sequence {
        out["cardSequence"] = json!(seq);
    }
    if let Some(p) = product_of(&ctx.app, &account) {
        out["logo"] = json!(p.logo);
    }
    Reply::ok(out)
}

async fn card_action(ctx: Ctx, req: CardAction) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let old = find_card(&ctx.app, &mut r, &req.card_number, "/cardNumber").await?;
    let action = req.card_action;
    if !matches!(action, 1 | 2 | 3 | 4 | 6) {
        return Err(ApiError::unprocessable(
            "invalid_card_action",
            "cardAction is 1 (issue new), 2 (reissue), 3 (replacement), 4 (cards returned) or 6 (emergency replacement)",
        )
        .field("/cardAction"));
    }
    let random_pin = req.random_pin;
    if !matches!(random_pin, 0 | 1) {
        return Err(
            ApiError::unprocessable("invalid_random_pin", "randomPin is 0 or 1")
                .field("/randomPin"),
        );
    }
    let reason = req.card_action_reason.as_deref().unwrap_or("").trim();
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
        return Err(not_reissuable());
    }
    let account = r.account(old.account_id).await?;
    card_organization(
        &ctx,
        Some(req.organization_number),
        &account,
        "/organizationNumber",
    )?;
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
            o.insert("cardActionRequest".into(), to_body(&req)?);
        }
        let mut card = new_card(&ctx, product, &account, &customer, &spec, body).await?;
        if random_pin == 0 {
            keep_pin(&ctx, &old, &mut card).await?;
        }
        Some(card)
    };
    let mut out = json!({
        "organizationNumber": req.organization_number,
        "cardAction": action,
        "randomPin": random_pin,
        "logo": product.logo,
        "customerNumber": number(customer.id),
    });
    for (k, v) in [
        ("cardSequence", req.card_sequence),
        ("numberCardsRequested", req.number_cards_requested),
        ("numberCardsReturned", req.number_cards_returned),
    ] {
        if let Some(n) = v {
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
            let fields = EmbosserFields::deserialize(&card.body.0).ok();
            if let Some(name) = fields.and_then(|f| f.embossed_name1) {
                out["embosserName1"] = json!(name);
            }
            Reply::ok(out)
        })
    })
    .await
}

/// `randomPin: 0` ("do not generate a new random PIN"): the old card's PIN carried
/// over to the new card by the daemon (`pin.rebind`: from the old card's LMK-encrypted
/// blob to the new card's PVV and blob; the PIN is never clear outside the daemon, and
/// the new card's tries start from zero). The PIN drawn for the new card at issue is
/// discarded unseen. A card issued without a PIN keeps the drawn one.
async fn keep_pin(ctx: &Ctx, old: &Card, new: &mut NewCard) -> Result<(), ApiError> {
    if old.pin_blob.is_empty() {
        return Ok(());
    }
    let pin_blob = hex::decode(&old.pin_blob)
        .map_err(|_| ApiError::internal("a stored PIN blob is not hex"))?;
    let r = ctx
        .app
        .hsm
        .pin_rebind(&PinRebindRequest {
            card: hsm_card(old),
            pin_blob,
            new_card: HsmCard::Token {
                token: new.token.clone(),
                version: u32::try_from(new.token_version).ok(),
            },
            pvk: ctx.app.config.keys.pvk.clone(),
            method: PinMethod::Pvv { pvki: 1 },
        })
        .await?;
    let (Some(pvv), Some(blob)) = (r.str(Tag::Pvv), r.bytes(Tag::PinBlob)) else {
        return Err(ApiError::internal(
            "pin.rebind answered without a PVV or blob",
        ));
    };
    new.pvv = pvv;
    new.pin_blob = hex::encode_upper(blob);
    Ok(())
}

fn not_reissuable() -> ApiError {
    ApiError::unprocessable("card_not_reissuable", "the card was replaced or cancelled")
        .field("/cardNumber")
}
