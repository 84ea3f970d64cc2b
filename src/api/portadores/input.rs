//! Typed request bodies of the cardholder API and the one way they are checked.
//!
//! Every body is deserialized (serde) into the operation's request type, whose fields
//! are [`Field`]s: a field that is absent, `null`, of the right JSON type, or of
//! another type is told apart without failing the whole body, so that [`Checks`] can
//! list **every** invalid field at once (problem+json `invalid-params`, status 422,
//! code `invalid_field`). Fields cofre stores without interpreting are kept by each
//! request type in a flattened map (`outros`). A body that is not the JSON object (or
//! array) the operation takes is `400 invalid_body`.
//!
//! Field names are written in one notation: `enderecoResidencial.cep`,
//! `adicionais[0].cpf`; query and path parameters by their name. Reasons are in
//! Portuguese and never repeat the value.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::api::call::ApiError;
use crate::api::error::InvalidParam;

/// A body field as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    /// Not in the body.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// A value of the expected JSON type.
    Value(T),
    /// Present, of another JSON type than the operation takes.
    WrongType,
}

impl<T> Field<T> {
    /// The value, if one of the right type was sent.
    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the field was sent with a value (of any type).
    pub fn is_given(&self) -> bool {
        matches!(self, Field::Value(_) | Field::WrongType)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(Field::Null);
        }
        Ok(T::deserialize(v).map_or(Field::WrongType, Field::Value))
    }
}

/// An id sent as a JSON integer or a digit string (`idPortador`, `idCartao`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IdText {
    /// A JSON integer.
    Number(i64),
    /// A string (digits expected).
    Text(String),
}

/// Parses a request body into `T`: a body that is not the JSON shape `T` takes (an
/// object, or for some operations an array) is `400 invalid_body`.
pub fn body<T: DeserializeOwned>(body: &Value, expected: &str) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            format!("O corpo da requisição deve ser {expected}."),
        )
    })
}

/// What a text field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chars {
    /// Printable text: no control character (NUL, line breaks, ...).
    Printable,
    /// A person's or company's name: letters (accents included), spaces, `'`, `-`, `.`.
    Name,
    /// Letters and digits only.
    Alphanumeric,
    /// Digits only.
    Digits,
}

impl Chars {
    fn allows(self, c: char) -> bool {
        match self {
            Chars::Printable => !c.is_control(),
            Chars::Name => c.is_alphabetic() || matches!(c, ' ' | '\'' | '-' | '.' | '’'),
            Chars::Alphanumeric => c.is_ascii_alphanumeric(),
            Chars::Digits => c.is_ascii_digit(),
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Chars::Printable => "não pode ter caracteres de controle",
            Chars::Name => "aceita apenas letras, espaços, apóstrofo, hífen e ponto",
            Chars::Alphanumeric => "aceita apenas letras e dígitos",
            Chars::Digits => "aceita apenas dígitos",
        }
    }
}

/// The rule of a text field: its length in characters (after trimming) and characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    /// Fewest characters.
    pub min: usize,
    /// Most characters.
    pub max: usize,
    /// Allowed characters.
    pub chars: Chars,
}

impl Text {
    /// Printable text of 1 to `max` characters.
    pub const fn printable(max: usize) -> Self {
        Self {
            min: 1,
            max,
            chars: Chars::Printable,
        }
    }

    /// A name of 2 to `max` characters.
    pub const fn name(max: usize) -> Self {
        Self {
            min: 2,
            max,
            chars: Chars::Name,
        }
    }
}

/// The invalid fields of one request, gathered before anything runs.
#[derive(Debug, Default)]
pub struct Checks {
    params: Vec<InvalidParam>,
}

impl Checks {
    /// No problem yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid.
    pub fn fail(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        reason: impl Into<String>,
    ) {
        self.params.push(InvalidParam {
            name: field.into(),
            code,
            reason: reason.into(),
        });
    }

    /// Whether no field failed so far.
    pub fn is_clean(&self) -> bool {
        self.params.is_empty()
    }

    /// `422 invalid_field` listing every invalid field, or nothing.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.params.is_empty() {
            return Ok(());
        }
        let mut names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        names.dedup();
        let message = if names.len() == 1 {
            format!("Campo inválido: {}.", names[0])
        } else {
            format!("Campos inválidos: {}.", names.join(", "))
        };
        Err(ApiError::invalid_fields(
            "invalid_field",
            message,
            self.params,
        ))
    }

    /// A required field that is absent, `null` or blank.
    pub fn required(&mut self, field: &str) {
        self.fail(field, "required", "campo obrigatório");
    }

    /// A field of the wrong JSON type.
    pub fn wrong_type(&mut self, field: &str, expected: &str) {
        self.fail(field, "invalid_type", format!("deve ser {expected}"));
    }

    /// A text field: trimmed, checked against `rule`; blank counts as absent.
    pub fn text(
        &mut self,
        field: &str,
        f: &Field<String>,
        required: bool,
        rule: Text,
    ) -> Option<String> {
        match f {
            Field::WrongType => {
                self.wrong_type(field, "um texto");
                None
            }
            Field::Value(s) if !s.trim().is_empty() => {
                let t = s.trim();
                let n = t.chars().count();
                if let Some(bad) = t.chars().find(|c| !rule.chars.allows(*c)) {
                    let code = if bad.is_control() {
                        "control_character"
                    } else {
                        "invalid_character"
                    };
                    self.fail(field, code, rule.chars.reason());
                    None
                } else if n > rule.max {
                    self.fail(
                        field,
                        "too_long",
                        format!("no máximo {} caracteres", rule.max),
                    );
                    None
                } else if n < rule.min {
                    self.fail(
                        field,
                        "too_short",
                        format!("no mínimo {} caracteres", rule.min),
                    );
                    None
                } else {
                    Some(t.to_owned())
                }
            }
            _ => {
                if required {
                    self.required(field);
                }
                None
            }
        }
    }

    /// A boolean field.
    pub fn flag(&mut self, field: &str, f: &Field<bool>) -> Option<bool> {
        match f {
            Field::Value(b) => Some(*b),
            Field::WrongType => {
                self.wrong_type(field, "verdadeiro ou falso");
                None
            }
            _ => None,
        }
    }

    /// An integer field within `range`.
    pub fn integer(
        &mut self,
        field: &str,
        f: &Field<i64>,
        required: bool,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match f {
            Field::Value(n) if range.contains(n) => Some(*n),
            Field::Value(_) => {
                self.fail(
                    field,
                    "out_of_range",
                    format!("de {} a {}", range.start(), range.end()),
                );
                None
            }
            Field::WrongType => {
                self.wrong_type(field, "um número inteiro");
                None
            }
            _ => {
                if required {
                    self.required(field);
                }
                None
            }
        }
    }

    /// A record id (a JSON integer or a digit string of 1 to 19 digits).
    pub fn id(&mut self, field: &str, f: &Field<IdText>, required: bool) -> Option<i64> {
        let parsed = match f {
            Field::Value(IdText::Number(n)) if *n >= 0 => Some(*n),
            Field::Value(IdText::Text(t))
                if !t.trim().is_empty()
                    && t.trim().len() <= 19
                    && t.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                t.trim().parse().ok()
            }
            Field::Absent | Field::Null if !required => return None,
            Field::Absent | Field::Null => {
                self.required(field);
                return None;
            }
            _ => None,
        };
        if parsed.is_none() {
            self.fail(field, "invalid_id", "um identificador de 1 a 19 dígitos");
        }
        parsed
    }

    /// A value from a closed list of codes (compared without case; answered upper case).
    pub fn code(
        &mut self,
        field: &str,
        f: &Field<String>,
        required: bool,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        let text = self.text(field, f, required, Text::printable(40))?;
        let found = allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&text))
            .copied();
        if found.is_none() {
            self.fail(
                field,
                "invalid_code",
                format!("um destes valores: {}", allowed.join(", ")),
            );
        }
        found
    }
}

/// An empty or absent map of stored but uninterpreted fields is not kept.
pub fn keep_others(
    target: &mut serde_json::Map<String, Value>,
    others: &serde_json::Map<String, Value>,
) {
    for (k, v) in others {
        if !v.is_null() && !target.contains_key(k) {
            target.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Req {
        #[serde(default)]
        nome: Field<String>,
        #[serde(default)]
        idade: Field<i64>,
        #[serde(default)]
        id: Field<IdText>,
        #[serde(flatten)]
        outros: serde_json::Map<String, Value>,
    }

    #[test]
    fn every_field_is_told_apart_and_every_problem_listed() {
        let r: Req = body(&json!({"nome": 5, "idade": "x", "extra": 1}), "um objeto").unwrap();
        assert_eq!(r.nome, Field::WrongType);
        assert_eq!(r.idade, Field::WrongType);
        assert_eq!(r.id, Field::Absent);
        assert_eq!(r.outros.get("extra"), Some(&json!(1)));
        let mut c = Checks::new();
        c.text("nome", &r.nome, true, Text::name(10));
        c.integer("idade", &r.idade, true, 0..=130);
        c.id("id", &r.id, true);
        let e = c.finish().unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        let names: Vec<&str> = e.invalid.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["nome", "idade", "id"]);
        assert!(body::<Req>(&json!([1]), "um objeto").is_err());
        assert!(body::<Req>(&json!("x"), "um objeto").is_err());
    }

    #[test]
    fn text_rules() {
        let mut c = Checks::new();
        let f = |s: &str| Field::Value(s.to_owned());
        assert_eq!(
            c.text("a", &f("  Ana  "), true, Text::name(10)),
            Some("Ana".into())
        );
        assert_eq!(c.text("b", &f("An\0a"), true, Text::name(10)), None);
        assert_eq!(
            c.text("c", &f("x".repeat(11).as_str()), true, Text::printable(10)),
            None
        );
        assert_eq!(c.text("d", &f("   "), true, Text::printable(10)), None);
        assert_eq!(c.text("e", &f("   "), false, Text::printable(10)), None);
        assert_eq!(
            c.text("f", &f("D'Ávila-Souza"), true, Text::name(20)),
            Some("D'Ávila-Souza".into())
        );
        let codes: Vec<&str> = c.params.iter().map(|p| p.code).collect();
        assert_eq!(codes, ["control_character", "too_long", "required"]);
        assert_eq!(
            c.code("s", &f("masculino"), true, &["MASCULINO", "FEMININO"]),
            Some("MASCULINO")
        );
        assert_eq!(
            c.id("i", &Field::Value(IdText::Text("12a".into())), true),
            None
        );
        assert_eq!(
            c.id("j", &Field::Value(IdText::Text("0042".into())), true),
            Some(42)
        );
    }
}
