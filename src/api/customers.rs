//! Customers: `POST /customer` (= `/customer/l8v2`), `PUT /customer` (= `/customer/`),
//! `POST /customer/activation`.
//!
//! Choices where the processor's documents are silent, written down here and in the
//! README:
//! * `customerKeyData.customerNumber` is the number the caller wants; all zeros asks
//!   cofre to assign one (either way the answer carries it). A number in use is
//!   `422 duplicate`.
//! * The customer's document is `ownerData.identificationNumber` (else `cuit`): letters
//!   and digits after dropping `.`, `-`, `/` and spaces, at most 25; another character is
//!   `422 invalid_document`. Two customers cannot share a document.
//! * `PUT /customer` updates the demographic data; the seed page also uses it as the
//!   activation step, so with `status` 1 it activates the customer's cards that are still
//!   inactive (never-activated embosser records), and the answer counts them.

use crate::api::domain::CardStatus;
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::issuing::{card_number, find_card, number, number_field};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::store::{Customer, Records};
use crate::{handler, handler_tx};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::processor(
            Method::POST,
            "/customer/l8v2",
            "/customer/l8v2",
            handler!(add),
        ),
        Route::processor(Method::POST, "/customer", "/customer/l8v2", handler!(add)),
        Route::processor(Method::PUT, "/customer/", "/customer/", handler_tx!(update)),
        Route::processor(Method::PUT, "/customer", "/customer/", handler_tx!(update)),
        Route::processor(
            Method::POST,
            "/customer/activation",
            "/customer/activation",
            handler_tx!(activate),
        ),
    ]
}

const OWNER: &str = "/customerData/ownerCoOwnerData/ownerData";

/// The document of an owner-data object, normalised.
fn document(owner: &Value, field: &str) -> Result<Option<String>, ApiError> {
    let raw = owner["identificationNumber"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| owner["cuit"].as_str().filter(|s| !s.trim().is_empty()));
    let Some(raw) = raw else {
        return Ok(None);
    };
    let doc: String = raw
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | '/' | ' '))
        .collect();
    if doc.is_empty() || doc.len() > 25 || !doc.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::unprocessable(
            "invalid_document",
            "the document number has characters other than letters and digits",
        )
        .field(field));
    }
    Ok(Some(doc.to_ascii_uppercase()))
}

fn name_of(owner: &Value) -> String {
    if let Some(n) = owner["nameLine1"].as_str().filter(|s| !s.trim().is_empty()) {
        return n.trim().to_owned();
    }
    ["firstName", "middleName", "lastName"]
        .iter()
        .filter_map(|k| owner[*k].as_str())
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn add(ctx: Ctx) -> Result<Reply, ApiError> {
    let key = ctx.at("/customerData/customerKeyData");
    let org = key["organizationNumber"].as_i64().unwrap_or(0);
    let owner = ctx.at(OWNER);
    let name = name_of(owner);
    if name.is_empty() {
        return Err(ApiError::unprocessable(
            "missing_name",
            "ownerData needs nameLine1 or firstName/lastName",
        )
        .field(format!("{OWNER}/nameLine1")));
    }
    let wanted = match &key["customerNumber"] {
        Value::Null => None,
        v => Some(number_field(
            v,
            "/customerData/customerKeyData/customerNumber",
        )?)
        .filter(|n| *n != 0),
    };
    let id = match wanted {
        Some(id) => id,
        None => crate::api::store::new_id(),
    };
    let doc = document(owner, &format!("{OWNER}/identificationNumber"))?
        .unwrap_or_else(|| format!("customer:{id}"));
    let account = key["accountNumber"].as_str().unwrap_or("").to_owned();
    let body = ctx.body.clone();
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            // Checked inside the transaction: the number and the document are unique in
            // the tenant.
            if r.find_customer(id).await?.is_some() {
                return Err(
                    ApiError::unprocessable("duplicate", "this customer number is in use")
                        .field("/customerData/customerKeyData/customerNumber"),
                );
            }
            if r.customer_by_document(&doc).await?.is_some() {
                return Err(ApiError::unprocessable(
                    "duplicate_document",
                    "a customer with this document exists",
                )
                .field(format!("{OWNER}/identificationNumber")));
            }
            let c = r.create_customer(id, &doc, &name, &body).await?;
            Reply::ok(json!({
                "organizationNumber": org,
                "customerNumber": number(c.id),
                "accountNumber": account,
            }))
        })
    })
    .await
}

/// The customer a client names, among its tenant's customers.
pub async fn owned_customer(
    r: &mut Records<'_>,
    id: i64,
    field: &str,
) -> Result<Customer, ApiError> {
    r.find_customer(id).await?.ok_or_else(|| {
        ApiError::unprocessable("customer_not_found", "no such customer").field(field)
    })
}

/// Merges the non-null fields of `patch` into `base` (objects recursively).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    continue;
                }
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

async fn update(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let org = ctx.body["organizationNumber"].as_i64().unwrap_or(0);
    let field = "/customerNumber";
    let raw = ctx.body["customerNumber"].as_str().unwrap_or("");
    // The processor lets customerNumber be a customer number or a card's token.
    let customer = match super::issuing::parse_number(raw, field) {
        Ok(id) if r.find_customer(id).await?.is_some() => owned_customer(&mut r, id, field).await?,
        _ => {
            let card = find_card(&ctx.app, &mut r, raw, field).await.map_err(|_| {
                ApiError::unprocessable("customer_not_found", "no such customer").field(field)
            })?;
            owned_customer(&mut r, card.customer_id, field).await?
        }
    };
    let mut name = name_of(&ctx.body);
    if name.is_empty() {
        name.clone_from(&customer.name);
    }
    let status = ctx.body["status"].as_i64().unwrap_or(0);
    let patch = ctx.body.clone();
    let updated = r
        .update_customer(customer.id, "update", |c| {
            if let Some(o) = c.body.as_object_mut() {
                merge(o.entry("update").or_insert(json!({})), &patch);
            }
            c.name = name;
            c.status = if status == 1 {
                "active".into()
            } else {
                format!("status-{status}")
            };
        })
        .await?;
    let mut activated = 0;
    let mut first_account = String::new();
    if status == 1 {
        for account in r.accounts_of(updated.id).await? {
            if first_account.is_empty() {
                first_account = number(account.id);
            }
            for card in r.cards_of_account(account.id).await? {
                if card.status == CardStatus::Inactive {
                    r.set_card_status(card.id, CardStatus::Active).await?;
                    activated += 1;
                }
            }
        }
    }
    tracing::info!(customer = updated.id, activated, "customer updated");
    Reply::ok(json!({
        "outputArea": {
            "organizationNumber": org,
            "customerNumber": number(updated.id),
            "cmsOrganizationNumber": org,
            "accountNumber": first_account,
        }
    }))
}

async fn activate(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let base = "/customerActivationData/customerActivationKeyData";
    let key = ctx.at(base);
    let org = key["organizationNumber"].as_i64().unwrap_or(0);
    let customer_id = number_field(&key["customerNumber"], &format!("{base}/customerNumber"))?;
    let customer = owned_customer(&mut r, customer_id, &format!("{base}/customerNumber")).await?;
    let account_id = number_field(&key["accountNumber"], &format!("{base}/accountNumber"))?;
    let token_field = format!("{base}/panToken");
    let card = find_card(
        &ctx.app,
        &mut r,
        key["panToken"].as_str().unwrap_or(""),
        &token_field,
    )
    .await?;
    if card.customer_id != customer.id || card.account_id != account_id {
        return Err(ApiError::unprocessable(
            "card_not_of_customer",
            "the card does not belong to this customer and account",
        )
        .field(token_field));
    }
    if !matches!(card.status, CardStatus::Inactive | CardStatus::Active) {
        return Err(ApiError::unprocessable(
            "card_not_activatable",
            format!("the card is {}", card.status),
        )
        .field(token_field));
    }
    let record = ctx.body.clone();
    r.update_customer(customer.id, "activation", |c| {
        if let Some(o) = c.body.as_object_mut() {
            o.insert("activationRecord".into(), record);
        }
        c.status = "active".into();
    })
    .await?;
    let activated = if card.status == CardStatus::Inactive {
        r.set_card_status(card.id, CardStatus::Active).await?;
        1
    } else {
        0
    };
    Reply::ok(json!({
        "organizationNumber": org,
        "customerNumber": number(customer.id),
        "accountNumber": number(account_id),
        "cardNumber": card_number(&card),
        "numberCardsActivated": activated,
    }))
}
