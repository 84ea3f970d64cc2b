//! Reference data of the issuer: `GET /api/v1/portadores/escolaridade`,
//! `/ocupacoes` and `/parentescos` (kinship degrees, which `grauParentesco` takes). The
//! lists live in tables seeded by the migrations (`portador_education`,
//! `portador_occupations`, `portador_kinship`), so an issuer edits data, not code;
//! descriptions keep their accents. Each item is `{id, codigo, descricao}`.
//!
//! Also what the other portadores modules share to declare their routes: `route`
//! (every route of the tree answers errors in Portuguese problem+json), `operation`,
//! `path_id` and the schemas.

use axum::http::Method;
use serde_json::{Value, json};

use super::pessoa::RefData;
use crate::api::call::{ApiError, Ctx, Handler, Reply, Route, Style};
use crate::api::store::{CodeRow, Records};
use crate::handler;

/// A route of the cardholder API.
pub(super) fn route(
    method: Method,
    path: &'static str,
    doc: fn() -> Value,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        spec: None,
        style: Style::ProblemPt,
        doc: Some(doc),
        handler,
    }
}

/// This module's routes.
pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/v1/portadores/escolaridade",
            doc_education,
            handler!(education),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/ocupacoes",
            doc_occupations,
            handler!(occupations),
        ),
        route(
            Method::GET,
            "/api/v1/portadores/parentescos",
            doc_kinship,
            handler!(kinship),
        ),
    ]
}

/// The problem+json schema of every error answer.
pub(super) fn problem() -> Value {
    json!({"description": "Problema (RFC 9457), em português", "content": {"application/problem+json": {"schema": {
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "code": {"type": "string"}, "field": {"type": "string"},
            "invalid-params": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "code": {"type": "string"}, "reason": {"type": "string"}}}}
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
    for code in ["400", "401", "404", "409", "422"] {
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
        "O id do portador (número do cliente)",
    )
}

/// An array of `item`.
pub(super) fn list_schema_of(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

/// `[{id, codigo, descricao}]`.
pub(super) fn code_list_schema() -> Value {
    list_schema_of(
        json!({"type": "object", "required": ["id", "codigo", "descricao"],
        "properties": {"id": {"type": "integer"}, "codigo": {"type": "string"}, "descricao": {"type": "string"}}}),
    )
}

/// A code table as the API lists it.
pub(super) fn code_list(rows: &[CodeRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| json!({"id": r.id, "codigo": r.code, "descricao": r.description}))
            .collect(),
    )
}

/// The reference data requests are checked against.
pub(super) async fn ref_data(r: &mut Records<'_>) -> Result<RefData, ApiError> {
    Ok(RefData {
        education: r.education_levels().await?,
        occupations: r.occupations().await?,
        kinship: r.kinship_degrees().await?,
    })
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

fn doc_kinship() -> Value {
    operation(
        "Lista os graus de parentesco (grauParentesco)",
        &[],
        None,
        ("200", code_list_schema()),
    )
}

async fn education(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    Reply::ok(code_list(&reader.records().education_levels().await?))
}

async fn occupations(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    Reply::ok(code_list(&reader.records().occupations().await?))
}

async fn kinship(ctx: Ctx) -> Result<Reply, ApiError> {
    let mut reader = ctx.reader().await?;
    Reply::ok(code_list(&reader.records().kinship_degrees().await?))
}
