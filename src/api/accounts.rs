//! Accounts: `POST /account/add-L8V3` (= `/account`) and the instant account and card
//! `POST /account/v2/instantCard`.
//!
//! Choices where the processor's documents are silent:
//! * The account's product is the request's `organization` + `logo`, which must be a
//!   configured product (`422 unknown_product`); it is stored as `ORG/LOGO` (e.g.
//!   `800/1`, see [`product_code`]) and decides the BIN of the account's cards.
//! * `creditLimit` is in major units with at most two decimals (`5000.00`) and is kept in
//!   minor units; negative, not finite or above 10^13 minor units is
//!   `422 limit_out_of_range`. Absent: 0.
//! * The billing cycle day is `billingCycle`, 1-31 (`422 invalid_cycle_day`); absent on
//!   `add-L8V3` (where the spec does not require it): day 1.
//! * `accountNumber` all zeros or absent asks cofre to assign one; another value is the
//!   number wanted (`422 duplicate` if taken), as for customers.
//! * The whole request body is stored with the account (fields cofre does not act on are
//!   kept, none dropped).
//! * Instant card: `accountCreateFlag` `Y` creates the account (its `accountNumber` must
//!   then be empty or zeros), `N` puts the card on the existing account
//!   `accountData.accountNumber` of the customer. `embosserData.digitalCardFlag` 1 makes a
//!   digital-wallet card, else a physical credit card. The card is active at once;
//!   account and card are written in one transaction.

use axum::http::Method;
use serde_json::{Value, json};

use super::customers::owned_customer;
use super::issuing::{
    CardSpec, card_number, expiry_date, minor_units, new_card, number, number_field, product,
    product_code, product_of,
};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::{CardKind, CardStatus, Money};
use crate::api::store::{Account, Body, Records};
use crate::handler;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::processor(
            Method::POST,
            "/account/add-L8V3",
            "/account/add-L8V3",
            handler!(add),
        ),
        Route::processor(Method::POST, "/account", "/account/add-L8V3", handler!(add)),
        Route::processor(
            Method::POST,
            "/account/v2/instantCard",
            "/account/v2/instantCard",
            handler!(instant_card),
        ),
    ]
}

/// A billing cycle day (absent: `default`).
fn cycle_day(v: &Value, field: &str, default: Option<i64>) -> Result<i64, ApiError> {
    let bad = || ApiError::unprocessable("invalid_cycle_day", "the billing cycle day is 1-31");
    match (v.as_i64(), default) {
        (Some(d), _) if (1..=31).contains(&d) => Ok(d),
        (None, Some(d)) if v.is_null() => Ok(d),
        _ => Err(bad().field(field)),
    }
}

/// The account number a client asks for: `None` to have one assigned.
fn wanted_account(v: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        v => Ok(Some(number_field(v, field)?).filter(|n| *n != 0)),
    }
}

async fn account_free(r: &mut Records<'_>, id: i64, field: &str) -> Result<(), ApiError> {
    match r.find_account(id).await? {
        Some(_) => {
            Err(ApiError::unprocessable("duplicate", "this account number is in use").field(field))
        }
        None => Ok(()),
    }
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let base = "/accountData";
    let data = ctx.at(base);
    let customer_field = format!("{base}/customerNumber");
    let customer_id = number_field(&data["customerNumber"], &customer_field)?;
    let product = product(
        &ctx.app,
        &data["organization"],
        &data["logo"],
        &format!("{base}/logo"),
    )?;
    let limit = minor_units(&data["creditLimit"], &format!("{base}/creditLimit"))?;
    let cycle = cycle_day(
        &data["billingCycle"],
        &format!("{base}/billingCycle"),
        Some(1),
    )?;
    let number_field_name = format!("{base}/accountNumber");
    let wanted = wanted_account(&data["accountNumber"], &number_field_name)?;
    let account = Account {
        id: wanted.unwrap_or_else(crate::api::store::new_id),
        customer_id,
        product: product_code(product),
        credit_limit: limit,
        cycle_day: cycle,
        body: Body(ctx.body.clone()),
        status: "active".into(),
        tenant: ctx.tenant.to_string(),
    };
    let organization = product.organization;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            owned_customer(&mut r, customer_id, &customer_field).await?;
            if wanted.is_some() {
                account_free(&mut r, account.id, &number_field_name).await?;
            }
            let a = r.create_account(&account).await?;
            tracing::info!(account = a.id, customer = customer_id, "account added");
            Reply::ok(json!({
                "organization": organization,
                "accountNumber": number(a.id),
            }))
        })
    })
    .await
}

async fn instant_card(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let customer_id = number_field(&ctx.body["customerNumber"], "/customerNumber")?;
    let customer = owned_customer(&mut r, customer_id, "/customerNumber").await?;
    let org = &ctx.body["organizationNumber"];
    let requested = product(&ctx.app, org, &ctx.body["logo"], "/logo")?;
    let data = ctx.at("/accountData");
    let acct_field = "/accountData/accountNumber";
    let wanted = wanted_account(&data["accountNumber"], acct_field)?;
    let create = match ctx.body["accountCreateFlag"].as_str() {
        Some("Y") => true,
        Some("N") => false,
        _ => {
            return Err(
                ApiError::unprocessable("invalid_flag", "accountCreateFlag is Y or N")
                    .field("/accountCreateFlag"),
            );
        }
    };
    let account = if create {
        if wanted.is_some() {
            return Err(ApiError::unprocessable(
                "account_number_not_allowed",
                "the account number must be empty or zeros when accountCreateFlag is Y",
            )
            .field(acct_field));
        }
        Account {
            id: crate::api::store::new_id(),
            customer_id: customer.id,
            product: product_code(requested),
            credit_limit: minor_units(&data["creditLimit"], "/accountData/creditLimit")?,
            cycle_day: cycle_day(&data["billingCycle"], "/accountData/billingCycle", None)?,
            body: Body(ctx.body.clone()),
            status: "active".into(),
            tenant: ctx.tenant.to_string(),
        }
    } else {
        let not_found = || {
            ApiError::unprocessable("account_not_found", "no such account of this customer")
                .field(acct_field)
        };
        let id = wanted.ok_or_else(not_found)?;
        let a = r.find_account(id).await?.ok_or_else(not_found)?;
        if a.customer_id != customer.id {
            return Err(not_found());
        }
        a
    };
    // A card on an existing account takes that account's product (its BIN).
    let product = product_of(&ctx.app, &account).unwrap_or(requested);
    let emb_base = "/embosserData";
    let emb = ctx.at(emb_base);
    let kind = match emb["digitalCardFlag"].as_i64() {
        Some(1) => CardKind::DigitalWallet,
        Some(0) | None => CardKind::PhysicalCredit,
        Some(_) => {
            return Err(
                ApiError::unprocessable("invalid_flag", "digitalCardFlag is 0 or 1")
                    .field("/embosserData/digitalCardFlag"),
            );
        }
    };
    drop(r);
    drop(reader);
    let spec = CardSpec::read(emb, emb_base, product, &customer, Some(kind))?;
    let new = new_card(&ctx, product, &account, &customer, &spec, ctx.body.clone()).await?;
    let (organization, logo, customer_id) = (product.organization, product.logo, customer.id);
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let a = if create {
                r.create_account(&account).await?
            } else {
                account
            };
            let card = r
                .create_card(
                    crate::api::store::NewCard {
                        account_id: a.id,
                        ..new
                    },
                    CardStatus::Active,
                    "create-instant",
                )
                .await?;
            tracing::info!(account = a.id, card = card.id, "instant card issued");
            let mut out = json!({
                "organizationNumber": organization,
                "logo": logo,
                "customerNumber": number(customer_id),
                "accountNumber": number(a.id),
                "cardNumber": card_number(&card),
                "creditLimit": Money::from_minor(a.credit_limit).to_json(),
            });
            if let Some(d) = expiry_date(&card.expiry) {
                out["cardExpiryDate"] = json!(d);
            }
            Reply::ok(out)
        })
    })
    .await
}
