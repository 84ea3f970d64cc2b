//! Account opening's second half (see `cadastro`): the cards from the daemon before the
//! transaction, then the portador, its account, card, phones, references and
//! additionals written together with the call's answer.

use serde_json::json;

use super::cadastro::NewPortador;
use super::common::document_key;
use super::dependentes::create_dependents;
use super::telefones::store_phone;
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::domain::br;
use crate::api::domain::{CardKind, CardStatus, Money};
use crate::api::issuing::{Issued, expiry_in, issue, product_code};
use crate::api::store::{Account, Body, NewCard, Records, StoreError, new_id};

fn exists(field: &str) -> ApiError {
    ApiError::conflict(
        "portador_exists",
        "Já existe um portador com este documento nesta loja.",
    )
    .field(field)
}

pub(super) async fn open(ctx: &Ctx, o: NewPortador) -> Result<Reply, ApiError> {
    let field = if o.tipo == "PF" { "cpf" } else { "cnpj" };
    {
        let mut reader = ctx.reader().await?;
        if !reader
            .records()
            .portadores_by_document(&o.documento)
            .await?
            .is_empty()
        {
            return Err(exists(field));
        }
    }
    // The daemon first, outside the transaction: nothing is recorded if a card cannot
    // be issued.
    let holder_card = issue(&ctx.app, &o.terms.product).await?;
    let mut dependent_cards: Vec<Issued> = Vec::with_capacity(o.adicionais.len());
    for _ in &o.adicionais {
        dependent_cards.push(issue(&ctx.app, &o.terms.product).await?);
    }
    let tenant = ctx.tenant.as_str().to_owned();
    let kinship = {
        let mut reader = ctx.reader().await?;
        reader.records().kinship_degrees().await?
    };
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            create(&mut r, &tenant, o, holder_card, dependent_cards, &kinship)
                .await
                .map_err(|e| match e.code {
                    "duplicate" => exists(field),
                    _ => e,
                })
        })
    })
    .await
}

async fn create(
    r: &mut Records<'_>,
    tenant: &str,
    o: NewPortador,
    card: Issued,
    dependent_cards: Vec<Issued>,
    kinship: &[crate::api::store::CodeRow],
) -> Result<Reply, ApiError> {
    if !r.portadores_by_document(&o.documento).await?.is_empty() {
        return Err(ApiError::from(StoreError::Conflict("document".into())));
    }
    let t = &o.terms;
    let customer = r
        .create_customer(
            new_id(),
            &document_key(o.tipo, &o.documento, tenant),
            &o.nome,
            &o.body,
        )
        .await?;
    r.index_portador(customer.id, o.tipo, &o.documento, &o.rg, &br::fold(&o.nome))
        .await?;
    let account = r
        .create_account(&Account {
            id: new_id(),
            customer_id: customer.id,
            product: product_code(&t.product),
            credit_limit: t.limit.minor(),
            cycle_day: t.due,
            body: Body(json!({"origem": "portadores", "tipoPessoa": o.tipo})),
            status: "active".into(),
            tenant: tenant.to_owned(),
        })
        .await?;
    if t.limit > Money::ZERO {
        r.record_limit_change(
            customer.id,
            account.id,
            "limiteRotativo",
            0,
            t.limit.minor(),
        )
        .await?;
    }
    let years = t.product.validity_years.unwrap_or(5);
    let service = t
        .product
        .service_code
        .clone()
        .unwrap_or_else(|| "201".into());
    let expiry = expiry_in(years);
    let holder_card = r
        .create_card(
            NewCard {
                account_id: account.id,
                customer_id: customer.id,
                token: card.token,
                token_version: card.token_version,
                lookup_token: card.lookup_token,
                masked_pan: card.masked_pan,
                kind: CardKind::PhysicalCredit,
                expiry: expiry.clone(),
                service_code: service.clone(),
                pvv: card.pvv,
                pin_blob: card.pin_blob,
                body: json!({"embossedName": o.nome_cartao, "origem": "portadores"}),
                credit_limit: 0,
            },
            CardStatus::Active,
            "create",
        )
        .await?;
    let mut phones = Vec::new();
    for t in &o.phones {
        phones.push(store_phone(r, customer.id, t).await?);
    }
    for reference in &o.references {
        r.add_reference(customer.id, reference).await?;
    }
    let adicionais = create_dependents(
        r,
        customer.id,
        &account,
        (years, &service),
        o.adicionais,
        dependent_cards,
        kinship,
    )
    .await?;
    Reply::created(json!({
        "idPortador": customer.id,
        "contaCartao": account.id,
        "idCartao": holder_card.id,
        "cartaoMascarado": super::common::mask(&holder_card),
        "numeroManual": format!("CA-{}=", account.id),
        "nomeCartao": o.nome_cartao,
        "diaVencimento": t.due,
        "dataValidade": format!("20{}-{}-01", &expiry[0..2], &expiry[2..4]),
        "adicionais": adicionais,
        "telefones": phones,
    }))
}
