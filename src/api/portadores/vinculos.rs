//! The documents and relations of a person (see `pessoa`): RG, spouse, politically
//! exposed person, foreigner.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::contato::{TelefoneReq, check_phone, phone_json};
use super::input::{Chars, Checks, Field, Text};
use super::pessoa::{RefData, check_birth, check_cpf, check_money, check_past_date, object, sexo};
use super::regras::code_row;
use crate::api::domain::Date;
use crate::api::domain::br;

/// An RG document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RgReq {
    #[serde(default)]
    pub(super) rg: Field<String>,
    #[serde(default)]
    pub(super) data_emissao: Field<String>,
    #[serde(default)]
    pub(super) orgao_emissor: Field<String>,
    #[serde(default)]
    pub(super) unidade_federativa: Field<String>,
}

/// A spouse.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConjugeReq {
    #[serde(default)]
    pub(super) nome: Field<String>,
    #[serde(default)]
    pub(super) sexo: Field<String>,
    #[serde(default)]
    pub(super) data_nascimento: Field<String>,
    #[serde(default)]
    pub(super) nome_empresa: Field<String>,
    #[serde(default)]
    pub(super) id_profissao: Field<i64>,
    #[serde(default)]
    pub(super) telefone: Field<TelefoneReq>,
    #[serde(default)]
    pub(super) cpf: Field<String>,
    #[serde(default)]
    pub(super) escolaridade: Field<String>,
    #[serde(default)]
    pub(super) rg: Field<RgReq>,
    #[serde(default)]
    pub(super) salario: Field<Value>,
}

/// A politically exposed person the portador is related to.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PepReq {
    #[serde(default)]
    pub(super) cpf: Field<String>,
    #[serde(default)]
    pub(super) nome: Field<String>,
    #[serde(default)]
    pub(super) justificativa: Field<String>,
}

/// A foreigner's origin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstrangeiroReq {
    #[serde(default)]
    pub(super) pais_origem: Field<String>,
    #[serde(default)]
    pub(super) documento_pais_origem: Field<String>,
}

pub(super) fn check_rg(
    chk: &mut Checks,
    name: &str,
    rg: &RgReq,
    today: Date,
) -> Map<String, Value> {
    let mut out = Map::new();
    let at = |k: &str| format!("{name}.{k}");
    let alnum = |min, max| Text {
        min,
        max,
        chars: Chars::Alphanumeric,
    };
    if let Some(n) = chk.text(&at("rg"), &rg.rg, true, alnum(1, 20)) {
        out.insert("rg".into(), json!(n));
    }
    if let Some(d) = check_past_date(chk, &at("dataEmissao"), &rg.data_emissao, false, today) {
        out.insert("dataEmissao".into(), json!(d.to_string()));
    }
    if let Some(o) = chk.text(&at("orgaoEmissor"), &rg.orgao_emissor, false, alnum(2, 10)) {
        out.insert("orgaoEmissor".into(), json!(o.to_ascii_uppercase()));
    }
    if let Some(uf) = chk.text(
        &at("unidadeFederativa"),
        &rg.unidade_federativa,
        false,
        Text::printable(2),
    ) {
        if br::valid_uf(&uf.to_ascii_uppercase()) {
            out.insert("unidadeFederativa".into(), json!(uf.to_ascii_uppercase()));
        } else {
            chk.fail(
                at("unidadeFederativa"),
                "invalid_uf",
                "uma das 27 unidades federativas",
            );
        }
    }
    out
}

pub(super) fn check_spouse(chk: &mut Checks, c: &ConjugeReq, refs: &RefData, today: Date) -> Value {
    let mut o = Map::new();
    if let Some(n) = chk.text("conjuge.nome", &c.nome, true, Text::name(120)) {
        o.insert("nome".into(), json!(n));
    }
    if let Some(s) = sexo(chk, "conjuge.sexo", &c.sexo) {
        o.insert("sexo".into(), json!(s));
    }
    if let Some(d) = check_birth(
        chk,
        "conjuge.dataNascimento",
        &c.data_nascimento,
        false,
        today,
        16,
    ) {
        o.insert("dataNascimento".into(), json!(d.to_string()));
    }
    if let Some(n) = chk.text(
        "conjuge.nomeEmpresa",
        &c.nome_empresa,
        false,
        Text::printable(100),
    ) {
        o.insert("nomeEmpresa".into(), json!(n));
    }
    if let Some(n) = chk.integer("conjuge.idProfissao", &c.id_profissao, false, 1..=9999) {
        o.insert("idProfissao".into(), json!(n));
    }
    if let Some(t) = check_phone(chk, "conjuge.telefone", &c.telefone, false) {
        o.insert("telefone".into(), phone_json(&t));
    }
    if let Some(cpf) = check_cpf(chk, "conjuge.cpf", &c.cpf, false) {
        o.insert("cpf".into(), json!(cpf.as_str()));
    }
    if let Some(e) = chk.text(
        "conjuge.escolaridade",
        &c.escolaridade,
        false,
        Text::printable(40),
    ) {
        match code_row(&refs.education, None, Some(&e)) {
            Some(row) => {
                o.insert("escolaridade".into(), json!(row.code));
            }
            None => chk.fail(
                "conjuge.escolaridade",
                "unknown_reference",
                "um código de GET /api/v1/portadores/escolaridade",
            ),
        }
    }
    if let Some(rg) = object(chk, "conjuge.rg", &c.rg) {
        o.insert(
            "rg".into(),
            Value::Object(check_rg(chk, "conjuge.rg", rg, today)),
        );
    }
    if c.salario.is_given()
        && let Some(m) = check_money(chk, "conjuge.salario", &c.salario)
    {
        o.insert("salario".into(), m.to_json());
    }
    Value::Object(o)
}
