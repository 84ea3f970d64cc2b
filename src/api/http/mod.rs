//! The HTTP edge: the router built from the route table ([`routes`]), `POST /token`,
//! `GET /openapi.json` ([`doc`]), and [`dispatch`], which runs one call through the same
//! steps in the same order:
//!
//! 1. read the body up to `max_body` (`413 body_too_large`);
//! 2. authenticate (`401`, see [`crate::api::auth`]);
//! 3. parse the JSON (`400 invalid_json`) and validate it against the operation's
//!    schema in the processor's spec (`400 schema_violation`, naming the field);
//! 4. the idempotency key (`Idempotency-Key`, else `X-Client-Request-Id`): a call with
//!    the same key still running in this process is `409 request_in_progress`; a key
//!    recorded for the same method, path and body gets its first answer unchanged
//!    (a `GET` is answered afresh); recorded for another request, `409
//!    request_id_reused` (`idempotency.rs`);
//! 5. run the operation: its changes, its claim and its answer commit together in the
//!    writer's transaction (see [`crate::api::store::writer`]); 2xx and 4xx answers are
//!    recorded, 5xx are not (a retry runs again).
//!
//! Layer: the top of `api`; it imports every feature (for the route table), the call
//! layer, the state and the store. Nothing below imports it.
//!
//! Errors on the processor's paths are in the processor's shape (both the documented
//! `{"error": {type, code, field, message}}` and the spec's `DResponse`
//! `{"hasError", "errors": [{code, description}]}`, in one object); on cofre's own
//! paths they are RFC 9457 `application/problem+json`. Every error has a stable `code`.

pub mod doc;
mod idempotency;
mod pipeline;
pub mod routes;
mod seal;
pub mod server;

use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::api::call::{ApiError, Ctx, Handler, Reply, Route, Style};
pub use pipeline::dispatch;
pub use seal::FacadeSeal;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
