//! `POST /api/v1/portadores/contas/pj`: a company's account (see `cadastro`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::abertura::open;
use super::cadastro::{NewPortador, Opening, check_terms, mismatch_first};
use super::contato::{EnderecoReq, Kind, check_address, check_phones};
use super::input::{self, Checks, Field, Text};
use super::pessoa::check_past_date;
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::domain::br::Cnpj;
use crate::api::domain::emboss::embossed_name;
use crate::api::issuing::today_date;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContaPj {
    #[serde(default)]
    razao_social: Field<String>,
    #[serde(default)]
    nome_fantasia: Field<String>,
    #[serde(default)]
    cnpj: Field<String>,
    #[serde(default)]
    data_abertura: Field<String>,
    #[serde(default)]
    inscricao_estadual: Field<String>,
    #[serde(default)]
    email: Field<String>,
    #[serde(default)]
    endereco: Field<EnderecoReq>,
    #[serde(default)]
    nome_cartao: Field<String>,
    #[serde(flatten)]
    abertura: Opening,
    #[serde(flatten)]
    outros: Map<String, Value>,
}

pub(super) async fn conta_pj(ctx: Ctx) -> Result<Reply, ApiError> {
    let req: ContaPj = input::body(&ctx.body, "um objeto")?;
    let today = today_date();
    let mut chk = Checks::new();
    let terms = check_terms(&mut chk, &ctx, &req.abertura);
    let razao = chk.text("razaoSocial", &req.razao_social, true, Text::printable(150));
    let fantasia = chk.text(
        "nomeFantasia",
        &req.nome_fantasia,
        false,
        Text::printable(150),
    );
    let cnpj = match chk.text("cnpj", &req.cnpj, true, Text::printable(18)) {
        Some(c) => Cnpj::parse(&c)
            .map_err(|_| {
                chk.fail(
                    "cnpj",
                    "check_digits",
                    "CNPJ com dígitos verificadores inválidos",
                )
            })
            .ok(),
        None => None,
    };
    let opened = check_past_date(&mut chk, "dataAbertura", &req.data_abertura, false, today);
    let ie = chk.text(
        "inscricaoEstadual",
        &req.inscricao_estadual,
        false,
        Text {
            min: 2,
            max: 14,
            chars: input::Chars::Alphanumeric,
        },
    );
    let email = chk
        .text("email", &req.email, false, Text::printable(254))
        .and_then(|e| {
            crate::api::domain::contact::email(&e)
                .map_err(|_| chk.fail("email", "invalid_email", "um e-mail nome@dominio.tld"))
                .ok()
        });
    let address = check_address(&mut chk, "endereco", &req.endereco, Kind::Residencial, true);
    let shown = chk.text("nomeCartao", &req.nome_cartao, false, Text::printable(26));
    let phones = check_phones(&mut chk, "telefones", &req.abertura.telefones, 10);
    mismatch_first(chk)?;
    let (Some(terms), Some(razao), Some(cnpj)) = (terms, razao, cnpj) else {
        return Err(ApiError::internal("a checked opening lost a field"));
    };
    let mut body = Map::new();
    body.insert("tipoPessoa".into(), json!("PJ"));
    body.insert("razaoSocial".into(), json!(razao));
    body.insert("nome".into(), json!(razao));
    body.insert("cnpj".into(), json!(cnpj.as_str()));
    for (k, v) in [
        ("nomeFantasia", fantasia.clone()),
        ("dataAbertura", opened.map(|d| d.to_string())),
        ("inscricaoEstadual", ie),
        ("email", email),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    if let Some(a) = address {
        body.insert("enderecoResidencial".into(), Value::Object(a));
    }
    input::keep_others(&mut body, &req.outros);
    let card_name = embossed_name(shown.as_deref().or(fantasia.as_deref()).unwrap_or(&razao));
    open(
        &ctx,
        NewPortador {
            tipo: "PJ",
            documento: cnpj.as_str().to_owned(),
            rg: String::new(),
            nome: razao,
            nome_cartao: card_name,
            body: Value::Object(body),
            terms,
            phones,
            references: Vec::new(),
            adicionais: Vec::new(),
        },
    )
    .await
}
