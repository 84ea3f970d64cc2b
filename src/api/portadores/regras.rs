//! The rules of single fields the cardholder API's requests share: dates (past, ages),
//! CPFs (a missing one, a malformed one and wrong check digits told apart), exact money,
//! and codes of the issuer's reference tables (kinship, education, occupation).

use serde_json::Value;

use super::input::{Checks, Field, IdText, Text};
use crate::api::domain::br::Cpf;
use crate::api::domain::{Date, Money};
use crate::api::store::CodeRow;

/// The issuer's reference data a request is checked against.
#[derive(Debug, Clone, Default)]
pub struct RefData {
    /// Education levels.
    pub education: Vec<CodeRow>,
    /// Occupations.
    pub occupations: Vec<CodeRow>,
    /// Kinship degrees.
    pub kinship: Vec<CodeRow>,
}

/// Checks a date: `YYYY-MM-DD`, existing, not after `today`.
pub fn check_past_date(
    chk: &mut Checks,
    name: &str,
    f: &Field<String>,
    required: bool,
    today: Date,
) -> Option<Date> {
    let t = chk.text(name, f, required, Text::printable(10))?;
    match Date::parse(&t) {
        Ok(d) if d <= today => Some(d),
        Ok(_) => {
            chk.fail(name, "future_date", "a data não pode ser futura");
            None
        }
        Err(_) => {
            chk.fail(name, "invalid_date", "uma data AAAA-MM-DD que exista");
            None
        }
    }
}

/// Years completed between `born` and `today`.
pub fn age(born: Date, today: Date) -> i32 {
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years
}

/// A birth date of someone `min_age` to 120 years old.
pub fn check_birth(
    chk: &mut Checks,
    name: &str,
    f: &Field<String>,
    required: bool,
    today: Date,
    min_age: i32,
) -> Option<Date> {
    let born = check_past_date(chk, name, f, required, today)?;
    let years = age(born, today);
    if years < min_age {
        chk.fail(
            name,
            "too_young",
            format!("a idade mínima é {min_age} anos"),
        );
        return None;
    }
    if years > 120 {
        chk.fail(name, "too_old", "a idade máxima é 120 anos");
        return None;
    }
    Some(born)
}

/// Checks a CPF field (`required`): 11 digits (punctuation taken) with matching check digits.
pub fn check_cpf(chk: &mut Checks, name: &str, f: &Field<String>, required: bool) -> Option<Cpf> {
    let t = chk.text(name, f, required, Text::printable(14))?;
    let digits: String = t
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | ' '))
        .collect();
    if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        chk.fail(name, "invalid_format", "11 dígitos (pontuação opcional)");
        return None;
    }
    match Cpf::parse(&digits) {
        Ok(c) => Some(c),
        Err(_) => {
            chk.fail(
                name,
                "check_digits",
                "CPF com dígitos verificadores inválidos",
            );
            None
        }
    }
}

/// Checks a money field (number, numeric text, or `{valor}`): exact, 0 to 100,000,000.00.
pub fn check_money(chk: &mut Checks, name: &str, f: &Field<Value>) -> Option<Money> {
    let v = f.value()?;
    let (v, name) = match v.get("valor") {
        Some(inner) if v.is_object() => (inner, format!("{name}.valor")),
        _ => (v, name.to_owned()),
    };
    match Money::from_json(v) {
        Ok(m) if m >= Money::ZERO && m <= Money::from_minor(10_000_000_000) => Some(m),
        Ok(_) => {
            chk.fail(name, "out_of_range", "de 0 a 100000000.00");
            None
        }
        Err(_) => {
            chk.fail(
                name,
                "invalid_amount",
                "um valor exato com no máximo 2 casas decimais",
            );
            None
        }
    }
}

pub(super) fn code_row<'a>(
    rows: &'a [CodeRow],
    by_id: Option<i64>,
    by_code: Option<&str>,
) -> Option<&'a CodeRow> {
    rows.iter()
        .find(|r| Some(r.id) == by_id || by_code.is_some_and(|c| r.code.eq_ignore_ascii_case(c)))
}

/// An id or code of the kinship table (`grauParentesco`): its row.
pub fn check_kinship<'a>(
    chk: &mut Checks,
    name: &str,
    f: &Field<IdText>,
    refs: &'a RefData,
) -> Option<&'a CodeRow> {
    let row = match f {
        Field::Value(IdText::Number(n)) => code_row(&refs.kinship, Some(*n), None),
        Field::Value(IdText::Text(t)) => code_row(&refs.kinship, None, Some(t.trim())),
        Field::WrongType => {
            chk.wrong_type(name, "um código ou um id");
            return None;
        }
        _ => {
            chk.required(name);
            return None;
        }
    };
    if row.is_none() {
        let codes: Vec<&str> = refs.kinship.iter().map(|r| r.code.as_str()).collect();
        chk.fail(
            name,
            "unknown_reference",
            format!("um destes: {}", codes.join(", ")),
        );
    }
    row
}
