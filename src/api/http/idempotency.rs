//! Step 4 of a call and its close: the idempotency key, what makes two calls the same
//! request, the claim (a repeat gets the first answer, a clash a `409`), and the answer
//! recorded afterwards, or the key released when the server failed.

use axum::extract::RawPathParams;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::pipeline::{error_response, header_str, respond};
use super::{ApiError, App, Route, Style};
use crate::api::store::Claim;

/// The call's key: `Idempotency-Key` (1-255 characters), else `X-Client-Request-Id`.
pub(super) fn key(headers: &HeaderMap, request_id: &str) -> Result<String, ApiError> {
    match header_str(headers, "idempotency-key") {
        Some(k) if !k.is_empty() && k.len() <= 255 => Ok(format!("k:{k}")),
        Some(_) => Err(ApiError::bad_request(
            "missing_header",
            "Idempotency-Key: 1-255 characters",
        )
        .field("Idempotency-Key")),
        None => Ok(format!("r:{request_id}")),
    }
}

/// The request's fingerprint: method, path template, path parameters, query and body.
pub(super) fn fingerprint(
    route: &Route,
    params: &RawPathParams,
    query: Option<&str>,
    body: &[u8],
) -> String {
    let mut h = Sha256::new();
    h.update(route.method.as_str().as_bytes());
    h.update([0]);
    h.update(route.path.as_bytes());
    h.update([0]);
    for (name, value) in params.iter() {
        h.update(name.as_bytes());
        h.update([b'=']);
        h.update(value.as_bytes());
        h.update([0]);
    }
    h.update(query.unwrap_or("").as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// Claims `key` for this call; `Some` is the answer to give instead of running the
/// handler (a replay or a refusal).
pub(super) async fn claim(
    app: &App,
    route: &Route,
    client_id: &str,
    key: &str,
    hash: &str,
) -> Option<Response> {
    let style = route.style;
    match app.store.idempotency_claim(client_id, key, hash).await {
        Ok(Claim::Fresh) => None,
        // A read is answered afresh: replaying a stored copy of, say, an embosser file
        // would only duplicate data; the id is still bound to this exact request.
        Ok(Claim::Replay { .. }) if route.method == Method::GET => None,
        Ok(Claim::Replay { status, response }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let ct = if style == Style::Problem && !status.is_success() {
                "application/problem+json"
            } else {
                "application/json"
            };
            let mut r = respond(status, ct, response);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Some(r)
        }
        Ok(Claim::Mismatch) => Some(error_response(
            &ApiError::conflict(
                "request_id_reused",
                "this request id was already used for another request",
            ),
            style,
        )),
        Ok(Claim::InProgress) => Some(error_response(
            &ApiError::conflict(
                "request_in_progress",
                "the first request with this id is still running",
            ),
            style,
        )),
        Err(e) => Some(error_response(&ApiError::from(e), style)),
    }
}

/// Records the answer under `key` (a `GET`'s without its body); a 5xx answer is not
/// recorded: the key is released so that a retry runs.
pub(super) async fn finish(
    app: &App,
    route: &Route,
    client_id: &str,
    key: &str,
    status: StatusCode,
    text: &str,
) {
    if status.is_server_error() {
        if let Err(e) = app.store.idempotency_release(client_id, key).await {
            tracing::error!(error = %e, "idempotency release failed");
        }
    } else if let Err(e) = app
        .store
        .idempotency_finish(
            client_id,
            key,
            status.as_u16(),
            if route.method == Method::GET {
                ""
            } else {
                text
            },
        )
        .await
    {
        tracing::error!(error = %e, "idempotency record failed");
    }
}
