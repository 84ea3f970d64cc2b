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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;
    use axum::http::{HeaderValue, Method, Request};
    use tower_service::Service;

    use super::*;
    use crate::api::call::{Ctx, Handler, HandlerFuture, Style};

    fn with_key(value: Option<&[u8]>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert("idempotency-key", HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn refused(value: &[u8]) -> ApiError {
        keys(&with_key(Some(value)), "req-1").unwrap_err()
    }

    #[test]
    fn the_request_id_is_always_a_key_and_the_idempotency_key_an_alias() {
        assert_eq!(
            keys(&with_key(None), "req-1").unwrap(),
            ("r:req-1".to_owned(), None)
        );
        assert_eq!(
            keys(&with_key(Some(b"order-42")), "req-1").unwrap(),
            ("r:req-1".to_owned(), Some("k:order-42".to_owned()))
        );
        let longest = "k".repeat(255);
        assert_eq!(
            keys(&with_key(Some(longest.as_bytes())), "req-2").unwrap(),
            ("r:req-2".to_owned(), Some(format!("k:{longest}")))
        );
    }

    #[test]
    fn an_empty_overlong_or_invisible_idempotency_key_is_refused() {
        for value in [&b""[..], "k".repeat(256).as_bytes(), "chave-é".as_bytes()] {
            let e = refused(value);
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(e.code, "missing_header");
            assert_eq!(e.field.as_deref(), Some("Idempotency-Key"));
        }
        // The overlong and the invisible are told apart in the message.
        assert_eq!(refused(b"").message, "Idempotency-Key: 1-255 characters");
        assert_eq!(
            refused("chave-é".as_bytes()).message,
            "Idempotency-Key: 1-255 visible characters"
        );
    }

    fn unused(_: Ctx) -> HandlerFuture {
        Box::pin(async { Err(ApiError::internal("not called")) })
    }

    /// The fingerprint of a request to `uri` routed by `template`, computed with the
    /// path parameters axum extracts.
    async fn fingerprint_of(
        method: Method,
        template: &'static str,
        uri: &str,
        query: Option<&'static str>,
        body: &'static [u8],
    ) -> String {
        let route = Route {
            method: method.clone(),
            path: template,
            spec: None,
            style: Style::Problem,
            doc: None,
            handler: Handler::Staged(unused),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let mut router = axum::Router::new().route(
            template,
            axum::routing::any(move |params: RawPathParams| {
                let tx = tx.clone();
                let route = route.clone();
                async move {
                    tx.send(fingerprint(&route, &params, query, body)).unwrap();
                }
            }),
        );
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let answer = router.call(request).await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        rx.recv().unwrap()
    }

    /// SHA-256 of `method 0 template 0 (name = value 0)* query 0 body`; the expected
    /// values computed independently, with Python's `hashlib.sha256`.
    #[tokio::test]
    async fn the_fingerprint_covers_method_template_parameters_query_and_body() {
        let full = fingerprint_of(
            Method::POST,
            "/cards/{card_id}/x/{n}",
            "/cards/abc/x/7",
            Some("q=1&r=2"),
            br#"{"a":1}"#,
        )
        .await;
        assert_eq!(
            full,
            "57e4383110e32db06333d7ed47f252289e93e080209efff3f1750f0509a57223"
        );
        assert_eq!(
            fingerprint_of(Method::GET, "/health", "/health", None, b"").await,
            "1004b384b8a073f83e2511e20fc5a8c7eeac057ceaf4ede1128bec025379c8a0"
        );
    }

    #[test]
    fn a_key_runs_once_at_a_time_and_is_released_when_its_call_ends() {
        let in_flight = InFlight::default();
        let first = in_flight.enter("client-a", &["r:1", "k:order"]).unwrap();
        // The same request id, or the same alias under a new request id: refused.
        assert!(in_flight.enter("client-a", &["r:1"]).is_none());
        assert!(in_flight.enter("client-a", &["r:2", "k:order"]).is_none());
        // Another client's keys are its own.
        let other = in_flight.enter("client-b", &["r:1", "k:order"]).unwrap();
        // A refused entry marked nothing: r:2 alone is free.
        drop(in_flight.enter("client-a", &["r:2"]).unwrap());
        drop(first);
        // Both of the first call's keys are free again; the other client's are not.
        let again = in_flight.enter("client-a", &["r:1", "k:order"]).unwrap();
        assert!(in_flight.enter("client-b", &["k:order"]).is_none());
        drop(again);
        drop(other);
        assert!(in_flight.enter("client-b", &["r:1", "k:order"]).is_some());
    }
}
