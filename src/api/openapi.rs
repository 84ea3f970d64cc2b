//! The processor's OpenAPI subset (`firstvision-1.3.0-subset.yaml`, the field-level
//! contract existing clients send and expect) loaded once, and a validator for the
//! OpenAPI 3.0 schema objects it uses: `$ref`, `type`, `format` (int32, int64, date),
//! `required`, `properties`, `items`, `enum`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `pattern`, `nullable`, `additionalProperties: false` (and `enum`,
//! where the document's enum is coherent with its field: see `enum_is_coherent`).
//!
//! Requests are validated before anything is stored (fields cofre does not act on are
//! kept, never dropped); tests validate every response the facade sends.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The embedded subset.
pub const FIRSTVISION_SUBSET: &str = include_str!("firstvision-1.3.0-subset.yaml");

/// One rule a value breaks, with the JSON pointer of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the validated value (`/customerData/name`).
    pub pointer: String,
    /// The rule.
    pub rule: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.rule)
    }
}

/// A loaded OpenAPI document.
#[derive(Debug)]
pub struct Spec {
    doc: Value,
    patterns: std::sync::Mutex<HashMap<String, Option<regex::Regex>>>,
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => r.parse::<f64>().ok().map_or(Value::Null, Value::from),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.clone()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => format!("{other:?}"),
                };
                m.insert(key, to_json(v));
            }
            Value::Object(m)
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// A `format: date` value: `YYYY-MM-DD` that exists in the calendar (the domain's one
/// date type decides).
fn is_date(s: &str) -> bool {
    crate::api::domain::Date::parse(s).is_ok()
}

impl Spec {
    /// Parses YAML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let first = docs.first().ok_or("empty document")?;
        Ok(Self {
            doc: to_json(first),
            patterns: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The processor's subset, parsed once.
    pub fn firstvision() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            // The embedded file is part of the build; a parse failure is a build defect
            // that every test would show at once.
            Spec::parse(FIRSTVISION_SUBSET).unwrap_or_else(|_| Spec {
                doc: Value::Null,
                patterns: std::sync::Mutex::new(HashMap::new()),
            })
        })
    }

    /// The whole document as JSON.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Path templates in the document.
    pub fn paths(&self) -> Vec<&str> {
        self.doc["paths"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Operations, as `(path, method)`, whose request body is a JSON document.
    pub fn operations_with_request_body(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for path in self.paths() {
            if let Some(ops) = self.doc["paths"][path].as_object() {
                for method in ops.keys() {
                    if self.request_schema(path, method).is_some() {
                        out.push((path, method.as_str()));
                    }
                }
            }
        }
        out
    }

    /// The request body schema of an operation.
    pub fn request_schema(&self, path: &str, method: &str) -> Option<&Value> {
        let s = &self.doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        (!s.is_null()).then_some(s)
    }

    /// The response schema of an operation for a status code.
    pub fn response_schema(&self, path: &str, method: &str, status: u16) -> Option<&Value> {
        let s = &self.doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
            ["schema"];
        (!s.is_null()).then_some(s)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..32 {
            match s.get("$ref").and_then(Value::as_str) {
                Some(r) => match r.strip_prefix("#/components/schemas/") {
                    Some(name) => s = &self.doc["components"]["schemas"][name],
                    None => return &Value::Null,
                },
                None => return s,
            }
        }
        &Value::Null
    }

    fn pattern_matches(&self, pattern: &str, s: &str) -> bool {
        let mut cache = match self.patterns.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let re = cache
            .entry(pattern.to_owned())
            .or_insert_with(|| regex::Regex::new(pattern).ok());
        // A pattern this engine cannot compile is not enforced (none in the subset).
        re.as_ref().is_none_or(|r| r.is_match(s))
    }

    /// The published subset has a few enums that contradict their own field (`[null]` on
    /// a non-nullable integer, `["Y,N"]` on a 1-character string): documentation slips,
    /// not rules. An enum is enforced only if each of its values fits the field's type
    /// and length; the type and length are enforced either way.
    pub fn enum_is_coherent(&self, schema: &Value, allowed: &[Value]) -> bool {
        let mut plain = schema.clone();
        if let Some(m) = plain.as_object_mut() {
            m.remove("enum");
        }
        allowed
            .iter()
            .all(|v| !v.is_null() && self.validate(&plain, v).is_empty())
    }

    /// The `number` values of a request that are not amounts cofre keeps exactly: every
    /// `number` field of the processor's request schemas is an amount (a limit, an
    /// income, a balance), so each must have at most two decimals and at most
    /// 100,000,000,000.00 either way ([`crate::api::domain::Money`]); refused, never
    /// rounded. Run after [`Spec::validate`] found nothing.
    pub fn amount_violations(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.amounts(schema, value, String::new(), &mut out, 0);
        out
    }

    fn amounts(
        &self,
        schema: &Value,
        value: &Value,
        at: String,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        use crate::api::domain::Money;
        let s = self.resolve(schema);
        if depth > 64 || s.is_null() || value.is_null() {
            return;
        }
        match (s.get("type").and_then(Value::as_str), value) {
            (Some("number"), Value::Number(_)) => {
                let exact = Money::from_json(value)
                    .is_ok_and(|m| m <= Money::MAX && m >= Money::from_minor(-Money::MAX.minor()));
                if !exact {
                    out.push(Violation {
                        pointer: at,
                        rule: "an amount has at most two decimals and is at most 100000000000.00"
                            .into(),
                    });
                }
            }
            (_, Value::Object(obj)) => {
                if let Some(props) = s.get("properties").and_then(Value::as_object) {
                    for (k, v) in obj {
                        if let Some(ps) = props.get(k) {
                            self.amounts(ps, v, format!("{at}/{k}"), out, depth + 1);
                        }
                    }
                }
            }
            (_, Value::Array(items)) => {
                if let Some(item_schema) = s.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.amounts(item_schema, v, format!("{at}/{i}"), out, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// Every rule `value` breaks against `schema` (empty: valid).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, value, String::new(), &mut out, 0);
        out
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        at: String,
        out: &mut Vec<Violation>,
        depth: usize,
    ) {
        let s = self.resolve(schema);
        let mut fail = |rule: String| {
            out.push(Violation {
                pointer: at.clone(),
                rule,
            })
        };
        if depth > 64 || s.is_null() {
            return;
        }
        if value.is_null() {
            if s.get("nullable").and_then(Value::as_bool) != Some(true) && s.get("type").is_some() {
                fail("must not be null".into());
            }
            return;
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && self.enum_is_coherent(s, allowed)
            && !allowed.contains(value)
        {
            fail(format!("must be one of {}", Value::Array(allowed.clone())));
        }
        match s.get("type").and_then(Value::as_str) {
            Some("object") | None if value.is_object() || s.get("properties").is_some() => {
                let Some(obj) = value.as_object() else {
                    fail("must be an object".into());
                    return;
                };
                let props = s.get("properties").and_then(Value::as_object);
                for req in s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(name) = req.as_str()
                        && !obj.contains_key(name)
                    {
                        out.push(Violation {
                            pointer: format!("{at}/{name}"),
                            rule: "is required".into(),
                        });
                    }
                }
                for (k, v) in obj {
                    match props.and_then(|p| p.get(k)) {
                        Some(ps) => self.check(ps, v, format!("{at}/{k}"), out, depth + 1),
                        None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                            out.push(Violation {
                                pointer: format!("{at}/{k}"),
                                rule: "is not a field of this object".into(),
                            });
                        }
                        None => {}
                    }
                }
            }
            Some("object") => fail("must be an object".into()),
            Some("array") => {
                let Some(items) = value.as_array() else {
                    fail("must be an array".into());
                    return;
                };
                if let Some(item_schema) = s.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item_schema, v, format!("{at}/{i}"), out, depth + 1);
                    }
                }
            }
            Some("string") => {
                let Some(text) = value.as_str() else {
                    fail("must be a string".into());
                    return;
                };
                let len = text.chars().count() as u64;
                if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                    && len > max
                {
                    fail(format!("longer than {max} characters"));
                }
                if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                    && len < min
                {
                    fail(format!("shorter than {min} characters"));
                }
                if s.get("format").and_then(Value::as_str) == Some("date") && !is_date(text) {
                    fail("must be a calendar date YYYY-MM-DD".into());
                }
                if let Some(p) = s.get("pattern").and_then(Value::as_str)
                    && !self.pattern_matches(p, text)
                {
                    fail(format!("must match {p}"));
                }
            }
            Some("integer") => {
                let Some(n) = value.as_i64() else {
                    fail("must be an integer".into());
                    return;
                };
                if s.get("format").and_then(Value::as_str) == Some("int32")
                    && i32::try_from(n).is_err()
                {
                    fail("must fit in 32 bits".into());
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                    && n as f64 > max
                {
                    fail(format!("above the maximum {max}"));
                }
                if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                    && (n as f64) < min
                {
                    fail(format!("below the minimum {min}"));
                }
            }
            Some("number") => {
                let Some(n) = value.as_f64() else {
                    fail("must be a number".into());
                    return;
                };
                if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                    && n > max
                {
                    fail(format!("above the maximum {max}"));
                }
                if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                    && n < min
                {
                    fail(format!("below the minimum {min}"));
                }
            }
            Some("boolean") if !value.is_boolean() => fail("must be true or false".into()),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
