//! The processor's own error codes in `error.code`, where the processor documents one
//! for the case: each operation's error answers in the processor's spec list its codes
//! (`VPL5SVP07S - ORGANIZATION RECORD NOT FOUND`, ...). A refusal whose cofre code has a
//! documented counterpart for that operation (matched by the text, [`MAPPING`]) answers
//! the processor's code in `error.code` and `errors[0].code`, and keeps cofre's own
//! stable code in `error.cofreCode`. A refusal with no counterpart answers cofre's code
//! in `code` (and in `cofreCode`, so a client can always read that member).
//!
//! Applied when an answer is sent, fresh or replayed (the recorded answer keeps cofre's
//! code; the mapping is a pure function of the operation and that code, so a replay
//! answers the same bytes as the first call).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use regex::Regex;
use serde_json::Value;

use super::{ApiError, Route, Style};
use crate::api::openapi::Spec;

/// cofre's code, and the pattern of the processor's message text for the same case
/// (the first of an operation's codes whose text matches is used). The mapping table of
/// `docs/facade-edge.md`.
pub const MAPPING: [(&str, &str); 9] = [
    (
        "card_not_found",
        r"CARD( / |/)ACCOUNT NUMBER IS NOT FOUND|^CARD (NUMBER )?(IS )?NOT FOUND|EMBOSSER RECORD NOT FOUND",
    ),
    (
        "account_not_found",
        r"^ACCOUNT (NUMBER |RECORD )?(IS )?NOT FOUND",
    ),
    (
        "customer_not_found",
        r"CUSTOMER (NUMBER |RECORD )(IS )?NOT FOUND",
    ),
    (
        "unknown_organization",
        r"^(REQUESTED )?ORG(ANIZATION)? (RECORD |NUMBER )?(IS )?NOT FOUND|^ORGANIZATION NOT FOUND ON FILE|^ORGANIZATION RECORD NOT FOUND",
    ),
    ("unknown_logo", r"^LOGO (RECORD )?NOT FOUND"),
    ("card_blocked", r"^CARD BLOCKED"),
    ("card_not_active", r"^CARD IS NOT ACTIVATED"),
    ("invalid_pin_block", r"^INVALID CURRENT PIN BLOCK"),
    ("account_blocked", r"^ACCOUNT BLOCKED"),
];

type Table = HashMap<(String, String), HashMap<&'static str, String>>;

/// (spec path, method) -> cofre code -> processor code.
fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| build(Spec::firstvision().document()))
}

fn build(doc: &Value) -> Table {
    let line = Regex::new(r"(VPL5S[A-Z0-9]{4,5})\s*-\s*([^\n\\]+)").ok();
    let patterns: Vec<(&'static str, Option<Regex>)> = MAPPING
        .iter()
        .map(|(code, p)| (*code, Regex::new(p).ok()))
        .collect();
    let mut out = Table::new();
    let (Some(line), Some(paths)) = (line, doc["paths"].as_object()) else {
        return out;
    };
    for (path, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (method, op) in ops {
            let mut codes: HashMap<&'static str, String> = HashMap::new();
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for r in responses.values() {
                let text = r["description"].as_str().unwrap_or("");
                for cap in line.captures_iter(text) {
                    let (code, message) = (&cap[1], cap[2].trim());
                    for (ours, re) in &patterns {
                        if re.as_ref().is_some_and(|re| re.is_match(message)) {
                            codes.entry(ours).or_insert_with(|| code.to_owned());
                        }
                    }
                }
            }
            if !codes.is_empty() {
                out.insert((path.clone(), method.clone()), codes);
            }
        }
    }
    out
}

/// The processor's code for cofre's `code` on `method` `spec_path`, if it documents one.
pub fn processor_code(spec_path: &str, method: &str, code: &str) -> Option<&'static str> {
    table()
        .get(&(spec_path.to_owned(), method.to_ascii_lowercase()))
        .and_then(|m| m.get(code))
        .map(String::as_str)
}

/// An error body in the processor's shape, with the processor's code where documented
/// and cofre's in `error.cofreCode`; any other body unchanged.
pub fn apply(spec_path: &str, method: &str, body: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let Some(ours) = v["error"]["code"].as_str().map(str::to_owned) else {
        return body;
    };
    let theirs = processor_code(spec_path, method, &ours)
        .unwrap_or(&ours)
        .to_owned();
    if let Some(e) = v["error"].as_object_mut() {
        e.insert("cofreCode".into(), Value::from(ours));
        e.insert("code".into(), Value::from(theirs.clone()));
    }
    if let Some(first) = v["errors"].get_mut(0).and_then(Value::as_object_mut) {
        first.insert("code".into(), Value::from(theirs));
    }
    serde_json::to_vec(&v).unwrap_or(body)
}

/// [`apply`] to an error answer at a processor path; any other answer unchanged.
pub(super) async fn map_response(route: &Route, response: Response) -> Response {
    let (Some(spec_path), Style::Processor) = (route.spec, route.style) else {
        return response;
    };
    if !response.status().is_client_error() && !response.status().is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Error bodies are small and already whole in memory.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let mapped = apply(spec_path, route.method.as_str(), bytes.to_vec());
            let mut r = Response::from_parts(parts, Body::from(mapped));
            r.headers_mut().remove(header::CONTENT_LENGTH);
            r
        }
        Err(_) => super::pipeline::error_response(
            &ApiError::internal("an answer could not be read"),
            route.style,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_cases_get_the_processors_code() {
        // From the processor's PIN validation answers (422).
        let at = "/cards/pin/validation";
        assert_eq!(
            processor_code(at, "post", "unknown_organization"),
            Some("VPL5SVP07S")
        );
        assert_eq!(
            processor_code(at, "post", "card_blocked"),
            Some("VPL5SVP13S")
        );
        assert_eq!(
            processor_code(at, "post", "card_not_active"),
            Some("VPL5SVP14S")
        );
        assert_eq!(
            processor_code(at, "post", "invalid_pin_block"),
            Some("VPL5SVP05S")
        );
        // "CARD NUMBER IS NOT NUMERIC" is not "not found".
        assert_ne!(
            processor_code(at, "post", "card_not_found"),
            Some("VPL5SVP04S")
        );
        assert_eq!(processor_code(at, "post", "no_such_code"), None);
        // Every mapping is used by some operation (a pattern that never matches is a typo).
        for (ours, _) in MAPPING {
            assert!(
                table().values().any(|m| m.contains_key(ours)),
                "{ours} matches nothing"
            );
        }
    }

    #[test]
    fn the_body_keeps_cofres_code_beside_the_processors() {
        let body = br#"{"hasError":true,"errors":[{"code":"card_blocked","description":"x"}],"error":{"type":"HOST","code":"card_blocked","field":null,"message":"x"}}"#;
        let out: Value =
            serde_json::from_slice(&apply("/cards/pin/validation", "POST", body.to_vec())).unwrap();
        assert_eq!(out["error"]["code"], "VPL5SVP13S");
        assert_eq!(out["error"]["cofreCode"], "card_blocked");
        assert_eq!(out["errors"][0]["code"], "VPL5SVP13S");
        // No counterpart: cofre's code in both members.
        let body = body.to_vec();
        let out: Value = serde_json::from_slice(&apply("/customer", "POST", body)).unwrap();
        assert_eq!(out["error"]["code"], "card_blocked");
        assert_eq!(out["error"]["cofreCode"], "card_blocked");
        // A success answer is not touched.
        assert_eq!(
            apply("/customer", "POST", b"{\"a\":1}".to_vec()),
            b"{\"a\":1}"
        );
    }
}
