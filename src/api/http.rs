//! The HTTP plumbing every operation shares: the route table entry ([`Route`]), the
//! context a handler gets ([`Ctx`]), its answer ([`Reply`]) and its error
//! ([`ApiError`]), and [`dispatch`], which runs one call through the same steps in the
//! same order:
//!
//! 1. read the body up to `max_body` (`413 body_too_large`);
//! 2. authenticate (`401`, see [`super::auth`]);
//! 3. parse the JSON (`400 invalid_json`) and validate it against the operation's
//!    schema in the processor's spec (`400 schema_violation`, naming the field);
//! 4. claim the idempotency key (`Idempotency-Key`, else `X-Client-Request-Id`): a
//!    repeat with the same method, path and body gets the first answer unchanged (a
//!    `GET` is answered afresh; its answer is not stored); with another request
//!    `409 request_id_reused`; while the first runs `409 request_in_progress`;
//! 5. run the handler; 2xx and 4xx answers are recorded for step 4, 5xx answers are not
//!    (the key is released so that a retry runs).
//!
//! Errors on the processor's paths are in the processor's shape (both the documented
//! `{"error": {type, code, field, message}}` and the spec's `DResponse`
//! `{"hasError", "errors": [{code, description}]}`, in one object); on cofre's own
//! paths they are RFC 9457 `application/problem+json`. Every error has a stable `code`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth::{AuthError, CallHeaders};
use super::server::App;
use super::store::{Claim, StoreError};
use crate::client::ClientError;
use crate::protocol::Status;

/// Which error shape a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The processor's paths: its documented error object.
    Processor,
    /// cofre's own paths: RFC 9457 problem details.
    Problem,
}

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;
/// A handler.
pub type Handler = fn(Ctx) -> HandlerFuture;

/// Makes a [`Handler`] of an `async fn(Ctx) -> Result<Reply, ApiError>`.
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn h(ctx: $crate::api::http::Ctx) -> $crate::api::http::HandlerFuture {
            Box::pin($f(ctx))
        }
        h as $crate::api::http::Handler
    }};
}

/// One operation at one path.
#[derive(Clone)]
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, axum syntax (`/api/v1/portadores/{idPortador}`).
    pub path: &'static str,
    /// The operation's path in the processor's spec, whose request schema is enforced
    /// and whose operation object documents this path (`None`: a cofre operation).
    pub spec: Option<&'static str>,
    /// Error shape.
    pub style: Style,
    /// OpenAPI operation object for cofre's own operations (processor operations take
    /// theirs from the spec).
    pub doc: Option<fn() -> Value>,
    /// The handler.
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Route({} {})", self.method, self.path)
    }
}

impl Route {
    /// A processor operation at `path`, specified at `spec` in the processor's spec.
    pub fn processor(
        method: Method,
        path: &'static str,
        spec: &'static str,
        handler: Handler,
    ) -> Self {
        Self {
            method,
            path,
            spec: Some(spec),
            style: Style::Processor,
            doc: None,
            handler,
        }
    }

    /// A cofre operation (problem+json errors) documented by `doc`.
    pub fn own(method: Method, path: &'static str, doc: fn() -> Value, handler: Handler) -> Self {
        Self {
            method,
            path,
            spec: None,
            style: Style::Problem,
            doc: Some(doc),
            handler,
        }
    }
}

/// Everything a handler gets.
pub struct Ctx {
    /// The application.
    pub app: Arc<App>,
    /// The calling client (`X-ClientID`): the actor in history rows.
    pub client_id: String,
    /// The client's tenant.
    pub tenant: String,
    /// The parsed JSON body (`Null` when empty).
    pub body: Value,
    /// Path parameters by name.
    pub params: HashMap<String, String>,
    /// Query parameters (first value of each name).
    pub query: HashMap<String, String>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx(client {})", self.client_id)
    }
}

impl Ctx {
    /// A path parameter (missing is a bug in the route table: answered 500).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::internal(format!("route has no parameter {name}")))
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body field at a JSON pointer.
    pub fn at(&self, pointer: &str) -> &Value {
        self.body.pointer(pointer).unwrap_or(&Value::Null)
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply {
    /// Status (200, 201, 202).
    pub status: StatusCode,
    /// JSON body.
    pub body: Value,
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Result<Self, ApiError> {
        Ok(Self {
            status: StatusCode::OK,
            body,
        })
    }

    /// 201 with a body.
    pub fn created(body: Value) -> Result<Self, ApiError> {
        Ok(Self {
            status: StatusCode::CREATED,
            body,
        })
    }
}

/// A refused call. Messages never carry a secret value (field names only).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`customer_not_found`, `schema_violation`, ...).
    pub code: &'static str,
    /// The field at fault (JSON pointer or name), if one.
    pub field: Option<String>,
    /// A short human message.
    pub message: String,
    /// The processor's error `type`: `APIM` (gateway checks: auth, limits, schema) or
    /// `HOST` (record rules, daemon answers).
    pub origin: &'static str,
}

impl ApiError {
    /// An error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let origin = if matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::BAD_REQUEST
                | StatusCode::CONFLICT
        ) {
            "APIM"
        } else {
            "HOST"
        };
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            origin,
        }
    }

    /// Names the field at fault.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: a well-formed request that breaks a rule.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 (the detail is logged, not sent).
    pub fn internal(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The body in a route's style, with its content type.
    pub fn render(&self, style: Style) -> (StatusCode, &'static str, String) {
        match style {
            Style::Processor => {
                let body = json!({
                    "hasError": true,
                    "errors": [{"code": self.code, "description": self.message}],
                    "error": {
                        "type": self.origin,
                        "code": self.code,
                        "field": self.field,
                        "message": self.message,
                    },
                });
                (self.status, "application/json", body.to_string())
            }
            Style::Problem => {
                let mut body = json!({
                    "type": format!("urn:cofre:problem:{}", self.code),
                    "title": self.status.canonical_reason().unwrap_or("Error"),
                    "status": self.status.as_u16(),
                    "detail": self.message,
                    "code": self.code,
                });
                if let Some(f) = &self.field {
                    body["field"] = json!(f);
                    body["invalid-params"] = json!([{"name": f, "reason": self.message}]);
                }
                (self.status, "application/problem+json", body.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::unprocessable(
                match what {
                    "customer" => "customer_not_found",
                    "account" => "account_not_found",
                    "card" => "card_not_found",
                    _ => "not_found",
                },
                format!("{what} not found"),
            ),
            StoreError::Conflict(_) => {
                ApiError::unprocessable("duplicate", "a record with this key already exists")
            }
            StoreError::Rule(r) => ApiError::unprocessable("rule_violation", r),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Status { status, message } => match status {
                Status::StoreUnavailable | Status::Overloaded | Status::BruteForceGuard => {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "hsm_unavailable",
                        format!("the HSM cannot serve this now ({})", status.name()),
                    )
                }
                _ => ApiError::internal(format!("hsm answered {}: {message}", status.name())),
            },
            ClientError::Connection(_) | ClientError::Timeout(_) | ClientError::Tls(_) => {
                tracing::error!(error = %e, "hsm unreachable");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "hsm_unavailable",
                    "the HSM could not be reached",
                )
            }
            other => ApiError::internal(format!("hsm call: {other}")),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match &e {
            AuthError::Header(_) => "missing_header",
            AuthError::Credentials => "invalid_credentials",
            AuthError::Token => "invalid_token",
            AuthError::Stale => "stale_timestamp",
            AuthError::Signature => "invalid_signature",
            AuthError::Store(_) => "credential_store",
        };
        let mut err = ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string());
        if let AuthError::Header(h) = e {
            err = err.field(h);
        }
        err
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn error_response(e: &ApiError, style: Style) -> Response {
    let (status, ct, body) = e.render(style);
    respond(status, ct, body)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
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
    let key = match header_str(&headers, "idempotency-key") {
        Some(k) if !k.is_empty() && k.len() <= 255 => format!("k:{k}"),
        Some(_) => {
            return error_response(
                &ApiError::bad_request("missing_header", "Idempotency-Key: 1-255 characters")
                    .field("Idempotency-Key"),
                style,
            );
        }
        None => format!("r:{request_id}"),
    };
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
    h.update(query.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(&bytes);
    let hash = hex::encode(h.finalize());
    match app.store.idempotency_claim(&client_id, &key, &hash).await {
        Ok(Claim::Fresh) => {}
        // A read is answered afresh: replaying a stored copy of, say, an embosser file
        // would only duplicate data; the id is still bound to this exact request.
        Ok(Claim::Replay { .. }) if route.method == Method::GET => {}
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
            return r;
        }
        Ok(Claim::Mismatch) => {
            return error_response(
                &ApiError::conflict(
                    "request_id_reused",
                    "this request id was already used for another request",
                ),
                style,
            );
        }
        Ok(Claim::InProgress) => {
            return error_response(
                &ApiError::conflict(
                    "request_in_progress",
                    "the first request with this id is still running",
                ),
                style,
            );
        }
        Err(e) => return error_response(&ApiError::from(e), style),
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
    if status.is_server_error() {
        if let Err(e) = app.store.idempotency_release(&client_id, &key).await {
            tracing::error!(error = %e, "idempotency release failed");
        }
    } else if let Err(e) = app
        .store
        .idempotency_finish(
            &client_id,
            &key,
            status.as_u16(),
            if route.method == Method::GET {
                ""
            } else {
                &text
            },
        )
        .await
    {
        tracing::error!(error = %e, "idempotency record failed");
    }
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
