//! [`dispatch`]: one call through the steps in the module documentation, in order, and
//! the answer written in the route's shape.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{ApiError, App, Ctx, Route, Style, idempotency, now_ms};
use crate::api::auth::CallHeaders;

pub(super) fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn error_response(e: &ApiError, style: Style) -> Response {
    let (status, ct, body) = e.render(style);
    respond(status, ct, body)
}

pub(super) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
    let tenant = app.tenants.get(&client_id).cloned().unwrap_or_default();
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
    let hash = idempotency::fingerprint(&route, &params, query.as_deref(), &bytes);
    if let Some(answer) = idempotency::claim(&app, &route, &client_id, &key, &hash).await {
        return answer;
    }
    let params: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut query_map = HashMap::new();
    if let Some(q) = &query {
        match serde_urlencoded::from_str::<Vec<(String, String)>>(q) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    query_map.entry(k).or_insert(v);
                }
            }
            Err(_) => {
                let _ = app.store.idempotency_release(&client_id, &key).await;
                return error_response(
                    &ApiError::bad_request("invalid_query", "the query string is malformed"),
                    style,
                );
            }
        }
    }
    let ctx = Ctx {
        app: Arc::clone(&app),
        client_id: client_id.clone(),
        tenant,
        body,
        params,
        query: query_map,
    };
    let outcome = (route.handler)(ctx).await;
    let (status, ct, text) = match &outcome {
        Ok(reply) => {
            if app.config.check_responses {
                check_response(&app, &route, reply.status.as_u16(), &reply.body);
            }
            (reply.status, "application/json", reply.body.to_string())
        }
        Err(e) => e.render(style),
    };
    idempotency::finish(&app, &route, &client_id, &key, status, &text).await;
    respond(status, ct, text)
}

/// Logs (never with values) a response that breaks the operation's response schema.
fn check_response(app: &App, route: &Route, status: u16, body: &Value) {
    let Some(spec_path) = route.spec else {
        return;
    };
    let method = route.method.as_str().to_ascii_lowercase();
    if let Some(schema) = app.spec.response_schema(spec_path, &method, status) {
        for v in app.spec.validate(schema, body) {
            tracing::error!(path = route.path, violation = %v, "response breaks the spec");
        }
    }
}
