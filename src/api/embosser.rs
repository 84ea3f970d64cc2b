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
use serde_json::{Value, json};

use super::accounts::{minor_units, product_of};
use super::config::Product;
use super::customers::owned_customer;
use super::http::{ApiError, Ctx, Reply, Route};
use super::issuing::{card_number, expiry_in, find_card, issue, number, number_field, year_month};
use super::store::{Account, Card, Customer, NewCard, StoreError};
use crate::handler;

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
            handler!(activate),
        ),
        Route::processor(Method::POST, pan, pan, handler!(pan_inquiry)),
        Route::processor(Method::PUT, action, action, handler!(card_action)),
    ]
}

/// Purchase-limit fields of an embosser request (major units).
const LIMIT_FIELDS: [&str; 12] = [
    "atmCashAmount",
    "atmCashSingleTransactionLimit",
    "overTheCounterCashAmount",
    "overTheCounterCashSingleTransactionLimit",
    "retailPurchaseAmt",
    "retailPurchaseSingleTransactionLimit",
    "internetPurchaseAmount",
    "internetPurchaseSingleTransactionLimit",
    "icAmountLimitSingleTransaction",
    "atmCashNumber",
    "retailPurchaseNumber",
    "internetPurchaseNumber",
];

/// What a request says about a new card, checked (nothing issued yet).
#[derive(Debug, Clone)]
pub struct CardSpec {
    /// physical-credit, debit, prepaid, digital-wallet.
    pub kind: String,
    /// YYMM.
    pub expiry: String,
    /// Three digits.
    pub service_code: String,
}

impl CardSpec {
    /// Reads the embosser fields of `data` (at JSON pointer `base`); `kind` overrides the
    /// card kind fields.
    pub fn read(
        data: &Value,
        base: &str,
        product: &Product,
        customer: &Customer,
        kind: Option<&str>,
    ) -> Result<Self, ApiError> {
        let kind = match kind {
            Some(k) => k.to_owned(),
            None => card_kind(data, base)?,
        };
        embossed_name(data, base, customer)?;
        let expiry = match data["expirationDate"].as_str() {
            Some(d) => expiry_of(d, &format!("{base}/expirationDate"))?,
            None => expiry_in(product.validity_years.unwrap_or(5)),
        };
        let service_code = match data["posServiceCode"].as_i64() {
            None | Some(0) => product.service_code.clone().unwrap_or_else(|| "201".into()),
            Some(n) => {
                let code = format!("{n:03}");
                let ok = (100..=999).contains(&n) && matches!(n / 100, 1 | 2 | 5 | 6 | 7 | 9);
                if !ok {
                    return Err(ApiError::unprocessable(
                        "invalid_service_code",
                        "the service code is 3 digits starting 1, 2, 5, 6, 7 or 9",
                    )
                    .field(format!("{base}/posServiceCode")));
                }
                code
            }
        };
        for f in LIMIT_FIELDS {
            minor_units(&data[f], &format!("{base}/{f}"))?;
        }
        Ok(Self {
            kind,
            expiry,
            service_code,
        })
    }
}

fn card_kind(data: &Value, base: &str) -> Result<String, ApiError> {
    let device = data["deviceIndicator"].as_str().unwrap_or("").trim();
    if matches!(device, "D" | "V" | "W" | "d" | "v" | "w") {
        return Ok("digital-wallet".into());
    }
    let kind = match data["typeOfCard"].as_i64() {
        None | Some(0 | 1) => "physical-credit",
        Some(2) => "debit",
        Some(3) => "prepaid",
        Some(4) => "digital-wallet",
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_card_type",
                "typeOfCard is 1 (credit), 2 (debit), 3 (prepaid) or 4 (digital wallet)",
            )
            .field(format!("{base}/typeOfCard")));
        }
    };
    Ok(kind.into())
}

fn embossed_name(data: &Value, base: &str, customer: &Customer) -> Result<String, ApiError> {
    let given = ["embossedName1", "name1"]
        .iter()
        .find_map(|k| data[*k].as_str().map(|s| (*k, s.trim())))
        .filter(|(_, s)| !s.is_empty());
    let (field, name) = match given {
        Some((k, s)) => (format!("{base}/{k}"), s.to_owned()),
        None => (format!("{base}/embossedName1"), customer.name.clone()),
    };
    if name.is_empty() || name.chars().count() > 26 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_embossed_name",
            "the embossed name is 1-26 printable characters",
        )
        .field(field));
    }
    Ok(name)
}

/// `YYYY-MM-DD` (or `YYMM`) as a card expiry `YYMM`, from this month to 20 years on.
fn expiry_of(text: &str, field: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::unprocessable(
            "invalid_expiry",
            "the expiry is a date from this month to 20 years on",
        )
        .field(field)
    };
    let t = text.trim();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        t.get(r)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
    };
    let parsed = match t.len() {
        4 => num(0..2).zip(num(2..4)).map(|(yy, mm)| (2000 + yy, mm)),
        10 => num(0..4).zip(num(5..7)),
        _ => None,
    };
    let (y, m) = parsed.ok_or_else(bad)?;
    let (cy, cm) = year_month();
    let months = |y: u32, m: u32| y * 12 + m;
    if !(1..=12).contains(&m) || months(y, m) < months(cy, cm) || y > cy + 20 {
        return Err(bad());
    }
    Ok(format!("{:02}{m:02}", y % 100))
}

/// A card expiry `YYMM` as the last day of its month, `YYYY-MM-DD`.
pub fn expiry_date(yymm: &str) -> Option<String> {
    let y: u32 = 2000 + yymm.get(..2)?.parse::<u32>().ok()?;
    let m: u32 = yymm.get(2..4)?.parse().ok()?;
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let last = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    Some(format!("{y:04}-{m:02}-{last:02}"))
}

/// Has the daemon issue a card (PAN, token, PIN, PVV) for `spec` on `account`.
pub async fn new_card(
    ctx: &Ctx,
    product: &Product,
    account: &Account,
    customer: &Customer,
    spec: &CardSpec,
    body: Value,
) -> Result<NewCard, ApiError> {
    let issued = issue(&ctx.app, product, None).await?;
    Ok(NewCard {
        account_id: account.id,
        customer_id: customer.id,
        token: issued.token,
        token_version: issued.token_version,
        lookup_token: issued.lookup_token,
        masked_pan: issued.masked_pan,
        kind: spec.kind.clone(),
        expiry: spec.expiry.clone(),
        service_code: spec.service_code.clone(),
        pvv: issued.pvv,
        pin_blob: issued.pin_blob,
        body,
        credit_limit: 0,
        tenant: ctx.tenant.clone(),
    })
}

/// The caller's account `id`, else `422 account_not_found` naming `field`.
async fn owned_account(ctx: &Ctx, id: i64, field: &str) -> Result<Account, ApiError> {
    let not_found = || ApiError::unprocessable("account_not_found", "no such account").field(field);
    match ctx.app.store.account(id).await {
        Ok(a) if a.tenant.is_empty() || a.tenant == ctx.tenant => Ok(a),
        Ok(_) | Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn product_or_unknown<'a>(ctx: &'a Ctx, account: &Account) -> Result<&'a Product, ApiError> {
    product_of(&ctx.app, account).ok_or_else(|| {
        ApiError::unprocessable("unknown_product", "the account's product is not configured")
    })
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let account_id = number_field(&ctx.body["postToAccount"], "/postToAccount")?;
    let account = owned_account(&ctx, account_id, "/postToAccount").await?;
    let customer_id = match &ctx.body["customerNumber"] {
        Value::String(s) if s.trim().trim_start_matches('0').is_empty() => account.customer_id,
        Value::Null => account.customer_id,
        v => number_field(v, "/customerNumber")?,
    };
    let customer = owned_customer(&ctx, customer_id, "/customerNumber").await?;
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
    let product = product_or_unknown(&ctx, &account)?;
    let spec = CardSpec::read(&ctx.body, "", product, &customer, None)?;
    let new = new_card(&ctx, product, &account, &customer, &spec, ctx.body.clone()).await?;
    let card = ctx.app.store.create_card(&ctx.client_id, new).await?;
    tracing::info!(card = card.id, account = account.id, kind = %card.kind, "card added");
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "logo": product.logo,
        "accountNumber": number(account.id),
        "cardNumber": card_number(&card),
    });
    if let Some(seq) = ctx.body["cardSequence"].as_i64() {
        out["cardSequence"] = json!(seq);
    }
    Reply::ok(out)
}

fn not_activatable(card: &Card) -> ApiError {
    ApiError::unprocessable(
        "card_not_activatable",
        format!("the card is {}", card.status),
    )
    .field("/cardNumber")
}

async fn activate(ctx: Ctx) -> Result<Reply, ApiError> {
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let card = find_card(&ctx.app, &ctx.tenant, raw, "/cardNumber").await?;
    let service = ctx.body["serviceType"].as_str().unwrap_or("");
    let store = &ctx.app.store;
    let actor = &ctx.client_id;
    let mut activated = 0;
    match service {
        "A" => {
            for c in store.cards_of_account(card.account_id).await? {
                if c.status == "inactive" {
                    store
                        .update_card(actor, c.id, "activate", |c| c.status = "active".into())
                        .await?;
                    activated += 1;
                }
            }
        }
        "S" | "T" | "U" => {
            match card.status.as_str() {
                "inactive" => {
                    store
                        .update_card(actor, card.id, "activate", |c| c.status = "active".into())
                        .await?;
                    activated = 1;
                }
                "active" => {}
                _ => return Err(not_activatable(&card)),
            }
            if service != "S"
                && let Some(prior) = store.card_replaced_by(card.id).await?
                && matches!(prior.status.as_str(), "active" | "inactive" | "blocked")
            {
                store
                    .update_card(actor, prior.id, "deactivate-prior", |c| {
                        c.status = "replaced".into()
                    })
                    .await?;
            }
        }
        "I" => match card.status.as_str() {
            "active" => {
                store
                    .update_card(actor, card.id, "deactivate", |c| {
                        c.status = "inactive".into()
                    })
                    .await?;
            }
            "inactive" => {}
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
    let account = store.account(card.account_id).await?;
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
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let card = find_card(&ctx.app, &ctx.tenant, raw, "/cardNumber").await?;
    let account = ctx.app.store.account(card.account_id).await?;
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
    let raw = ctx.body["cardNumber"].as_str().unwrap_or("");
    let old = find_card(&ctx.app, &ctx.tenant, raw, "/cardNumber").await?;
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
        "L" => Some("lost"),
        "S" => Some("stolen"),
        "D" | "E" | "" => None,
        _ => {
            return Err(ApiError::unprocessable(
                "unknown_reason",
                "cardActionReason is L (lost), S (stolen), D (damaged), E (expired) or empty",
            )
            .field("/cardActionReason"));
        }
    };
    if old.replaced_by.is_some() || old.status == "cancelled" || old.status == "replaced" {
        return Err(ApiError::unprocessable(
            "card_not_reissuable",
            "the card was replaced or cancelled",
        )
        .field("/cardNumber"));
    }
    let account = ctx.app.store.account(old.account_id).await?;
    let customer = ctx.app.store.customer(old.customer_id).await?;
    let product = product_or_unknown(&ctx, &account)?;
    let (card, new) = if action == 4 {
        let c = ctx
            .app
            .store
            .update_card(&ctx.client_id, old.id, "cards-returned", |c| {
                c.status = "blocked".into();
            })
            .await?;
        (c, false)
    } else {
        let spec = CardSpec {
            kind: old.kind.clone(),
            expiry: expiry_in(product.validity_years.unwrap_or(5)),
            service_code: old.service_code.clone(),
        };
        let mut body = old.body.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("reissuedFrom".into(), json!(card_number(&old)));
            o.insert("cardActionRequest".into(), ctx.body.clone());
        }
        let issued = new_card(&ctx, product, &account, &customer, &spec, body).await?;
        let (_, c) = ctx
            .app
            .store
            .reissue_card(&ctx.client_id, old.id, issued, old_status, "reissue")
            .await?;
        (c, true)
    };
    tracing::info!(old = old.id, new = card.id, action, "card action");
    let mut out = json!({
        "organizationNumber": ctx.body["organizationNumber"],
        "cardNumber": card_number(&card),
        "cardAction": action,
        "randomPin": random_pin,
        "logo": product.logo,
        "customerNumber": number(customer.id),
    });
    if new && let Some(d) = expiry_date(&card.expiry) {
        out["expiryDate"] = json!(d);
    }
    for k in [
        "cardSequence",
        "numberCardsRequested",
        "numberCardsReturned",
    ] {
        if let Some(n) = ctx.body[k].as_i64() {
            out[k] = json!(n);
        }
    }
    if let Some(name) = card.body["embossedName1"].as_str() {
        out["embosserName1"] = json!(name);
    }
    Reply::ok(out)
}
