//! What an operation is and gets, shared by every feature and the HTTP edge: the route
//! table entry ([`Route`]), the call context ([`Ctx`]), the answer ([`Reply`]) and the
//! refusal ([`ApiError`], in `api::error`).
//!
//! An operation is one of two kinds ([`Handler`]):
//! * [`Handler::Staged`]: it reads (read pool), asks the daemon, and then hands its
//!   changes to the writer with [`Ctx::commit`], which runs them in the writer's group
//!   transaction together with the call's idempotency claim and answer. A staged
//!   operation that changes nothing has only its claim and answer recorded. The hot
//!   paths (issue, PAN lookup, PIN validation) are staged: their daemon calls run
//!   outside the transaction.
//! * [`Handler::InTransaction`]: the whole operation runs inside the writer's
//!   transaction (its reads see its own writes; its daemon calls hold the writer). For
//!   operations whose effects interleave with their reads and daemon calls.

pub(crate) mod ctx;

use std::future::Future;
use std::pin::Pin;

use axum::http::Method;
use serde_json::Value;
use sqlx::AnyConnection;

pub use crate::api::error::{ApiError, Style};
pub use ctx::{Ctx, Reader};

use crate::api::store::BoxFuture;

/// What a staged handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;

/// An operation.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// Reads and daemon calls outside the transaction, changes through [`Ctx::commit`].
    Staged(fn(Ctx) -> HandlerFuture),
    /// The whole operation inside the writer's transaction.
    InTransaction(for<'c> fn(Ctx, &'c mut AnyConnection) -> BoxFuture<'c, Result<Reply, ApiError>>),
}

/// Makes a [`Handler::Staged`] of an `async fn(Ctx) -> Result<Reply, ApiError>`.
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn h(ctx: $crate::api::call::Ctx) -> $crate::api::call::HandlerFuture {
            Box::pin($f(ctx))
        }
        $crate::api::call::Handler::Staged(h)
    }};
}

/// Makes a [`Handler::InTransaction`] of an
/// `async fn(Ctx, &mut AnyConnection) -> Result<Reply, ApiError>`.
#[macro_export]
macro_rules! handler_tx {
    ($f:path) => {{
        fn h<'c>(
            ctx: $crate::api::call::Ctx,
            db: &'c mut sqlx::AnyConnection,
        ) -> $crate::api::store::BoxFuture<
            'c,
            Result<$crate::api::call::Reply, $crate::api::call::ApiError>,
        > {
            Box::pin($f(ctx, db))
        }
        $crate::api::call::Handler::InTransaction(h)
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

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status (200, 201, 202).
    pub status: axum::http::StatusCode,
    /// JSON body.
    pub body: Value,
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Result<Self, ApiError> {
        Ok(Self {
            status: axum::http::StatusCode::OK,
            body,
        })
    }

    /// 201 with a body.
    pub fn created(body: Value) -> Result<Self, ApiError> {
        Ok(Self {
            status: axum::http::StatusCode::CREATED,
            body,
        })
    }
}
