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

mod error;
mod idempotency;
mod pipeline;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::server::App;
pub use error::ApiError;
pub use pipeline::dispatch;

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

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
