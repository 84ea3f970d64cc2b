//! A person's fields as the cardholder API takes them (account opening and `PATCH
//! /{idPortador}`), their rules, and their stored form in the customer record.
//!
//! Rules (each broken rule is listed, naming the field):
//! * `nome`, `nomeSocial`, `nomeMae`, `nomePai`, spouse's and PEP's `nome`: 2-120
//!   characters, letters (accents included), spaces, `'`, `-`, `.`.
//! * `dataNascimento`: `YYYY-MM-DD` that exists; a titular is 18 to 120 years old today.
//! * `email`: see [`crate::api::domain::contact::email`]; stored in lower case.
//! * `sexo`: MASCULINO, FEMININO or NAO_INFORMADO (`M`/`F` taken); `estadoCivil`:
//!   SOLTEIRO, CASADO, DIVORCIADO, SEPARADO, VIUVO, UNIAO_ESTAVEL.
//! * `rg`: a text (the document's opening form, with `orgaoEmissor` beside it) or an
//!   object `{rg, dataEmissao, orgaoEmissor, unidadeFederativa}`; `rg` 1-20 letters or
//!   digits, `orgaoEmissor` 2-10 letters or digits, `dataEmissao` past, UF one of 27.
//! * `renda`: a number, or `{id, valor, comprovada}`; exact reais, 0 to 100,000,000.00.
//! * `idEscolaridade`, `idOcupacao`, `ocupacao` (code): rows of the reference tables;
//!   `idProfissao` 1-9999; `idMoradia` 1-99; `quantidadeAnosProfissao` 0-80;
//!   `dataAdmissaoProfissao` past.
//! * `nacionalidade`, `cidadeNatal`: 2-60 name characters; `estadoNatal` a UF.
//! * `conjuge`, `pep`, `estrangeiro`: objects with the same rules for their fields
//!   (`conjuge.cpf` and `pep.cpf` with check digits; `conjuge.salario` as `renda`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::contato::{EnderecoReq, Kind, check_address};
use super::input::{Checks, Field, Text};
use super::regras::code_row;
pub use super::regras::{
    RefData, age, check_birth, check_cpf, check_kinship, check_money, check_past_date,
};
use super::vinculos::{ConjugeReq, EstrangeiroReq, PepReq, RgReq, check_rg, check_spouse};
use crate::api::domain::br;
use crate::api::domain::{Date, contact};

/// The sexes a record takes.
pub const SEXOS: [&str; 5] = ["MASCULINO", "FEMININO", "NAO_INFORMADO", "M", "F"];
/// The civil states.
pub const ESTADOS_CIVIS: [&str; 6] = [
    "SOLTEIRO",
    "CASADO",
    "DIVORCIADO",
    "SEPARADO",
    "VIUVO",
    "UNIAO_ESTAVEL",
];

/// A person's fields as sent (flattened into the opening and PATCH requests).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PessoaReq {
    #[serde(default)]
    pub nome: Field<String>,
    #[serde(default)]
    pub nome_social: Field<String>,
    #[serde(default)]
    pub email: Field<String>,
    #[serde(default)]
    pub data_nascimento: Field<String>,
    #[serde(default)]
    pub sexo: Field<String>,
    #[serde(default)]
    pub estado_civil: Field<String>,
    #[serde(default)]
    pub nome_mae: Field<String>,
    #[serde(default)]
    pub nome_pai: Field<String>,
    #[serde(default)]
    pub nacionalidade: Field<String>,
    #[serde(default)]
    pub cidade_natal: Field<String>,
    #[serde(default)]
    pub estado_natal: Field<String>,
    #[serde(default)]
    pub rg: Field<RgField>,
    #[serde(default)]
    pub orgao_emissor: Field<String>,
    #[serde(default)]
    pub renda: Field<Value>,
    #[serde(default)]
    pub id_profissao: Field<i64>,
    #[serde(default)]
    pub id_moradia: Field<i64>,
    #[serde(default)]
    pub id_escolaridade: Field<i64>,
    #[serde(default)]
    pub id_ocupacao: Field<i64>,
    #[serde(default)]
    pub ocupacao: Field<String>,
    #[serde(default)]
    pub data_admissao_profissao: Field<String>,
    #[serde(default)]
    pub quantidade_anos_profissao: Field<i64>,
    #[serde(default)]
    pub portador_necessidades_visuais: Field<bool>,
    #[serde(default)]
    pub inibir_envio_fatura_grafica: Field<bool>,
    #[serde(default)]
    pub endereco_residencial: Field<EnderecoReq>,
    #[serde(default)]
    pub endereco_comercial: Field<EnderecoReq>,
    #[serde(default)]
    pub endereco_alternativo: Field<EnderecoReq>,
    #[serde(default)]
    pub conjuge: Field<ConjugeReq>,
    #[serde(default)]
    pub pep: Field<PepReq>,
    #[serde(default)]
    pub estrangeiro: Field<EstrangeiroReq>,
}

/// `rg` as a text or an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RgField {
    /// The number alone.
    Text(String),
    /// The whole document.
    Object(RgReq),
}

pub(super) fn sexo(chk: &mut Checks, name: &str, f: &Field<String>) -> Option<&'static str> {
    chk.code(name, f, false, &SEXOS).map(|s| match s {
        "M" => "MASCULINO",
        "F" => "FEMININO",
        other => other,
    })
}

/// Checks the person fields; `new` when the record is being created (name and birth
/// date required, a residential address complete); `min_age` the youngest the person
/// may be (18 for a titular). Returns the stored form of what was given, under the
/// document's names.
pub fn check_person(
    chk: &mut Checks,
    p: &PessoaReq,
    refs: &RefData,
    today: Date,
    new: bool,
    min_age: i32,
) -> Map<String, Value> {
    let mut out = Map::new();
    let name = Text::name(120);
    for (key, f, required) in [
        ("nome", &p.nome, new),
        ("nomeSocial", &p.nome_social, false),
        ("nomeMae", &p.nome_mae, false),
        ("nomePai", &p.nome_pai, false),
    ] {
        if let Some(v) = chk.text(key, f, required, name) {
            out.insert(key.into(), json!(v));
        }
    }
    for (key, f) in [
        ("nacionalidade", &p.nacionalidade),
        ("cidadeNatal", &p.cidade_natal),
    ] {
        if let Some(v) = chk.text(key, f, false, Text::name(60)) {
            out.insert(key.into(), json!(v));
        }
    }
    if let Some(uf) = chk.text("estadoNatal", &p.estado_natal, false, Text::printable(2)) {
        if br::valid_uf(&uf.to_ascii_uppercase()) {
            out.insert("estadoNatal".into(), json!(uf.to_ascii_uppercase()));
        } else {
            chk.fail(
                "estadoNatal",
                "invalid_uf",
                "uma das 27 unidades federativas",
            );
        }
    }
    if let Some(d) = check_birth(
        chk,
        "dataNascimento",
        &p.data_nascimento,
        new,
        today,
        min_age,
    ) {
        out.insert("dataNascimento".into(), json!(d.to_string()));
    }
    if let Some(e) = chk.text("email", &p.email, false, Text::printable(254)) {
        match contact::email(&e) {
            Ok(e) => {
                out.insert("email".into(), json!(e));
            }
            Err(_) => chk.fail("email", "invalid_email", "um e-mail nome@dominio.tld"),
        }
    }
    if let Some(s) = sexo(chk, "sexo", &p.sexo) {
        out.insert("sexo".into(), json!(s));
    }
    if let Some(s) = chk.code("estadoCivil", &p.estado_civil, false, &ESTADOS_CIVIS) {
        out.insert("estadoCivil".into(), json!(s));
    }
    match &p.rg {
        Field::Value(RgField::Text(t)) => {
            let rg = RgReq {
                rg: Field::Value(t.clone()),
                orgao_emissor: p.orgao_emissor.clone(),
                ..RgReq::default()
            };
            out.insert("rg".into(), Value::Object(check_rg(chk, "rg", &rg, today)));
        }
        Field::Value(RgField::Object(o)) => {
            out.insert("rg".into(), Value::Object(check_rg(chk, "rg", o, today)));
        }
        Field::WrongType => chk.wrong_type("rg", "um texto ou um objeto"),
        _ => {}
    }
    if p.renda.is_given()
        && let Some(m) = check_money(chk, "renda", &p.renda)
    {
        {
            let v = p.renda.value().cloned().unwrap_or(Value::Null);
            let comprovada = match v.get("comprovada") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s.eq_ignore_ascii_case("S"),
                _ => false,
            };
            let mut r = json!({"valor": m.to_json(), "comprovada": comprovada});
            if let Some(id) = v.get("id").and_then(Value::as_i64) {
                r["id"] = json!(id);
            }
            out.insert("renda".into(), r);
        }
    }
    for (key, f, range) in [
        ("idProfissao", &p.id_profissao, 1..=9999),
        ("idMoradia", &p.id_moradia, 1..=99),
        (
            "quantidadeAnosProfissao",
            &p.quantidade_anos_profissao,
            0..=80,
        ),
    ] {
        if let Some(n) = chk.integer(key, f, false, range) {
            out.insert(key.into(), json!(n));
        }
    }
    for (key, f, rows) in [
        ("idEscolaridade", &p.id_escolaridade, &refs.education),
        ("idOcupacao", &p.id_ocupacao, &refs.occupations),
    ] {
        if let Some(n) = chk.integer(key, f, false, 1..=i64::from(u16::MAX)) {
            if code_row(rows, Some(n), None).is_some() {
                out.insert(key.into(), json!(n));
            } else {
                chk.fail(
                    key,
                    "unknown_reference",
                    "um id da tabela de referência do emissor",
                );
            }
        }
    }
    if let Some(c) = chk.text("ocupacao", &p.ocupacao, false, Text::printable(40)) {
        match code_row(&refs.occupations, None, Some(&c)) {
            Some(row) => {
                out.insert("ocupacao".into(), json!(row.code));
            }
            None => chk.fail(
                "ocupacao",
                "unknown_reference",
                "um código de GET /api/v1/portadores/ocupacoes",
            ),
        }
    }
    if let Some(d) = check_past_date(
        chk,
        "dataAdmissaoProfissao",
        &p.data_admissao_profissao,
        false,
        today,
    ) {
        out.insert("dataAdmissaoProfissao".into(), json!(d.to_string()));
    }
    for (key, f) in [
        (
            "portadorNecessidadesVisuais",
            &p.portador_necessidades_visuais,
        ),
        ("inibirEnvioFaturaGrafica", &p.inibir_envio_fatura_grafica),
    ] {
        if let Some(b) = chk.flag(key, f) {
            out.insert(key.into(), json!(b));
        }
    }
    for (key, f, kind) in [
        (
            "enderecoResidencial",
            &p.endereco_residencial,
            Kind::Residencial,
        ),
        ("enderecoComercial", &p.endereco_comercial, Kind::Comercial),
        (
            "enderecoAlternativo",
            &p.endereco_alternativo,
            Kind::Alternativo,
        ),
    ] {
        if let Some(a) = check_address(chk, key, f, kind, new) {
            out.insert(key.into(), Value::Object(a));
        }
    }
    if let Some(c) = object(chk, "conjuge", &p.conjuge) {
        out.insert("conjuge".into(), check_spouse(chk, c, refs, today));
    }
    if let Some(pep) = object(chk, "pep", &p.pep) {
        let mut o = Map::new();
        if let Some(c) = check_cpf(chk, "pep.cpf", &pep.cpf, false) {
            o.insert("cpf".into(), json!(c.as_str()));
        }
        if let Some(n) = chk.text("pep.nome", &pep.nome, false, name) {
            o.insert("nome".into(), json!(n));
        }
        if let Some(j) = chk.text(
            "pep.justificativa",
            &pep.justificativa,
            false,
            Text::printable(200),
        ) {
            o.insert("justificativa".into(), json!(j));
        }
        out.insert("pep".into(), Value::Object(o));
    }
    if let Some(e) = object(chk, "estrangeiro", &p.estrangeiro) {
        let mut o = Map::new();
        if let Some(n) = chk.text(
            "estrangeiro.paisOrigem",
            &e.pais_origem,
            true,
            Text::name(60),
        ) {
            o.insert("paisOrigem".into(), json!(n));
        }
        if let Some(n) = chk.text(
            "estrangeiro.documentoPaisOrigem",
            &e.documento_pais_origem,
            false,
            Text::printable(60),
        ) {
            o.insert("documentoPaisOrigem".into(), json!(n));
        }
        out.insert("estrangeiro".into(), Value::Object(o));
    }
    out
}

pub(super) fn object<'a, T>(chk: &mut Checks, name: &str, f: &'a Field<T>) -> Option<&'a T> {
    match f {
        Field::Value(v) => Some(v),
        Field::WrongType => {
            chk.wrong_type(name, "um objeto");
            None
        }
        _ => None,
    }
}
