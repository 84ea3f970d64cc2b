//! Step 4 of a call: the idempotency key, what makes two calls the same request, the
//! calls in progress in this process, and the answer recorded before.
//!
//! A call in progress is known only to this process ([`InFlight`]): nothing pending is
//! ever written to the database, so a crash leaves no claim behind and a retry after a
//! restart is never `request_in_progress`. Two facades on one database may both start
//! the same key; the writer records the first commit and undoes the second's effects,
//! which then answers the first's answer (see [`crate::api::store::writer`]).

use std::collections::HashSet;
use std::sync::Mutex;

use axum::extract::RawPathParams;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::pipeline::header_str;
use super::{ApiError, Route};

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

/// The (client, key) pairs of the calls running in this process.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<(String, String)>>);

impl InFlight {
    /// Marks a call running; `None` if one with the same key already runs. The mark is
    /// removed when the guard drops (answered, failed or cancelled by a closed socket).
    pub fn enter<'a>(&'a self, client_id: &str, key: &str) -> Option<InFlightGuard<'a>> {
        let entry = (client_id.to_owned(), key.to_owned());
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.insert(entry.clone()) {
            return None;
        }
        Some(InFlightGuard { set: self, entry })
    }
}

/// A running call's mark.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    set: &'a InFlight,
    entry: (String, String),
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut set = self
            .set
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.remove(&self.entry);
    }
}
