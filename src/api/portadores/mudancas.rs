//! Changes: `PATCH /api/v1/portadores/{idPortador}` (partial update of the person's
//! fields, with the rules of `pessoa` and `contato`; addresses change field by field;
//! `cpf`, `cnpj` and `idLoja` cannot change), `PATCH /{idPortador}/limites`
//! (`limiteRotativo`, `limiteParcelado`, `limiteSaque` in exact reais; the installment
//! and cash limits may not exceed the revolving limit; every change is written to the
//! limit history and shows in the views' `extratoClienteResponse`),
//! `GET /{idPortador}/limites/historico`, `GET /{idPortador}/ciclo` (see `ciclo`),
//! `PATCH /api/v1/portadores/produto` (`{idPortador, idProduto}`: the product of the
//! portador's first account).
//!
//! Every change reads the record again inside the writer's transaction (row-locked on
//! PostgreSQL) and writes it with its history row: two changes of different fields
//! both land.

use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::cadastro::TITULAR_MIN_AGE;
use super::ciclo::Ciclo;
use super::common::{Role, from_path, load, parse_id};
use super::dependentes::DEPENDENT_MIN_AGE;
use super::input::{self, Checks, Field, IdText};
use super::pessoa::{PessoaReq, check_money, check_person};
use super::referencias::{operation, path_id, ref_data, route};
use super::visao::{self, body_limit};
use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::api::domain::Money;
use crate::api::domain::br;
use crate::api::issuing::{product_code, today_date};
use crate::handler;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}",
            doc_patch,
            handler!(patch),
        ),
        route(
            Method::PATCH,
            "/api/v1/portadores/{idPortador}/limites",
            doc_limites,
            handler!(limites),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/limites/historico",
            doc_hist,
            handler!(limites_historico),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/{idPortador}/ciclo",
            doc_ciclo,
            handler!(get_ciclo),
        ),
        route(
            Method::PATCH,
            "/api/v1/portadores/produto",
            doc_produto,
            handler!(produto),
        ),
    ]
}

fn doc_patch() -> Value {
    operation(
        "Altera os dados do portador (atualização parcial)",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "nome": {"type": "string"}, "nomeSocial": {"type": "string"}, "email": {"type": "string"},
            "nacionalidade": {"type": "string"}, "cidadeNatal": {"type": "string"}, "estadoNatal": {"type": "string"},
            "enderecoResidencial": {"type": "object"}, "enderecoComercial": {"type": "object"},
            "enderecoAlternativo": {"type": "object"}, "sexo": {"type": "string"}, "nomePai": {"type": "string"},
            "nomeMae": {"type": "string"}, "idMoradia": {"type": "integer"}, "idEscolaridade": {"type": "integer"},
            "idOcupacao": {"type": "integer"}, "renda": {"type": "object"}, "estadoCivil": {"type": "string"},
            "rg": {"type": "object"}, "conjuge": {"type": "object"}, "pep": {"type": "object"},
            "estrangeiro": {"type": "object"}, "idProfissao": {"type": "integer"},
            "dataAdmissaoProfissao": {"type": "string", "format": "date"}, "quantidadeAnosProfissao": {"type": "integer"},
            "portadorNecessidadesVisuais": {"type": "boolean"}, "inibirEnvioFaturaGrafica": {"type": "boolean"},
            "dataNascimento": {"type": "string", "format": "date"}
        }})),
        ("200", json!({"type": "object"})),
    )
}
fn doc_limites() -> Value {
    operation(
        "Altera os limites de crédito de um portador",
        &[path_id()],
        Some(json!({"type": "object", "properties": {
            "limiteRotativo": {"type": "number"}, "limiteParcelado": {"type": "number"}, "limiteSaque": {"type": "number"}}})),
        ("200", json!({"type": "object"})),
    )
}
fn doc_hist() -> Value {
    operation(
        "Lista o histórico de limites do portador",
        &[path_id()],
        None,
        (
            "200",
            json!({"type": "array", "items": {"type": "object", "properties": {
            "idConta": {"type": "integer"}, "limite": {"type": "string"}, "valorAnterior": {"type": "number"},
            "valorNovo": {"type": "number"}, "usuario": {"type": "string"}, "dataHora": {"type": "string"}}}}),
        ),
    )
}
fn doc_ciclo() -> Value {
    operation(
        "Consulte o ciclo de fatura do portador",
        &[path_id()],
        None,
        ("200", json!({"type": "object"})),
    )
}
fn doc_produto() -> Value {
    operation(
        "Altera o produto vinculado a um portador",
        &[],
        Some(
            json!({"type": "object", "required": ["idPortador", "idProduto"], "properties": {
            "idPortador": {"type": "integer"}, "idProduto": {"type": "integer"}}}),
        ),
        ("200", json!({"type": "object"})),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchReq {
    #[serde(default)]
    cpf: Field<Value>,
    #[serde(default)]
    cnpj: Field<Value>,
    #[serde(default)]
    id_loja: Field<Value>,
    #[serde(flatten)]
    pessoa: PessoaReq,
    #[serde(flatten)]
    outros: Map<String, Value>,
}

/// Merges a checked change into a stored body: objects key by key, values replaced.
fn merge(base: &mut Value, change: &Value) {
    match (base, change) {
        (Value::Object(b), Value::Object(c)) => {
            for (k, v) in c {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, c) => *b = c.clone(),
    }
}

async fn patch(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: PatchReq = input::body(&ctx.body, "um objeto")?;
    let (p, refs) = {
        let mut reader = ctx.reader().await?;
        let mut r = reader.records();
        (from_path(&ctx, &mut r).await?, ref_data(&mut r).await?)
    };
    let mut chk = Checks::new();
    for (key, f) in [
        ("cpf", &req.cpf),
        ("cnpj", &req.cnpj),
        ("idLoja", &req.id_loja),
    ] {
        if f.is_given() {
            chk.fail(key, "immutable", "não pode ser alterado");
        }
    }
    let min_age = if matches!(p.role, Role::Adicional { .. }) {
        DEPENDENT_MIN_AGE
    } else {
        TITULAR_MIN_AGE
    };
    let mut change = check_person(&mut chk, &req.pessoa, &refs, today_date(), false, min_age);
    input::keep_others(&mut change, &req.outros);
    if change.is_empty() && chk.is_clean() {
        chk.fail("corpo", "empty", "nenhum campo para alterar");
    }
    chk.finish()?;
    let id = p.customer.id;
    let change = Value::Object(change);
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let new_name = change
                .get("nome")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let updated = r
                .update_customer(id, "portador_update", |c| {
                    merge(&mut c.body, &change);
                    if let Some(n) = new_name {
                        c.name = n;
                    }
                })
                .await?;
            let p = load(&mut r, updated.id).await?;
            if p.is_titular()
                && !r
                    .portadores_by_document(p.documento.as_str())
                    .await?
                    .is_empty()
            {
                let tipo = updated
                    .body
                    .get("tipoPessoa")
                    .and_then(Value::as_str)
                    .unwrap_or("PF")
                    .to_owned();
                let rg = updated
                    .body
                    .get("rg")
                    .and_then(|v| v.get("rg").or(Some(v)))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                r.index_portador(
                    updated.id,
                    &tipo,
                    p.documento.as_str(),
                    &rg,
                    &br::fold(&updated.name),
                )
                .await?;
            }
            Reply::ok(visao::resumo(&p))
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LimitsReq {
    #[serde(default)]
    limite_rotativo: Field<Value>,
    #[serde(default)]
    limite_parcelado: Field<Value>,
    #[serde(default)]
    limite_saque: Field<Value>,
}

async fn limites(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: LimitsReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    let rot = check_money(&mut chk, "limiteRotativo", &req.limite_rotativo);
    let parc = check_money(&mut chk, "limiteParcelado", &req.limite_parcelado);
    let saque = check_money(&mut chk, "limiteSaque", &req.limite_saque);
    if !req.limite_rotativo.is_given()
        && !req.limite_parcelado.is_given()
        && !req.limite_saque.is_given()
    {
        chk.fail(
            "limiteRotativo",
            "required",
            "informe limiteRotativo, limiteParcelado ou limiteSaque",
        );
    }
    chk.finish()?;
    let p = {
        let mut reader = ctx.reader().await?;
        from_path(&ctx, &mut reader.records()).await?
    };
    if !p.is_titular() {
        return Err(ApiError::unprocessable(
            "not_titular",
            "Os limites são da conta do titular.",
        ));
    }
    let account = p
        .main_account()
        .map(|a| a.id)
        .ok_or_else(|| ApiError::unprocessable("no_account", "O portador não tem conta."))?;
    let customer = p.customer.id;
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let current = r.account(account).await?;
            let before = [
                ("limiteRotativo", current.credit_limit),
                ("limiteParcelado", body_limit(&current, "limiteParcelado")),
                ("limiteSaque", body_limit(&current, "limiteSaque")),
            ];
            let wanted = [rot, parc, saque];
            let after: Vec<(&str, i64)> = before.iter().zip(wanted).map(|((k, b), w)| (*k, w.map_or(*b, Money::minor))).collect();
            let mut chk = Checks::new();
            for (i, (k, v)) in after.iter().enumerate().skip(1) {
                if *v > after[0].1 && wanted[i].is_some() {
                    chk.fail(*k, "above_revolving", "não pode passar do limiteRotativo");
                } else if *v > after[0].1 {
                    chk.fail("limiteRotativo", "below_other_limits", format!("não pode ficar abaixo do {k}"));
                }
            }
            chk.finish()?;
            let to_store = after.clone();
            let updated = r
                .update_account(account, "limits", |a| {
                    a.credit_limit = to_store[0].1;
                    if let Some(o) = a.body.as_object_mut() {
                        for (k, v) in &to_store[1..] {
                            o.insert((*k).to_owned(), Money::from_minor(*v).to_json());
                        }
                    }
                })
                .await?;
            for ((kind, b), (_, a)) in before.iter().zip(&after) {
                if b != a {
                    r.record_limit_change(customer, account, kind, *b, *a).await?;
                }
            }
            Reply::ok(json!({
                "idConta": updated.id,
                "limiteRotativo": Money::from_minor(updated.credit_limit).to_json(),
                "limiteParcelado": Money::from_minor(body_limit(&updated, "limiteParcelado")).to_json(),
                "limiteSaque": Money::from_minor(body_limit(&updated, "limiteSaque")).to_json(),
            }))
        })
    })
    .await
}

async fn limites_historico(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let mut r = reader.records();
    let p = from_path(&ctx, &mut r).await?;
    let holder = match p.role {
        Role::Adicional { holder } => holder,
        Role::Titular => p.customer.id,
    };
    let rows = r.limit_history(holder).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|h| {
            json!({"idConta": h.account_id, "limite": h.kind,
                "valorAnterior": Money::from_minor(h.before_cents).to_json(), "valorNovo": Money::from_minor(h.after_cents).to_json(),
                "usuario": h.actor, "dataHora": super::historico::rfc3339(h.at_ms)})
        })
        .collect();
    Reply::ok(Value::Array(items))
}

async fn get_ciclo(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    let p = from_path(&ctx, &mut reader.records()).await?;
    let a = p
        .main_account()
        .ok_or_else(|| ApiError::unprocessable("no_account", "O portador não tem conta."))?;
    Reply::ok(Ciclo::of(a.cycle_day, today_date()).json(a.id))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProdutoReq {
    #[serde(default)]
    id_portador: Field<IdText>,
    #[serde(default)]
    id_produto: Field<i64>,
}

async fn produto(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ProdutoReq = input::body(&ctx.body, "um objeto")?;
    let mut chk = Checks::new();
    let id = chk.id("idPortador", &req.id_portador, true);
    let logo = chk.integer("idProduto", &req.id_produto, true, 1..=i64::from(u32::MAX));
    let product = logo.and_then(|l| {
        ctx.app
            .config
            .products
            .iter()
            .find(|p| p.logo == l)
            .cloned()
    });
    if logo.is_some() && product.is_none() {
        chk.fail("idProduto", "unknown_product", "nenhum produto com este id");
    }
    chk.finish()?;
    let (Some(id), Some(product)) = (id, product) else {
        return Err(ApiError::internal("a checked field is missing"));
    };
    let id = parse_id(&id.to_string())?;
    let p = {
        let mut reader = ctx.reader().await?;
        load(&mut reader.records(), id).await?
    };
    if !p.is_titular() {
        return Err(ApiError::unprocessable(
            "not_titular",
            "O produto é da conta do titular.",
        ));
    }
    let account = p
        .main_account()
        .map(|a| a.id)
        .ok_or_else(|| ApiError::unprocessable("no_account", "O portador não tem conta."))?;
    let code = product_code(&product);
    ctx.commit_records(move |mut r| {
        Box::pin(async move {
            let updated = r
                .update_account(account, "product", |a| a.product = code)
                .await?;
            Reply::ok(json!({
                "idPortador": p.customer.id,
                "idConta": updated.id,
                "idProduto": product.logo,
                "produto": product.name.clone().unwrap_or_default(),
            }))
        })
    })
    .await
}
