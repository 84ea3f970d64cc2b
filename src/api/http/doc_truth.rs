//! What the served OpenAPI document says beyond the processor's operation objects, so
//! that it tells what cofre does:
//!
//! * every header a signed call carries, as the gateway checks them (`apikey`,
//!   `X-ClientID`, `Authorization`, `Timestamp`, `X-Client-Request-Id` and `Signature`
//!   required; `Idempotency-Key` optional), replacing the processor's declarations
//!   (which call `Signature` optional and leave out `Timestamp` and
//!   `X-Client-Request-Id`);
//! * `securitySchemes` (HTTP Basic for `/token`; the Bearer token with the api key for
//!   every other call) and each operation's `security`;
//! * every status code cofre answers, each with the error body's schema
//!   ([`ERROR_STATUSES`]), and none it never answers for an operation (the processor's
//!   `300`, `403`, `404` and `405`);
//! * the processor's enums that contradict their own field (`["Y,N"]` on a
//!   1-character string, `[null]` on an integer, `["range[19,19]"]`) removed: cofre
//!   enforces the field's type and length instead (see `Spec::enum_is_coherent`). Each
//!   removal is listed, with the processor's original, in one place: the document's
//!   `x-cofre-replacements`;
//! * cofre's extra answer fields (`massIssueId`, `massIssueState` on the mass issue).

use serde_json::{Map, Value, json};

use crate::api::call::Style;
use crate::api::openapi::Spec;

/// The error statuses every signed operation may answer, and why.
pub const ERROR_STATUSES: [(u16, &str); 11] = [
    (
        400,
        "Malformed request: JSON, schema, header or query (`code` names it)",
    ),
    (
        401,
        "Authentication failed: credentials, token, timestamp or signature",
    ),
    (
        408,
        "The body did not arrive within the body timeout (the connection is closed)",
    ),
    (
        409,
        "The request id was used for another request (`request_id_reused`) or is still running (`request_in_progress`)",
    ),
    (413, "The body is larger than `max_body`"),
    (415, "The body is not `application/json`"),
    (
        422,
        "Refused by a business rule (`code` names it; `field` is the JSON pointer)",
    ),
    (
        429,
        "Too many failed authentications from this client (`Retry-After` gives the wait in seconds)",
    ),
    (500, "Internal error"),
    (502, "The HSM answered an error cofre cannot map"),
    (
        503,
        "The HSM or the database is unavailable; retry with the same request id",
    ),
];

/// The headers of a signed call: (name, required, description).
const SIGNED_HEADERS: [(&str, bool, &str); 7] = [
    ("apikey", true, "The client's api key"),
    ("X-ClientID", true, "The client id"),
    (
        "Authorization",
        true,
        "`Bearer <token>` from `/token` (the scheme in any letter case)",
    ),
    (
        "Timestamp",
        true,
        "Epoch milliseconds; accepted within 5 minutes of the facade's clock",
    ),
    (
        "X-Client-Request-Id",
        true,
        "Unique per request, at most 40 characters; bound to the method, path, query and body for the retention window",
    ),
    (
        "Signature",
        true,
        "Base64 HMAC-SHA256 under the client's secret of api key + request id + timestamp + body",
    ),
    (
        "Idempotency-Key",
        false,
        "1-255 characters: an alias of the request id for retries under a new request id; never widens what the signature covers",
    ),
];

fn error_schema(style: Style) -> Value {
    match style {
        Style::Processor => json!({"$ref": "#/components/schemas/CofreError"}),
        Style::Problem | Style::ProblemPt => json!({"$ref": "#/components/schemas/CofreProblem"}),
    }
}

fn error_content(style: Style) -> Value {
    let ct = match style {
        Style::Processor => "application/json",
        Style::Problem | Style::ProblemPt => "application/problem+json",
    };
    json!({ ct: {"schema": error_schema(style)} })
}

/// Headers, security and error answers of one signed operation.
pub fn signed_operation(op: &mut Value, style: Style) {
    let Some(o) = op.as_object_mut() else {
        return;
    };
    let mut params: Vec<Value> = o
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            let header = p["in"] == "header";
            let name = p["name"].as_str().unwrap_or("");
            !(header
                && SIGNED_HEADERS
                    .iter()
                    .any(|(n, _, _)| n.eq_ignore_ascii_case(name)))
        })
        .collect();
    for (name, _, _) in SIGNED_HEADERS {
        params.push(json!({"$ref": format!("#/components/parameters/{name}")}));
    }
    o.insert("parameters".into(), Value::Array(params));
    o.insert("security".into(), json!([{"bearerAuth": [], "apiKey": []}]));
    let responses = o
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(r) = responses.as_object_mut() {
        if style == Style::Processor {
            for never in ["300", "403", "404", "405"] {
                r.remove(never);
            }
        }
        for (status, why) in ERROR_STATUSES {
            let entry = r
                .entry(status.to_string())
                .or_insert_with(|| json!({"description": why}));
            if let Some(e) = entry.as_object_mut() {
                // The processor's error answers get cofre's error body; an operation of
                // cofre's own keeps the schema it documents.
                if style == Style::Processor || !e.contains_key("content") {
                    e.insert("content".into(), error_content(style));
                }
            }
        }
    }
}

/// `/token`'s security and answers.
pub fn token_operation(op: &mut Value) {
    if let Some(o) = op.as_object_mut() {
        o.insert("security".into(), json!([{"basicAuth": []}]));
        if let Some(r) = o.get_mut("responses").and_then(Value::as_object_mut) {
            for (status, why) in [
                (
                    400,
                    "`grant_type` missing, not `client_credentials`, or the body not a form",
                ),
                (401, "Wrong credentials"),
                (408, "The body did not arrive within the body timeout"),
                (413, "The body is larger than `max_body`"),
                (415, "The body is not `application/x-www-form-urlencoded`"),
                (429, "Too many failed authentications (`Retry-After`)"),
            ] {
                r.insert(
                    status.to_string(),
                    json!({"description": why, "content": error_content(Style::Processor)}),
                );
            }
        }
    }
}

/// The components cofre adds, and its corrections to the processor's schemas; returns
/// the list of replacements (`x-cofre-replacements`).
pub fn components(components: &mut Value) -> Value {
    let mut replacements = Vec::new();
    if let Some(schemas) = components["schemas"].as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            drop_incoherent_enums(
                schema,
                &format!("#/components/schemas/{name}"),
                &mut replacements,
            );
        }
        if let Some(props) = schemas
            .get_mut("MassCardIssueAddResponseL8V3")
            .and_then(|s| s.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            props.insert(
                "massIssueId".into(),
                json!({"type": "string", "pattern": "^[0-9]{19}$",
                "description": "cofre: the mass issue's id, for GET /cofre/v1/mass-issues/{id}"}),
            );
            props.insert(
                "massIssueState".into(),
                json!({"type": "string",
                "description": "cofre: the mass issue's state"}),
            );
        }
        schemas.insert("CofreError".into(), json!({
            "type": "object",
            "required": ["hasError", "errors", "error"],
            "properties": {
                "hasError": {"type": "boolean"},
                "errors": {"type": "array", "items": {"type": "object",
                    "properties": {"code": {"type": "string"}, "description": {"type": "string"}}}},
                "error": {"type": "object", "required": ["type", "code", "message"],
                    "properties": {
                        "type": {"type": "string", "enum": ["HOST", "GATEWAY", "NETWORK", "APIM"]},
                        "code": {"type": "string", "description": "The processor's code where it documents one for the case, else cofre's"},
                        "cofreCode": {"type": "string", "description": "cofre's own stable code"},
                        "field": {"type": "string", "nullable": true},
                        "message": {"type": "string"}
                    }}
            }
        }));
        schemas.insert(
            "CofreProblem".into(),
            json!({
                "type": "object",
                "description": "RFC 9457 problem details",
                "required": ["type", "title", "status", "code"],
                "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"},
                    "code": {"type": "string"}, "field": {"type": "string"},
                    "invalid-params": {"type": "array", "items": {"type": "object"}}
                }
            }),
        );
    }
    if let Some(c) = components.as_object_mut() {
        let headers: Map<String, Value> = SIGNED_HEADERS
            .iter()
            .map(|(name, required, description)| {
                let p = json!({"name": name, "in": "header", "required": required,
                    "description": description, "schema": {"type": "string"}});
                ((*name).to_owned(), p)
            })
            .collect();
        c.insert("parameters".into(), Value::Object(headers));
        c.insert("securitySchemes".into(), json!({
            "basicAuth": {"type": "http", "scheme": "basic",
                "description": "api key : secret, for POST /token"},
            "bearerAuth": {"type": "http", "scheme": "bearer",
                "description": "The token from POST /token; every call also carries the signed headers (parameters)"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "apikey"}
        }));
    }
    Value::Array(replacements)
}

/// Removes the incoherent enums under `value` (at JSON pointer `pointer`), listing each.
pub fn drop_enums(value: &mut Value, pointer: &str) -> Vec<Value> {
    let mut out = Vec::new();
    drop_incoherent_enums(value, pointer, &mut out);
    out
}

fn drop_incoherent_enums(schema: &mut Value, pointer: &str, out: &mut Vec<Value>) {
    match schema {
        Value::Object(m) => {
            if let Some(allowed) = m.get("enum").and_then(Value::as_array).cloned() {
                let plain = Value::Object(m.clone());
                if !Spec::firstvision().enum_is_coherent(&plain, &allowed) {
                    m.remove("enum");
                    out.push(json!({
                        "at": pointer,
                        "processor": {"enum": allowed},
                        "cofre": "removed: the values contradict the field's own type or length, which cofre enforces",
                    }));
                }
            }
            for (k, v) in m.iter_mut() {
                drop_incoherent_enums(v, &format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                drop_incoherent_enums(v, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enums(v: &Value, out: &mut Vec<(Value, Vec<Value>)>) {
        match v {
            Value::Object(m) => {
                if let Some(a) = m.get("enum").and_then(Value::as_array) {
                    out.push((v.clone(), a.clone()));
                }
                m.values().for_each(|x| enums(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| enums(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_served_document_tells_what_cofre_does() {
        let doc = crate::api::http::doc::openapi();
        // Every enum left is one cofre enforces; each removed one is listed with the
        // processor's original (the processor's document has some: positive control).
        let mut left = Vec::new();
        enums(&doc["paths"], &mut left);
        enums(&doc["components"], &mut left);
        assert!(!left.is_empty());
        for (schema, allowed) in &left {
            assert!(
                Spec::firstvision().enum_is_coherent(schema, allowed),
                "{schema}"
            );
        }
        let replaced = doc["x-cofre-replacements"].as_array().unwrap();
        assert!(replaced.len() >= 5, "{replaced:?}");
        let text = serde_json::to_string(replaced).unwrap();
        for original in ["Y,N", "range[19,19]", "[null]"] {
            assert!(text.contains(original), "{original} not listed");
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(schemes["basicAuth"]["scheme"], "basic");
        let mut signed = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                if path == "/token" || path == "/openapi.json" {
                    continue;
                }
                signed += 1;
                let at = format!("{method} {path}");
                let header = |name: &str| {
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| match p["$ref"].as_str() {
                            Some(r) => {
                                &doc["components"]["parameters"][r.rsplit('/').next().unwrap()]
                            }
                            None => p,
                        })
                        .filter(|p| p["in"] == "header" && p["name"] == name)
                        .map(|p| p["required"].as_bool().unwrap())
                        .collect::<Vec<_>>()
                };
                for (name, required, _) in SIGNED_HEADERS {
                    assert_eq!(header(name), vec![required], "{at}: {name}");
                }
                assert!(op["security"].is_array(), "{at}");
                for (status, _) in ERROR_STATUSES {
                    let r = &op["responses"][status.to_string()];
                    assert!(r["content"].is_object(), "{at}: {status}");
                }
                for never in ["300", "403", "405"] {
                    if op["responses"][never].is_object() {
                        assert!(path.starts_with("/api/v1/portadores"), "{at}: {never}");
                    }
                }
            }
        }
        assert!(signed > 20, "{signed}");
        // The account openings answer 403 loja_mismatch for another store's idLoja.
        for kind in ["pf", "pj"] {
            let op = &doc["paths"][format!("/api/v1/portadores/contas/{kind}")]["post"];
            assert!(
                op["responses"]["403"]["content"]["application/problem+json"].is_object(),
                "{kind}"
            );
        }
        let mass = &doc["components"]["schemas"]["MassCardIssueAddResponseL8V3"]["properties"];
        assert!(mass["massIssueId"].is_object());
        assert_eq!(
            doc["paths"]["/token"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/CofreError"
        );
    }
}
