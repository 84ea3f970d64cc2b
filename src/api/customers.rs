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

use axum::http::Method;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::issuing::{card_number, find_card, known_organization, number};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::processor::{CustomerActivation, CustomerAdd, CustomerUpdate};
use crate::api::domain::{CardRef, CardStatus, Organization, RecordNumber};
use crate::api::store::{Customer, Records};
use crate::{typed_handler, typed_handler_tx};

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::processor(
            Method::POST,
            "/customer/l8v2",
            "/customer/l8v2",
            typed_handler!(add),
        ),
        Route::processor(
            Method::POST,
            "/customer",
            "/customer/l8v2",
            typed_handler!(add),
        ),
        Route::processor(
            Method::PUT,
            "/customer/",
            "/customer/",
            typed_handler_tx!(update),
        ),
        Route::processor(
            Method::PUT,
            "/customer",
            "/customer/",
            typed_handler_tx!(update),
        ),
        Route::processor(
            Method::POST,
            "/customer/activation",
            "/customer/activation",
            typed_handler_tx!(activate),
        ),
    ]
}

const OWNER: &str = "/customerData/ownerCoOwnerData/ownerData";

/// A document as sent, normalised: letters and digits after dropping `.`, `-`, `/` and
/// spaces, at most 25, upper case.
fn document(raw: &str, field: &str) -> Result<String, ApiError> {
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
    Ok(doc.to_ascii_uppercase())
}

/// The answer to a customer add.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerAdded {
    organization_number: Organization,
    customer_number: RecordNumber,
    account_number: String,
}

async fn add(ctx: Ctx, req: CustomerAdd) -> Result<Reply, ApiError> {
    let key = &req.customer_data.customer_key_data;
    let org = key.organization_number;
    known_organization(
        &ctx,
        org,
        "/customerData/customerKeyData/organizationNumber",
    )?;
    let owner = req
        .customer_data
        .owner_co_owner_data
        .as_ref()
        .and_then(|o| o.owner_data.clone())
        .unwrap_or_default();
    let name = owner.name();
    if name.is_empty() {
        return Err(ApiError::unprocessable(
            "missing_name",
            "ownerData needs nameLine1 or firstName/lastName",
        )
        .field(format!("{OWNER}/nameLine1")));
    }
    let id = match key.customer_number.filter(|n| !n.is_zero()) {
        Some(n) => n,
        None => RecordNumber::from_id(crate::api::store::new_id())
            .map_err(|e| ApiError::internal(e.0))?,
    };
    let doc = match owner.document() {
        Some(raw) => document(raw, &format!("{OWNER}/identificationNumber"))?,
        None => format!("customer:{}", id.id()),
    };
    let account_number = key.account_number.clone().unwrap_or_default();
    let body = serde_json::to_value(&req).map_err(|e| ApiError::internal(e.to_string()))?;
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
            let c = r.create_customer(id.id(), &doc, &name, &body).await?;
            Reply::json(&CustomerAdded {
                organization_number: org,
                customer_number: RecordNumber::from_id(c.id)
                    .map_err(|e| ApiError::internal(e.0))?,
                account_number,
            })
        })
    })
    .await
}

/// The customer a client names, among its tenant's customers.
pub async fn owned_customer(
    r: &mut Records<'_>,
    id: impl crate::api::domain::IntoRecordId,
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

async fn update(ctx: Ctx, req: CustomerUpdate, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let org = req.organization_number;
    known_organization(&ctx, org, "/organizationNumber")?;
    let field = "/customerNumber";
    let not_found =
        || ApiError::unprocessable("customer_not_found", "no such customer").field(field);
    // The processor lets customerNumber be a customer number or a card's token.
    let customer = match RecordNumber::parse(&req.customer_number) {
        Ok(n) if r.find_customer(n).await?.is_some() => owned_customer(&mut r, n, field).await?,
        _ => {
            let card_ref = CardRef::parse(&req.customer_number).map_err(|_| not_found())?;
            let card = find_card(&ctx.app, &mut r, &card_ref, field)
                .await
                .map_err(|_| not_found())?;
            owned_customer(&mut r, card.customer_id, field).await?
        }
    };
    let mut name = req.person.name();
    if name.is_empty() {
        name.clone_from(&customer.name);
    }
    let status = req.status.unwrap_or(0);
    let patch = serde_json::to_value(&req).map_err(|e| ApiError::internal(e.to_string()))?;
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

async fn activate(
    ctx: Ctx,
    req: CustomerActivation,
    db: &mut AnyConnection,
) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let base = "/customerActivationData/customerActivationKeyData";
    let key = &req.customer_activation_data.customer_activation_key_data;
    let org = key.organization_number;
    known_organization(&ctx, org, &format!("{base}/organizationNumber"))?;
    let customer = owned_customer(
        &mut r,
        key.customer_number,
        &format!("{base}/customerNumber"),
    )
    .await?;
    let account_id = key.account_number;
    let token_field = format!("{base}/panToken");
    let card = find_card(&ctx.app, &mut r, &key.pan_token, &token_field).await?;
    if card.customer_id != customer.id || card.account_id != account_id.id() {
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
    let record = serde_json::to_value(&req).map_err(|e| ApiError::internal(e.to_string()))?;
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
        "accountNumber": account_id,
        "cardNumber": card_number(&card),
        "numberCardsActivated": activated,
    }))
}
