//! The OpenAPI 3 document the facade serves at `/openapi.json` and keeps in the
//! repository as `openapi.json` (a test checks they are equal; regenerate with
//! `COFRE_WRITE_OPENAPI=1 cargo test --test api_openapi`). Built from the route table:
//! processor operations carry the operation object of the processor's spec (also under
//! the seed pages' alternative paths), cofre's own operations their own, and the
//! components are the processor's schemas.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::api::openapi::Spec;

/// The document.
pub fn openapi() -> Value {
    let spec = Spec::firstvision().document();
    let mut paths = Map::new();
    paths.insert(
        "/token".into(),
        json!({"post": {
            "summary": "Client-credentials token (HTTP Basic: api key and secret)",
            "operationId": "token",
            "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]}}
            }}}},
            "responses": {
                "200": {"description": "A bearer token", "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["Bearer"]},
                        "expires_in": {"type": "integer"}
                    }
                }}}},
                "401": {"description": "Wrong credentials"}
            }
        }}),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": {"description": "OpenAPI 3 document",
                "content": {"application/json": {"schema": {"type": "object"}}}}}
        }}),
    );
    for route in super::routes::all() {
        let method = route.method.as_str().to_ascii_lowercase();
        let op = match (route.spec, route.doc) {
            (_, Some(doc)) => doc(),
            (Some(spec_path), None) => {
                let mut op = spec["paths"][spec_path][method.as_str()].clone();
                if spec_path != route.path
                    && let Some(o) = op.as_object_mut()
                {
                    let id = o
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or("op")
                        .to_owned();
                    o.insert(
                        "operationId".into(),
                        json!(format!("{id}_at_{}", slug(route.path))),
                    );
                    o.insert(
                        "description".into(),
                        json!(format!("The same operation as `{} {spec_path}`, at the path the processor's documentation names.", route.method)),
                    );
                }
                op
            }
            (None, None) => json!({"responses": {"200": {"description": "OK"}}}),
        };
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = entry.as_object_mut() {
            m.insert(method, op);
        }
    }
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": "cofre api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Customer, account and card records and the issuing flow, wire-compatible with the card processor's API (reference 1.3.0), plus the cardholder API /api/v1/portadores. Every call but /token and /openapi.json carries apikey, X-ClientID, Authorization: Bearer, Timestamp, X-Client-Request-Id and Signature (see the README)."
        },
        "paths": Value::Object(paths),
        "components": {
            "schemas": spec["components"]["schemas"].clone(),
        }
    })
}

fn slug(path: &str) -> String {
    path.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_owned()
}

/// The document as served (pretty JSON with a final newline), built once.
pub fn openapi_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut t = serde_json::to_string_pretty(&openapi()).unwrap_or_default();
        t.push('\n');
        t
    })
}
