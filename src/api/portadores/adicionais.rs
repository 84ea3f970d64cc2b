//! An additional cardholder as sent (`adicionais` of account opening, the body of
//! `POST /{idPortador}/dependentes`) and its rules (see `dependentes`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dependentes::DEPENDENT_MIN_AGE;
use super::input::{self, Checks, Field, IdText, Text};
use super::pessoa::{RefData, check_birth, check_cpf, check_kinship};
use crate::api::domain::Date;
use crate::api::domain::br::Cpf;
use crate::api::domain::emboss::{EMBOSS_MAX, embossed_name};

/// A dependent as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdicionalReq {
    #[serde(default)]
    nome: Field<String>,
    #[serde(default)]
    cpf: Field<String>,
    #[serde(default)]
    data_nascimento: Field<String>,
    #[serde(default)]
    grau_parentesco: Field<IdText>,
    #[serde(default)]
    sexo: Field<String>,
    #[serde(default)]
    nome_personalizado: Field<String>,
    #[serde(default)]
    nome_social: Field<String>,
    #[serde(default)]
    nome_mae: Field<String>,
    #[serde(default)]
    rg: Field<String>,
    #[serde(flatten)]
    outros: Map<String, Value>,
}

/// A checked dependent.
#[derive(Debug, Clone)]
pub struct Adicional {
    /// Name.
    pub nome: String,
    /// CPF.
    pub cpf: Cpf,
    /// Embossed name.
    pub nome_cartao: String,
    /// Stored body.
    pub body: Value,
}

/// Checks a list of dependents at `base` (`adicionais`, or empty for a bare array).
pub fn check_adicionais(
    chk: &mut Checks,
    base: &str,
    list: &[Field<AdicionalReq>],
    refs: &RefData,
    today: Date,
    holder_cpf: Option<&str>,
) -> Vec<Adicional> {
    let mut out: Vec<Adicional> = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let at = |k: &str| {
            if base.is_empty() {
                format!("[{i}].{k}")
            } else {
                format!("{base}[{i}].{k}")
            }
        };
        let d = match f {
            Field::Value(d) => d,
            _ => {
                chk.wrong_type(
                    &if base.is_empty() {
                        format!("[{i}]")
                    } else {
                        format!("{base}[{i}]")
                    },
                    "um objeto",
                );
                continue;
            }
        };
        let nome = chk.text(&at("nome"), &d.nome, true, Text::name(120));
        let cpf = check_cpf(chk, &at("cpf"), &d.cpf, true);
        if let Some(c) = &cpf {
            if Some(c.as_str()) == holder_cpf {
                chk.fail(
                    at("cpf"),
                    "own_dependent",
                    "o titular não pode ser seu próprio dependente",
                );
            } else if out.iter().any(|o| o.cpf == *c) {
                chk.fail(at("cpf"), "duplicate", "CPF repetido na lista");
            }
        }
        let born = check_birth(
            chk,
            &at("dataNascimento"),
            &d.data_nascimento,
            true,
            today,
            DEPENDENT_MIN_AGE,
        );
        let grau = check_kinship(chk, &at("grauParentesco"), &d.grau_parentesco, refs);
        let sexo = chk.code(&at("sexo"), &d.sexo, false, &super::pessoa::SEXOS);
        let personal = chk.text(
            &at("nomePersonalizado"),
            &d.nome_personalizado,
            false,
            Text::name(EMBOSS_MAX),
        );
        let social = chk.text(&at("nomeSocial"), &d.nome_social, false, Text::name(120));
        let mae = chk.text(&at("nomeMae"), &d.nome_mae, false, Text::name(120));
        let rg = chk.text(
            &at("rg"),
            &d.rg,
            false,
            Text {
                min: 1,
                max: 20,
                chars: input::Chars::Alphanumeric,
            },
        );
        let nome_cartao = personal.as_deref().or(nome.as_deref()).map(embossed_name);
        let (Some(nome), Some(cpf), Some(born), Some(grau), Some(nome_cartao)) =
            (nome, cpf, born, grau, nome_cartao)
        else {
            continue;
        };
        let mut body = Map::new();
        body.insert("nome".into(), json!(nome));
        body.insert("cpf".into(), json!(cpf.as_str()));
        body.insert("dataNascimento".into(), json!(born.to_string()));
        body.insert("grauParentesco".into(), json!(grau.id));
        let sexo = sexo.map(|s| match s {
            "M" => "MASCULINO",
            "F" => "FEMININO",
            o => o,
        });
        for (k, v) in [
            ("sexo", sexo.map(str::to_owned)),
            ("nomePersonalizado", personal),
            ("nomeSocial", social),
            ("nomeMae", mae),
            ("rg", rg),
        ] {
            if let Some(v) = v {
                body.insert(k.into(), json!(v));
            }
        }
        input::keep_others(&mut body, &d.outros);
        out.push(Adicional {
            nome,
            cpf,
            nome_cartao,
            body: Value::Object(body),
        });
    }
    out
}
