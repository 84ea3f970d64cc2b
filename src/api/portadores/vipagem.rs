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

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{from_path, not_the_portadors};
use super::input::{self, Checks, Field, IdText, Text};
use super::referencias::{operation, path_id, route};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::config::Product;
use crate::api::domain::CardStatus;
use crate::api::issuing::product_code;
use crate::api::state::App;
use crate::api::store::{Account, Card};
use crate::handler;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![route(
        Method::POST,
        "/api/v1/portadores/{idPortador}/vipagem",
        doc,
        handler!(vipagem),
    )]
}

fn doc() -> Value {
    operation(
        "Altera a classificação do cartão",
        &[path_id()],
        Some(
            json!({"type": "object", "required": ["classificacao"], "properties": {
                "classificacao": {"type": "string", "description": "Nome do produto, por exemplo platinum"},
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VipagemReq {
    #[serde(default)]
    classificacao: Field<String>,
    #[serde(default)]
    id_conta: Field<IdText>,
}

async fn vipagem(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: VipagemReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    let wanted = chk.text(
        "classificacao",
        &req.classificacao,
        true,
        Text::printable(64),
    );
    let account_id = chk.id("idConta", &req.id_conta, false);
    chk.finish()?;
    let wanted = wanted.ok_or_else(|| ApiError::internal("a checked field is missing"))?;
    let p = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?
    };
    if !p.is_titular() {
        return Err(ApiError::unprocessable(
            "not_titular",
            "A classificação é da conta do titular.",
        ));
    }
    let account = match account_id {
        None => p.main_account(),
        Some(id) => p.accounts.iter().find(|a| a.id == id),
    }
    .cloned()
    .ok_or_else(|| not_the_portadors("account_not_found", "conta", "idConta"))?;
    let all_cards: Vec<Card> = p
        .cards
        .iter()
        .chain(p.dependents.iter().map(|(_, c)| c))
        .cloned()
        .collect();
    let current = product_of(&ctx.app, &account, &all_cards)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_product",
                "O produto atual da conta não está configurado.",
            )
        })?
        .clone();
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
        .cloned()
        .ok_or_else(|| {
            let mut chk = Checks::new();
            chk.fail(
                "classificacao",
                "unknown_product",
                "um produto da mesma organização da conta",
            );
            chk.finish()
                .err()
                .unwrap_or_else(|| ApiError::internal("no error"))
        })?;
    if new.logo == current.logo {
        return Err(
            ApiError::unprocessable("unchanged", "A conta já tem esta classificação.")
                .field("classificacao"),
        );
    }
    let old_name = current.name.clone().unwrap_or_default();
    let new_name = new.name.clone().unwrap_or_default();
    let class = json!({"organizacao": new.organization, "logo": new.logo, "nome": new_name});
    let code = product_code(&new);
    let cards: Vec<i64> = all_cards
        .iter()
        .filter(|c| {
            c.account_id == account.id
                && !matches!(c.status, CardStatus::Replaced | CardStatus::Cancelled)
        })
        .map(|c| c.id)
        .collect();
    let customer = p.customer.id;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let c2 = class.clone();
            r.update_account(account.id, "vipagem", |a| {
                a.product = code;
                if let Some(o) = a.body.as_object_mut() {
                    o.insert("classificacao".into(), c2);
                }
            })
            .await?;
            for id in &cards {
                let c3 = class.clone();
                r.update_card(*id, "vipagem", |c| {
                    if let Some(o) = c.body.as_object_mut() {
                        o.insert("classificacao".into(), c3);
                    }
                })
                .await?;
            }
            r.record_occurrence(
                customer,
                "vipagem",
                &format!("conta={} de={old_name} para={new_name}", account.id),
            )
            .await?;
            Reply::ok(json!({
                "idPortador": customer,
                "idConta": account.id,
                "classificacaoAnterior": old_name,
                "classificacao": new_name,
                "cartoes": cards.len(),
            }))
        })
    })
    .await
}
