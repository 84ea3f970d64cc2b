//! Step 4 of a call: the idempotency key, what makes two calls the same request, the
//! calls in progress in this process, and the answer recorded before.
//!
//! A call in progress is known to this process ([`InFlight`]) and, on PostgreSQL, to
//! every facade on the database: a call that may change something marks its keys there
//! before it runs, under a lease ([`SharedMark`], [`crate::api::store::Begun`]), so a
//! copy sent to another instance at the same time is `409 request_in_progress` instead
//! of a second daemon call. Nothing pending is written to the idempotency table: a
//! crash leaves at most a marker, which ends with its lease (`call_lease`). Should two
//! copies still both run (a lease overrun), the writer records the first commit and
//! undoes the second's effects, which then answers the first's answer (see
//! [`crate::api::store::writer`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::RawPathParams;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::pipeline::header_str;
use super::{ApiError, Route};
use crate::api::mass::lease::instance_id;
use crate::api::state::App;
use crate::api::store::Claim;

/// The call's keys: its request id (`X-Client-Request-Id`, which the signature
/// covers) always, and `Idempotency-Key` (1-255 characters) as an alias when sent.
///
/// The rule: a request id, once used by a client, stays bound to the request it
/// named (method, path, parameters, query and body) for the whole retention: the same
/// id with the same request replays the first answer, with another request is
/// `409 request_id_reused`, whatever `Idempotency-Key` comes with it. The header can
/// only narrow what runs, never widen it: a retry under a new request id and the same
/// key finds the first answer, but a captured signed request sent again with a new key
/// still finds its own request id's answer and runs nothing.
pub(super) fn keys(
    headers: &HeaderMap,
    request_id: &str,
) -> Result<(String, Option<String>), ApiError> {
    let alias = match header_str(headers, "idempotency-key") {
        Some(k) if !k.is_empty() && k.len() <= 255 => Some(format!("k:{k}")),
        Some(_) => {
            return Err(ApiError::bad_request(
                "missing_header",
                "Idempotency-Key: 1-255 characters",
            )
            .field("Idempotency-Key"));
        }
        None if headers.contains_key("idempotency-key") => {
            return Err(ApiError::bad_request(
                "missing_header",
                "Idempotency-Key: 1-255 visible characters",
            )
            .field("Idempotency-Key"));
        }
        None => None,
    };
    Ok((format!("r:{request_id}"), alias))
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
    /// Marks a call running under each of its keys; `None` if one with any of them
    /// already runs. The marks are removed when the guard drops (answered, failed or
    /// cancelled by a closed socket).
    pub fn enter<'a>(&'a self, client_id: &str, keys: &[&str]) -> Option<InFlightGuard<'a>> {
        let entries: Vec<(String, String)> = keys
            .iter()
            .map(|k| (client_id.to_owned(), (*k).to_owned()))
            .collect();
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.iter().any(|e| set.contains(e)) {
            return None;
        }
        set.extend(entries.iter().cloned());
        Some(InFlightGuard { set: self, entries })
    }
}

/// A running call's mark.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    set: &'a InFlight,
    entries: Vec<(String, String)>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut set = self
            .set
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in &self.entries {
            set.remove(e);
        }
    }
}

/// The markers a running call holds in the database (PostgreSQL: see
/// [`crate::api::store::Begun`]). Given back when dropped, unless the call's answer was
/// recorded ([`SharedMark::answered`]): a call that failed, was refused before the
/// daemon, or was cancelled by a closed socket leaves nothing that would turn a retry
/// away; a recorded one leaves its marker to its lease (see the store's module).
pub struct SharedMark {
    app: Arc<App>,
    claim: Option<Claim>,
}

impl SharedMark {
    /// Holds `claim`'s markers until answered or dropped.
    pub fn new(app: Arc<App>, claim: Claim) -> Self {
        Self {
            app,
            claim: Some(claim),
        }
    }

    /// The call's answer is recorded (or another instance's is): the markers stay until
    /// their lease ends.
    pub fn answered(mut self) {
        self.claim = None;
    }
}

impl Drop for SharedMark {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let app = Arc::clone(&self.app);
        runtime.spawn(async move {
            if let Err(e) = app.store.claim_end(&claim, instance_id()).await {
                // The marker then ends with its lease.
                tracing::warn!(error = %e, "a call's in-progress marker was not given back");
            }
        });
    }
}
