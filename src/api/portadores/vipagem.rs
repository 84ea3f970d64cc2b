//! `POST /api/v1/portadores/{idPortador}/vipagem`: changes the card classification
//! (the product, e.g. `gold` -> `platinum`).
//!
//! Choices where the document is silent:
//! * Body `{"classificacao": "<product name>", "idConta"?}`: a `name` of the configured
//!   products (`[[products]]` in api.toml), compared without case, of the same
//!   organization as the account's current product. Unknown, another organization's,
//!   or the current one: `422`.
//! * The account's current product is the configured product whose code
//!   (`ORG/LOGO`, as the processor paths store it) or name equals the account's
//!   `product`, else whose BIN starts the masked PAN of the account's first card, else
//!   whose logo equals the account's `product`.
//! * The account's `product` becomes the new product's `ORG/LOGO` and its body keeps
//!   `classificacao: {organizacao, logo, nome}`; each live card's body gets
//!   `classificacao` (history rows on the account and every card) and an occurrence
//!   `vipagem` records the change. The card numbers stay: a BIN change needs a reissue.

use crate::api::domain::CardStatus;
use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use super::common::from_path;
use super::referencias::{operation, path_id};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::config::Product;
use crate::api::issuing::number_field;
use crate::api::issuing::product_code;
use crate::api::state::App;
use crate::api::store::{Account, Card};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![Route::own(
        Method::POST,
        "/api/v1/portadores/{idPortador}/vipagem",
        doc,
        handler_tx!(vipagem),
    )]
}

fn doc() -> Value {
    operation(
        "Altera a classificação do cartão",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["classificacao"], "properties": {
                "classificacao": {"type": "string", "description": "Product name, e.g. platinum"},
                "idConta": {"oneOf": [{"type": "integer"}, {"type": "string"}]}
            }}),
        ),
        (
            "200",
            json!({"type": "object", "properties": {
                "idPortador": {"type": "integer"}, "idConta": {"type": "integer"},
                "classificacaoAnterior": {"type": "string"}, "classificacao": {"type": "string"},
                "cartoes": {"type": "integer"}
            }}),
        ),
    )
}

/// The configured product of an account (see the module documentation).
pub(super) fn product_of<'a>(
    app: &'a App,
    account: &Account,
    cards: &[Card],
) -> Option<&'a Product> {
    let products = &app.config.products;
    products
        .iter()
        .find(|p| product_code(p) == account.product)
        .or_else(|| {
            products.iter().find(|p| {
                p.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&account.product))
            })
        })
        .or_else(|| {
            let first = cards.iter().find(|c| c.account_id == account.id)?;
            products
                .iter()
                .find(|p| first.masked_pan.starts_with(&p.bin))
        })
        .or_else(|| {
            products
                .iter()
                .find(|p| p.logo.to_string() == account.product)
        })
}

async fn vipagem(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    let p = from_path(&ctx, &mut r).await?;
    let wanted = match ctx.at("/classificacao") {
        Value::String(s) if !s.trim().is_empty() && s.len() <= 64 => s.trim().to_owned(),
        _ => {
            return Err(ApiError::unprocessable(
                "classificacao_invalida",
                "classificacao: a product name is required",
            )
            .field("/classificacao"));
        }
    };
    let account = if ctx.at("/idConta").is_null() {
        p.accounts.first()
    } else {
        let id = number_field(ctx.at("/idConta"), "/idConta")?;
        p.accounts.iter().find(|a| a.id == id)
    }
    .ok_or_else(|| {
        ApiError::unprocessable("conta_nao_encontrada", "the portador has no such account")
            .field("/idConta")
    })?;
    let current = product_of(&ctx.app, account, &p.cards).ok_or_else(|| {
        ApiError::unprocessable(
            "produto_desconhecido",
            "the account's current product is not configured",
        )
    })?;
    let new = ctx
        .app
        .config
        .products
        .iter()
        .find(|q| {
            q.organization == current.organization
                && q.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&wanted))
        })
        .ok_or_else(|| {
            ApiError::unprocessable(
                "classificacao_invalida",
                "no such product in the account's organization",
            )
            .field("/classificacao")
        })?;
    let old_name = current.name.clone().unwrap_or_default();
    let new_name = new.name.clone().unwrap_or_default();
    if new.logo == current.logo {
        return Err(ApiError::unprocessable(
            "classificacao_inalterada",
            "the account already has this classification",
        )
        .field("/classificacao"));
    }
    let class = json!({"organizacao": new.organization, "logo": new.logo, "nome": new_name});
    let c2 = class.clone();
    let code = product_code(new);
    r.update_account(account.id, "vipagem", |a| {
        a.product = code;
        if let Some(o) = a.body.as_object_mut() {
            o.insert("classificacao".into(), c2);
        }
    })
    .await?;
    let mut changed = 0;
    for card in p.cards.iter().filter(|c| {
        c.account_id == account.id
            && !matches!(c.status, CardStatus::Replaced | CardStatus::Cancelled)
    }) {
        let c3 = class.clone();
        r.update_card(card.id, "vipagem", |c| {
            if let Some(o) = c.body.as_object_mut() {
                o.insert("classificacao".into(), c3);
            }
        })
        .await?;
        changed += 1;
    }
    r.record_occurrence(
        p.customer.id,
        "vipagem",
        &format!("conta={} de={old_name} para={new_name}", account.id),
    )
    .await?;
    Reply::ok(json!({
        "idPortador": p.customer.id,
        "idConta": account.id,
        "classificacaoAnterior": old_name,
        "classificacao": new_name,
        "cartoes": changed,
    }))
}
