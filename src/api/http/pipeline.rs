//! [`dispatch`]: one call through the steps in the module documentation, in order, and
//! the answer written in the route's shape.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use axum::extract::{RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sqlx::AnyConnection;

use super::idempotency::{self, InFlight};
use super::{ApiError, Ctx, Handler, Route, Style, now_ms};
use crate::api::auth::CallHeaders;
use crate::api::call::ctx::{ClaimSlot, answer_of, outcome_of};
use crate::api::state::App;
use crate::api::store::{Answer, Claim, Committed, Recorded};

/// The calls running in this process (see [`idempotency`]).
static IN_FLIGHT: LazyLock<InFlight> = LazyLock::new(InFlight::default);

pub(super) fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn error_response(e: &ApiError, style: Style) -> Response {
    let (status, ct, body) = e.render(style);
    respond(status, ct, body.into_bytes())
}

pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_type(style: Style, status: StatusCode) -> &'static str {
    if style.is_problem() && !status.is_success() {
        "application/problem+json"
    } else {
        "application/json"
    }
}

fn answer_response(answer: Answer, style: Style, replayed: bool) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut r = respond(status, content_type(style, status), answer.body);
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

fn reused(style: Style) -> Response {
    error_response(
        &ApiError::conflict(
            "request_id_reused",
            "this request id was already used for another request",
        ),
        style,
    )
}

/// Runs one call of `route` (see the module documentation for the steps).
pub async fn dispatch(
    route: Arc<Route>,
    State(app): State<Arc<App>>,
    params: RawPathParams,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let style = route.style;
    let bytes = match axum::body::to_bytes(body, app.config.max_body).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                &ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body exceeds {} bytes", app.config.max_body),
                ),
                style,
            );
        }
    };
    let call = CallHeaders {
        api_key: header_str(&headers, "apikey"),
        client_id: header_str(&headers, "x-clientid"),
        authorization: header_str(&headers, "authorization"),
        timestamp: header_str(&headers, "timestamp"),
        request_id: header_str(&headers, "x-client-request-id"),
        signature: header_str(&headers, "signature"),
    };
    let (client_id, request_id) = match app.auth.check(&call, &bytes, now_ms()) {
        Ok((c, r)) => (c.to_owned(), r.to_owned()),
        Err(e) => {
            tracing::info!(path = route.path, code = %ApiError::from(e.clone()).code, "refused");
            return error_response(&e.into(), style);
        }
    };
    let Some(tenant) = app.tenants.get(&client_id).cloned() else {
        return error_response(
            &ApiError::internal("an authenticated client has no tenant"),
            style,
        );
    };
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error_response(
                    &ApiError::bad_request(
                        "invalid_json",
                        format!(
                            "the body is not JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    ),
                    style,
                );
            }
        }
    };
    if let Some(spec_path) = route.spec {
        let method = route.method.as_str().to_ascii_lowercase();
        if let Some(schema) = app.spec.request_schema(spec_path, &method) {
            if body.is_null() {
                return error_response(
                    &ApiError::bad_request("schema_violation", "a JSON body is required"),
                    style,
                );
            }
            if let Some(v) = app.spec.validate(schema, &body).into_iter().next() {
                return error_response(
                    &ApiError::bad_request("schema_violation", v.to_string()).field(v.pointer),
                    style,
                );
            }
        }
    }
    let key = match idempotency::key(&headers, &request_id) {
        Ok(k) => k,
        Err(e) => return error_response(&e, style),
    };
    let fingerprint = idempotency::fingerprint(&route, &params, query.as_deref(), &bytes);
    let Some(_running) = IN_FLIGHT.enter(&client_id, &key) else {
        return error_response(
            &ApiError::conflict(
                "request_in_progress",
                "the first request with this id is still running",
            ),
            style,
        );
    };
    let is_read = route.method == Method::GET;
    match app
        .store
        .idempotency_lookup(app.seal.as_ref(), &client_id, &key, &fingerprint)
        .await
    {
        Ok(Recorded::Nothing) => {}
        // A read is answered afresh; the id stays bound to this exact request.
        Ok(Recorded::Same(_)) if is_read => {}
        Ok(Recorded::Same(answer)) => return answer_response(answer, style, true),
        Ok(Recorded::Other) => return reused(style),
        Err(e) => return error_response(&ApiError::from(e), style),
    }
    let mut query_map = HashMap::new();
    if let Some(q) = &query {
        match serde_urlencoded::from_str::<Vec<(String, String)>>(q) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    query_map.entry(k).or_insert(v);
                }
            }
            Err(_) => {
                return error_response(
                    &ApiError::bad_request("invalid_query", "the query string is malformed"),
                    style,
                );
            }
        }
    }
    let claim = Claim {
        client_id: client_id.clone(),
        key,
        fingerprint,
        keep_body: !is_read,
    };
    let slot = Arc::new(ClaimSlot {
        claim: claim.clone(),
        committed: Mutex::new(None),
    });
    let ctx = Ctx {
        app: Arc::clone(&app),
        client_id,
        tenant,
        body,
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        query: query_map,
        claim: Some(Arc::clone(&slot)),
        style,
    };
    let committed = match route.handler {
        Handler::Staged(handler) => {
            let result = handler(ctx).await;
            let done = slot.committed.lock().ok().and_then(|mut g| g.take());
            match done {
                // The handler committed: its result is the recorded answer, unless
                // another facade recorded this key first.
                Some(Committed::Answer(_)) => Ok(Committed::Answer(answer_of(&result, style))),
                Some(other) => Ok(other),
                None => {
                    // Nothing to change: record the claim and answer (a server error
                    // is answered without being recorded).
                    let outcome = outcome_of(&result, style);
                    app.store.writer().record(claim, outcome).await
                }
            }
        }
        Handler::InTransaction(handler) => {
            app.store
                .writer()
                .call(
                    claim,
                    Box::new(move |db: &mut AnyConnection| {
                        Box::pin(async move {
                            let result = handler(ctx, db).await;
                            outcome_of(&result, style)
                        })
                    }),
                )
                .await
        }
    };
    match committed {
        Ok(Committed::Answer(answer)) => {
            if app.config.check_responses && answer.status < 300 {
                check_response(&app, &route, answer.status, &answer.body);
            }
            answer_response(answer, style, false)
        }
        Ok(Committed::Replay(answer)) => answer_response(answer, style, true),
        Ok(Committed::Mismatch) => reused(style),
        Err(e) => error_response(&ApiError::from(e), style),
    }
}

/// Logs (never with values) a response that breaks the operation's response schema.
fn check_response(app: &App, route: &Route, status: u16, body: &[u8]) {
    let Some(spec_path) = route.spec else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let method = route.method.as_str().to_ascii_lowercase();
    if let Some(schema) = app.spec.response_schema(spec_path, &method, status) {
        for v in app.spec.validate(schema, &body) {
            tracing::error!(path = route.path, violation = %v, "response breaks the spec");
        }
    }
}
