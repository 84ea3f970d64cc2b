//! The rules a Brazilian issuer expects of the data: CPF and CNPJ check digits (with the
//! alphanumeric CNPJ that the Receita Federal introduces in 2026), CEP, UF,
//! exact decimal money, and accent- and case-insensitive name folding (dates are
//! [`super::Date`]). Pure functions; each failure at the HTTP edge is a 422 problem
//! naming the field.
//!
//! * CPF: 11 digits; check digit `d = (Σ digit·weight) · 10 mod 11 mod 10` with weights
//!   10..2, then 11..2; all-equal digits are refused.
//! * CNPJ: 14 characters; the first 12 may be `0-9` or `A-Z` (the 2026 format), the last
//!   2 are digits. Each character's value is its ASCII code − 48 (so digits keep their
//!   value, `A` = 17); `r = Σ value·weight mod 11` with weights 5,4,3,2,9,8,7,6,5,4,3,2
//!   (then 6,5,4,3,2,9,...,2 over 13), `dv = 0 if r < 2 else 11 − r`. Example from the
//!   Receita's announcement: `12ABC34501DE35`.

use serde_json::Value;

use super::Invalid;

fn strip(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '.' | '-' | '/' | ' '))
        .collect()
}

/// The CPF's 11 digits if valid (formatting `.` and `-` allowed).
pub fn cpf(s: &str) -> Option<String> {
    let t = strip(s);
    let d: Vec<u32> = t.chars().map(|c| c.to_digit(10)).collect::<Option<_>>()?;
    if d.len() != 11 || d.iter().all(|x| *x == d[0]) {
        return None;
    }
    for n in [9usize, 10] {
        let sum: u32 = (0..n).map(|i| d[i] * (n as u32 + 1 - i as u32)).sum();
        if (sum * 10) % 11 % 10 != d[n] {
            return None;
        }
    }
    Some(t)
}

/// A CPF whose check digits match: its 11 digits, without formatting.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cpf(String);

impl Cpf {
    /// Parses a CPF (formatting `.`, `-`, `/` and spaces allowed).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        cpf(text)
            .map(Self)
            .ok_or(Invalid("a CPF is 11 digits whose check digits match"))
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// A document number is personal data: Debug shows its last two digits only.
impl std::fmt::Debug for Cpf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cpf(*********{})", self.0.get(9..).unwrap_or(""))
    }
}

/// A CNPJ whose check digits match: its 14 characters (upper case), without formatting;
/// numeric or the 2026 alphanumeric form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cnpj(String);

impl Cnpj {
    /// Parses a CNPJ (formatting `.`, `-`, `/` and spaces allowed; letters in any case).
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        cnpj(text)
            .map(Self)
            .ok_or(Invalid("a CNPJ is 14 characters whose check digits match"))
    }

    /// The 14 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Cnpj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cnpj(************{})", self.0.get(12..).unwrap_or(""))
    }
}

/// Whether a CPF is valid.
pub fn valid_cpf(s: &str) -> bool {
    cpf(s).is_some()
}

/// The CNPJ's 14 characters (upper case) if valid, numeric or alphanumeric.
pub fn cnpj(s: &str) -> Option<String> {
    let t = strip(s).to_ascii_uppercase();
    let b = t.as_bytes();
    if b.len() != 14
        || !b[..12]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        || !b[12..].iter().all(u8::is_ascii_digit)
        || b[..12].iter().all(|c| *c == b[0])
    {
        return None;
    }
    let v: Vec<u32> = b.iter().map(|c| u32::from(*c) - 48).collect();
    const W: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    for n in [12usize, 13] {
        let weights = &W[13 - n..];
        let r = (0..n).map(|i| v[i] * weights[i]).sum::<u32>() % 11;
        let dv = if r < 2 { 0 } else { 11 - r };
        if dv != v[n] {
            return None;
        }
    }
    Some(t)
}

/// Whether a CNPJ is valid.
pub fn valid_cnpj(s: &str) -> bool {
    cnpj(s).is_some()
}

/// The CEP's 8 digits (`NNNNN-NNN` or `NNNNNNNN`). The Correios' CEPs run from
/// 01000-000 (São Paulo) to 99999-999: anything below (`00000-000` included) names no
/// place and is refused.
pub fn cep(s: &str) -> Option<String> {
    let s = s.trim();
    let t: String = match s.len() {
        9 if s.as_bytes()[5] == b'-' => s.chars().filter(|c| *c != '-').collect(),
        8 => s.to_owned(),
        _ => return None,
    };
    (t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) && t.as_str() >= "01000000").then_some(t)
}

/// Whether a CEP is valid.
pub fn valid_cep(s: &str) -> bool {
    cep(s).is_some()
}

/// The 26 states and the Federal District.
pub const UFS: [&str; 27] = [
    "AC", "AL", "AP", "AM", "BA", "CE", "DF", "ES", "GO", "MA", "MT", "MS", "MG", "PA", "PB", "PR",
    "PE", "PI", "RJ", "RN", "RS", "RO", "RR", "SC", "SP", "SE", "TO",
];

/// Whether `s` is one of the 27 federative units.
pub fn valid_uf(s: &str) -> bool {
    UFS.contains(&s)
}

/// Exact money: a JSON number or string with at most 2 decimals, as centavos. Never goes
/// through a float: the number's own text is parsed.
pub fn parse_money(v: &Value) -> Option<i64> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let (neg, t) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.as_str()),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || int.len() > 13
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = int.parse::<i64>().ok()? * 100 + format!("{frac:0<2}").parse::<i64>().ok()?;
    Some(if neg { -cents } else { cents })
}

/// Centavos as an exact decimal JSON number (`2000.5` for 200050).
pub fn money_json(cents: i64) -> Value {
    let text = format!("{}.{:02}", cents / 100, (cents % 100).abs());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Lower case without Portuguese diacritics, for accent- and case-insensitive search.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            other => other,
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpf_check_digits() {
        // Valid CPFs (computed by hand with the rule above).
        assert!(valid_cpf("63450321072"));
        assert!(valid_cpf("529.982.247-25"));
        assert!(!valid_cpf("52998224726"));
        assert!(!valid_cpf("11111111111"));
        assert!(!valid_cpf("5299822472"));
        assert!(!valid_cpf("5299822472a"));
        // The cardholder API document's example CPF does not pass the check digits.
        assert!(!valid_cpf("45678920300"));
    }

    #[test]
    fn document_newtypes() {
        let c = Cpf::parse("529.982.247-25").unwrap();
        assert_eq!(c.as_str(), "52998224725");
        assert_eq!(format!("{c:?}"), "Cpf(*********25)");
        assert!(Cpf::parse("52998224726").is_err());
        assert!(Cpf::parse("").is_err());
        let j = Cnpj::parse("12.abc.345/01de-35").unwrap();
        assert_eq!(j.as_str(), "12ABC34501DE35");
        assert!(!format!("{j:?}").contains("ABC"));
        assert!(Cnpj::parse("12ABC34501DE36").is_err());
        assert!(Cnpj::parse("é").is_err());
    }

    #[test]
    fn cnpj_numeric_and_alphanumeric() {
        assert!(valid_cnpj("11.222.333/0001-81"));
        assert!(valid_cnpj("22130511000160"));
        assert!(!valid_cnpj("11222333000182"));
        // The Receita Federal's example of the 2026 alphanumeric format.
        assert!(valid_cnpj("12ABC34501DE35"));
        assert!(valid_cnpj("12.ABC.345/01DE-35"));
        assert!(!valid_cnpj("12ABC34501DE36"));
        assert!(!valid_cnpj("12ABC34501DEX5"));
        assert!(!valid_cnpj("00000000000000"));
    }

    #[test]
    fn cep_uf_money_fold() {
        assert!(valid_cep("58070000") && valid_cep("58070-000"));
        assert!(!valid_cep("5807000") && !valid_cep("5807000A"));
        assert!(!valid_cep("00000-000") && !valid_cep("00999999") && valid_cep("01000-000"));
        assert!(!valid_cep("580-70000") && !valid_cep("5807-0000"));
        assert!(valid_uf("PB") && valid_uf("DF") && !valid_uf("XX") && !valid_uf("pb"));
        assert_eq!(parse_money(&serde_json::json!(2100)), Some(210_000));
        assert_eq!(parse_money(&serde_json::json!(150.5)), Some(15_050));
        assert_eq!(parse_money(&serde_json::json!("0.07")), Some(7));
        assert_eq!(parse_money(&serde_json::json!(100.001)), None);
        assert_eq!(parse_money(&serde_json::json!("1e3")), None);
        assert_eq!(money_json(15_050), serde_json::json!(150.5));
        assert_eq!(fold("  José  da SILVA "), "jose da silva");
        assert_eq!(fold("JOÃO Gonçalves"), "joao goncalves");
    }
}
