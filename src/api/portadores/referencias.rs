//! Reference data of the issuer: `GET /api/v1/portadores/escolaridade` and
//! `GET /api/v1/portadores/ocupacoes`. The lists live in tables seeded by
//! `migrations/0007_portadores_extra.sql` (`portador_education`,
//! `portador_occupations`), so an issuer edits data, not code. Each item is
//! `{id, codigo, descricao}`.
//!
//! Also the OpenAPI helpers the other portadores modules share (`operation`, `path_id`,
//! `code_list_schema`).

use axum::http::Method;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::api::call::{ApiError, Ctx, Reply, Route};
use crate::handler_tx;

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::own(
            Method::GET,
            "/api/v1/portadores/escolaridade",
            doc_education,
            handler_tx!(education),
        ),
        Route::own(
            Method::GET,
            "/api/v1/portadores/ocupacoes",
            doc_occupations,
            handler_tx!(occupations),
        ),
    ]
}

/// The problem+json schema of every error answer.
fn problem() -> Value {
    json!({"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {"schema": {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "code": {"type": "string"}, "field": {"type": "string"},
            "invalid-params": {"type": "array", "items": {"type": "object"}}
        }
    }}}})
}

/// An OpenAPI operation object: `params` are (name, in, required, description),
/// `body` the request schema, `ok` the success status and response schema.
pub(super) fn operation(
    summary: &str,
    params: &[(&str, &str, bool, &str)],
    body: Option<Value>,
    ok: (&str, Value),
) -> Value {
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, place, required, description)| {
            json!({"name": name, "in": place, "required": required, "description": description,
                "schema": {"type": "string"}})
        })
        .collect();
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.0.to_owned(),
        json!({"description": "OK", "content": {"application/json": {"schema": ok.1}}}),
    );
    for code in ["400", "401", "404", "422"] {
        responses.insert(code.to_owned(), problem());
    }
    let mut op = json!({
        "summary": summary,
        "tags": ["portadores"],
        "parameters": parameters,
        "responses": Value::Object(responses),
    });
    if let Some(schema) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    op
}

/// The `idPortador` path parameter.
pub(super) fn path_id() -> (&'static str, &'static str, bool, &'static str) {
    (
        "idPortador",
        "path",
        true,
        "The portador's id (customer number)",
    )
}

/// `[{id, codigo, descricao}]`.
pub(super) fn code_list_schema() -> Value {
    json!({"type": "array", "items": {"type": "object", "required": ["id", "codigo", "descricao"],
        "properties": {"id": {"type": "integer"}, "codigo": {"type": "string"}, "descricao": {"type": "string"}}}})
}

/// A code table as the API lists it.
pub(super) fn code_list<T: serde::Serialize>(rows: &[T]) -> Value {
    let rows = serde_json::to_value(rows).unwrap_or(Value::Null);
    let items: Vec<Value> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| json!({"id": r["id"], "codigo": r["code"], "descricao": r["description"]}))
                .collect()
        })
        .unwrap_or_default();
    Value::Array(items)
}

fn doc_education() -> Value {
    operation(
        "Lista as escolaridades cadastradas na base do emissor",
        &[],
        None,
        ("200", code_list_schema()),
    )
}

fn doc_occupations() -> Value {
    operation(
        "Lista as ocupações cadastradas na base do emissor",
        &[],
        None,
        ("200", code_list_schema()),
    )
}

async fn education(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    Reply::ok(code_list(&r.education_levels().await?))
}

async fn occupations(ctx: Ctx, db: &mut AnyConnection) -> Result<Reply, ApiError> {
    let mut r = ctx.records(db);
    Reply::ok(code_list(&r.occupations().await?))
}
