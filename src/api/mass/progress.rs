//! cofre's own `GET /cofre/v1/mass-issues/{id}` and `.../embosser-file`: a request's
//! progress and its finished file, for the caller's tenant only, with their OpenAPI
//! operation objects.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::MassIssue;
use crate::api::call::{ApiError, Ctx, Reply};
use crate::api::issuing::{number, parse_number};

/// The caller's mass issue named by the `{id}` path parameter (another tenant's is
/// unknown).
async fn owned(ctx: &Ctx) -> Result<MassIssue, ApiError> {
    let not_found = || ApiError::not_found("mass_issue_not_found", "no such mass issue");
    let id = parse_number(ctx.param("id")?, "id").map_err(|_| not_found())?;
    let mut reader = ctx.reader().await?;
    match reader.records().mass_issue(id).await {
        Ok(m) => Ok(m),
        Err(crate::api::store::StoreError::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn rfc3339(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(super) async fn progress(ctx: Ctx) -> Result<Reply, ApiError> {
    let m = owned(&ctx).await?;
    Reply::ok(json!({
        "id": number(m.id),
        "state": m.state,
        "organizationNumber": m.organization,
        "logo": m.logo,
        "cardType": m.card_type,
        "requested": m.requested,
        "issued": m.issued,
        "failed": m.failed,
        "error": (!m.error.is_empty()).then_some(&m.error),
        "fileName": (!m.file_name.is_empty()).then_some(&m.file_name),
        "createdAt": rfc3339(m.created_ms),
        "updatedAt": rfc3339(m.updated_ms),
    }))
}

pub(super) async fn embosser_file(ctx: Ctx) -> Result<Reply, ApiError> {
    let m = owned(&ctx).await?;
    if m.state != "done" {
        return Err(ApiError::conflict(
            "mass_issue_not_done",
            format!("the mass issue is {}", m.state),
        ));
    }
    let dir = ctx
        .app
        .config
        .bureau
        .as_ref()
        .map(|b| b.output_dir.clone())
        .ok_or_else(|| ApiError::internal("no bureau configured"))?;
    let path = dir.join(&m.file_name);
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
        .await
        .map_err(|e| ApiError::internal(format!("file read task: {e}")))?
        .map_err(|e| {
            tracing::error!(mass_issue = m.id, error = %e, "embosser file unreadable");
            ApiError::new(
                StatusCode::GONE,
                "embosser_file_missing",
                "the embosser file is no longer in the bureau directory",
            )
        })?;
    Reply::ok(json!({ "name": m.file_name, "lines": text.lines().collect::<Vec<_>>() }))
}

fn problem_responses(ok: Value) -> Value {
    let problem = json!({"description": "Problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"type": "object"}}}});
    json!({"200": ok, "401": problem, "404": problem, "409": problem, "410": problem})
}

fn id_parameter() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "description": "The mass issue id (`massIssueId` of the processor answer).", "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"}}])
}

pub(super) fn progress_doc() -> Value {
    json!({
        "summary": "Progress of a mass card issue",
        "operationId": "cofre_mass_issue_progress",
        "parameters": id_parameter(),
        "responses": problem_responses(json!({"description": "The request's progress", "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
                "organizationNumber": {"type": "integer"}, "logo": {"type": "integer"}, "cardType": {"type": "integer"},
                "requested": {"type": "integer"}, "issued": {"type": "integer"}, "failed": {"type": "integer"},
                "error": {"type": "string", "nullable": true},
                "fileName": {"type": "string", "nullable": true},
                "createdAt": {"type": "string", "format": "date-time"},
                "updatedAt": {"type": "string", "format": "date-time"}
            }
        }}}})),
    })
}

pub(super) fn file_doc() -> Value {
    json!({
        "summary": "The embosser file of a finished mass card issue",
        "description": "The file as written to the bureau directory, one string a line (format: protocol/embosser-file.md). 409 `mass_issue_not_done` until the batch is done.",
        "operationId": "cofre_mass_issue_embosser_file",
        "parameters": id_parameter(),
        "responses": problem_responses(json!({"description": "The file", "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "lines": {"type": "array", "items": {"type": "string"}}}
        }}}})),
    })
}
