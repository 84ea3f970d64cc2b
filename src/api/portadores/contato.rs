//! Addresses and phones of the cardholder API: their request types, their rules and
//! their stored form.
//!
//! * **Address** (`enderecoResidencial`, `enderecoComercial`, `enderecoAlternativo`,
//!   PJ `endereco`): `logradouro` (1-100), `numero` (1-10), `complemento` (0-60),
//!   `bairro` (1-60), `cidade` (1-60; `localidade`, the document's request name, is
//!   taken too), `uf` (one of the 27), `cep` (8 digits, `NNNNN-NNN` taken, stored as
//!   8 digits, from 01000-000). A new address needs all but `complemento`; a PATCH
//!   may change single fields. Commercial: `empresa` (0-100), `departamento` (0-60),
//!   `cnpj` (check digits). Alternative: `tipo` `R` (residencial), `C` (comercial) or
//!   `O` (outro). Residential: `tempoMoradiaAnos` (0-120), `tempoMoradiaMeses` (0-11).
//!   Stored and answered under the document's response names.
//! * **Phone**: `tipo` RESIDENCIAL, COMERCIAL, CELULAR or OUTROS (what the phone is
//!   for); `area` a DDD of the plan; `telefone` a mobile (9 digits starting with 9) or a
//!   landline (8 digits starting with 2-5): a CELULAR must be a mobile; `ramal` 0-6
//!   digits; `receberSMS` only on a mobile; `faturaDigital`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::input::{Chars, Checks, Field, Text};
use crate::api::domain::br::{self, Cnpj};
use crate::api::domain::contact::{Line, PhoneNumber};

/// An address as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnderecoReq {
    #[serde(default)]
    logradouro: Field<String>,
    #[serde(default)]
    numero: Field<String>,
    #[serde(default)]
    complemento: Field<String>,
    #[serde(default)]
    bairro: Field<String>,
    #[serde(default)]
    cidade: Field<String>,
    #[serde(default)]
    localidade: Field<String>,
    #[serde(default)]
    uf: Field<String>,
    #[serde(default)]
    cep: Field<String>,
    #[serde(default)]
    empresa: Field<String>,
    #[serde(default)]
    departamento: Field<String>,
    #[serde(default)]
    cnpj: Field<String>,
    #[serde(default)]
    tipo: Field<String>,
    #[serde(default, rename = "tempoMoradiaAnos")]
    anos: Field<i64>,
    #[serde(default, rename = "tempoMoradiaMeses")]
    meses: Field<i64>,
}

/// Which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `enderecoResidencial` (or the PJ `endereco`).
    Residencial,
    /// `enderecoComercial`.
    Comercial,
    /// `enderecoAlternativo`.
    Alternativo,
}

/// Checks an address field `name`; `whole` when a new address must be complete.
/// Returns the stored form of the fields given.
pub fn check_address(
    chk: &mut Checks,
    name: &str,
    f: &Field<EnderecoReq>,
    kind: Kind,
    whole: bool,
) -> Option<Map<String, Value>> {
    let a = match f {
        Field::Value(a) => a,
        Field::WrongType => {
            chk.wrong_type(name, "um objeto");
            return None;
        }
        _ => {
            if whole && kind == Kind::Residencial {
                chk.required(name);
            }
            return None;
        }
    };
    let at = |k: &str| format!("{name}.{k}");
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.insert(k.to_owned(), json!(v));
        }
    };
    put(
        "logradouro",
        chk.text(
            &at("logradouro"),
            &a.logradouro,
            whole,
            Text::printable(100),
        ),
    );
    put(
        "numero",
        chk.text(&at("numero"), &a.numero, whole, Text::printable(10)),
    );
    put(
        "complemento",
        chk.text(
            &at("complemento"),
            &a.complemento,
            false,
            Text::printable(60),
        ),
    );
    put(
        "bairro",
        chk.text(&at("bairro"), &a.bairro, whole, Text::printable(60)),
    );
    let city_field = if a.cidade.is_given() {
        &a.cidade
    } else {
        &a.localidade
    };
    let city_name = if a.cidade.is_given() {
        "cidade"
    } else {
        "localidade"
    };
    put(
        "cidade",
        chk.text(&at(city_name), city_field, whole, Text::printable(60)),
    );
    if let Some(uf) = chk.text(&at("uf"), &a.uf, whole, Text::printable(2)) {
        let up = uf.to_ascii_uppercase();
        if br::valid_uf(&up) {
            put("uf", Some(up));
        } else {
            chk.fail(at("uf"), "invalid_uf", "uma das 27 unidades federativas");
        }
    }
    if let Some(cep) = chk.text(&at("cep"), &a.cep, whole, Text::printable(9)) {
        match br::cep(&cep) {
            Some(c) => put("cep", Some(c)),
            None => chk.fail(
                at("cep"),
                "invalid_cep",
                "8 dígitos (NNNNN-NNN), de 01000-000 em diante",
            ),
        }
    }
    match kind {
        Kind::Comercial => {
            put(
                "empresa",
                chk.text(&at("empresa"), &a.empresa, false, Text::printable(100)),
            );
            put(
                "departamento",
                chk.text(
                    &at("departamento"),
                    &a.departamento,
                    false,
                    Text::printable(60),
                ),
            );
            if let Some(c) = chk.text(&at("cnpj"), &a.cnpj, false, Text::printable(18)) {
                match Cnpj::parse(&c) {
                    Ok(c) => put("cnpj", Some(c.as_str().to_owned())),
                    Err(_) => chk.fail(
                        at("cnpj"),
                        "check_digits",
                        "CNPJ com dígitos verificadores inválidos",
                    ),
                }
            }
        }
        Kind::Alternativo => {
            if let Some(t) = chk.code(&at("tipo"), &a.tipo, false, &["R", "C", "O"]) {
                put("tipo", Some(t.to_owned()));
            }
        }
        Kind::Residencial => {
            if let Some(n) = chk.integer(&at("tempoMoradiaAnos"), &a.anos, false, 0..=120) {
                out.insert("tempoMoradiaAnos".into(), json!(n));
            }
            if let Some(n) = chk.integer(&at("tempoMoradiaMeses"), &a.meses, false, 0..=11) {
                out.insert("tempoMoradiaMeses".into(), json!(n));
            }
        }
    }
    Some(out)
}

/// A stored address as the views answer it (the document's response names; a record
/// stored before the names were fixed answers `localidade` as `cidade`).
pub fn address_view(stored: &Value, kind: Kind) -> Value {
    let Some(o) = stored.as_object() else {
        return Value::Null;
    };
    let mut keys = vec![
        "logradouro",
        "complemento",
        "numero",
        "bairro",
        "cep",
        "uf",
        "cidade",
    ];
    match kind {
        Kind::Comercial => keys.extend(["empresa", "departamento", "cnpj"]),
        Kind::Alternativo => keys.push("tipo"),
        Kind::Residencial => keys.extend(["tempoMoradiaAnos", "tempoMoradiaMeses"]),
    }
    let mut out = Map::new();
    for k in keys {
        let v = o
            .get(k)
            .or_else(|| (k == "cidade").then(|| o.get("localidade")).flatten())
            .cloned()
            .unwrap_or(Value::Null);
        if k == "cep" {
            let digits = v.as_str().and_then(br::cep);
            out.insert(k.into(), digits.map_or(v, Value::String));
        } else {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}

/// A phone as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TelefoneReq {
    #[serde(default)]
    tipo: Field<String>,
    #[serde(default)]
    area: Field<String>,
    #[serde(default)]
    telefone: Field<String>,
    #[serde(default)]
    ramal: Field<String>,
    #[serde(default, rename = "receberSMS")]
    receber_sms: Field<bool>,
    #[serde(default, rename = "faturaDigital")]
    fatura_digital: Field<bool>,
}

/// A checked phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telefone {
    /// RESIDENCIAL, COMERCIAL, CELULAR, OUTROS.
    pub tipo: &'static str,
    /// The number.
    pub numero: PhoneNumber,
    /// Extension (empty: none).
    pub ramal: String,
    /// Wants SMS (a mobile only).
    pub receber_sms: bool,
    /// Digital invoice.
    pub fatura_digital: bool,
}

/// The phone kinds.
pub const PHONE_KINDS: [&str; 4] = ["RESIDENCIAL", "COMERCIAL", "CELULAR", "OUTROS"];

/// Checks a phone object at `name`.
pub fn check_phone(
    chk: &mut Checks,
    name: &str,
    f: &Field<TelefoneReq>,
    required: bool,
) -> Option<Telefone> {
    let t = match f {
        Field::Value(t) => t,
        Field::WrongType => {
            chk.wrong_type(name, "um objeto");
            return None;
        }
        _ => {
            if required {
                chk.required(name);
            }
            return None;
        }
    };
    let at = |k: &str| format!("{name}.{k}");
    let tipo = chk.code(&at("tipo"), &t.tipo, true, &PHONE_KINDS);
    let area = chk.text(
        &at("area"),
        &t.area,
        true,
        Text {
            min: 2,
            max: 2,
            chars: Chars::Digits,
        },
    );
    let number = chk.text(
        &at("telefone"),
        &t.telefone,
        true,
        Text {
            min: 8,
            max: 9,
            chars: Chars::Digits,
        },
    );
    let ramal = chk.text(
        &at("ramal"),
        &t.ramal,
        false,
        Text {
            min: 1,
            max: 6,
            chars: Chars::Digits,
        },
    );
    let sms = chk.flag(&at("receberSMS"), &t.receber_sms).unwrap_or(false);
    let invoice = chk
        .flag(&at("faturaDigital"), &t.fatura_digital)
        .unwrap_or(false);
    if let Some(a) = &area
        && PhoneNumber::parse_area(a).is_err()
    {
        chk.fail(
            at("area"),
            "invalid_ddd",
            "um DDD do plano de numeração (11 a 99, 67 códigos)",
        );
    }
    let line = number.as_deref().map(PhoneNumber::line_of);
    if let Some(Err(_)) = line {
        chk.fail(
            at("telefone"),
            "invalid_phone",
            "celular: 9 dígitos começando com 9; fixo: 8 dígitos começando com 2 a 5",
        );
    }
    if let (Some("CELULAR"), Some(Ok(Line::Landline))) = (tipo, &line) {
        chk.fail(
            at("telefone"),
            "not_mobile",
            "um CELULAR tem 9 dígitos começando com 9",
        );
    }
    if sms && matches!(line, Some(Ok(Line::Landline))) {
        chk.fail(at("receberSMS"), "not_mobile", "só um celular recebe SMS");
    }
    let numero = PhoneNumber::parse(area.as_deref()?, number.as_deref()?).ok()?;
    Some(Telefone {
        tipo: tipo?,
        numero,
        ramal: ramal.unwrap_or_default(),
        receber_sms: sms,
        fatura_digital: invoice,
    })
}

/// A list of phones at `name` (`max` at most); repeated numbers are refused.
pub fn check_phones(
    chk: &mut Checks,
    name: &str,
    f: &Field<Vec<Field<TelefoneReq>>>,
    max: usize,
) -> Vec<Telefone> {
    let list = match f {
        Field::Value(l) => l,
        Field::WrongType => {
            chk.wrong_type(name, "uma lista");
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    if list.len() > max {
        chk.fail(name, "too_many", format!("no máximo {max} itens"));
        return Vec::new();
    }
    let mut out: Vec<Telefone> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("{name}[{i}]");
        if let Some(t) = check_phone(chk, &at, p, true) {
            if out.iter().any(|o| o.numero == t.numero) {
                chk.fail(
                    format!("{at}.telefone"),
                    "duplicate",
                    "número repetido na lista",
                );
            } else {
                out.push(t);
            }
        }
    }
    out
}

/// A stored phone's view.
pub fn phone_json(t: &Telefone) -> Value {
    json!({"tipo": t.tipo, "area": t.numero.area(), "telefone": t.numero.number(),
        "ramal": t.ramal, "receberSMS": t.receber_sms, "faturaDigital": t.fatura_digital})
}
