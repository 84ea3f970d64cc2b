//! [`dispatch`]: one call through the steps in the module documentation, in order, and
//! the answer written in the route's shape.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use axum::extract::{Extension, RawPathParams, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sqlx::AnyConnection;

use super::idempotency::{self, InFlight, SharedMark};
use super::listener::Peer;
use super::{ApiError, Ctx, Handler, Route, Style, now_ms};
use crate::api::auth::{Authenticator, CallHeaders};
use crate::api::call::ctx::{ClaimSlot, answer_of, outcome_of};
use crate::api::mass::lease::instance_id;
use crate::api::state::App;
use crate::api::store::{Answer, Begun, Claim, Committed, Recorded};

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

/// `409 request_in_progress`: a call with this id runs (here, or on another instance).
fn in_progress(style: Style) -> Response {
    error_response(
        &ApiError::conflict(
            "request_in_progress",
            "the first request with this id is still running",
        ),
        style,
    )
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

/// A body that could not be read whole.
pub(super) enum BodyRefused {
    /// Past `max_body`.
    TooLarge(usize),
    /// Not complete within the body timeout.
    TimedOut,
}

impl BodyRefused {
    /// The answer: `413`, or `408` with the connection closed (a client that trickles
    /// its body does not get to keep the socket).
    pub(super) fn into_response(self, style: Style) -> Response {
        match self {
            BodyRefused::TooLarge(max) => error_response(
                &ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body exceeds {max} bytes"),
                ),
                style,
            ),
            BodyRefused::TimedOut => {
                let mut r = error_response(
                    &ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "body_timeout",
                        "the body did not arrive in time",
                    ),
                    style,
                );
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        }
    }
}

/// Reads a body whole: at most `max_body` bytes, within `limits.body_timeout`.
pub(super) async fn read_body(app: &App, body: Body) -> Result<axum::body::Bytes, BodyRefused> {
    let max = app.config.max_body;
    match tokio::time::timeout(
        app.config.limits.body_timeout,
        axum::body::to_bytes(body, max),
    )
    .await
    {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(BodyRefused::TooLarge(max)),
        Err(_) => Err(BodyRefused::TimedOut),
    }
}

/// What failed authentication counts against: the source address, and the api key named
/// when it is a registered client's. An unknown api key is not counted: no guess under it
/// can succeed, and counting it would let a peer fill the throttle's bounded table with
/// made-up keys (each as long as a header may be) until a real client's key went
/// untracked.
pub(super) fn throttle_keys(
    peer: Option<&Peer>,
    api_key: Option<&str>,
    auth: &Authenticator,
) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(p) = peer {
        keys.push(format!("ip:{}", p.addr.ip()));
    }
    if let Some(k) = api_key.filter(|k| auth.is_registered(k)) {
        keys.push(format!("key:{k}"));
    }
    keys
}

/// `429` with `Retry-After` (seconds).
pub(super) fn too_many(retry_after_s: u64, style: Style) -> Response {
    let mut r = error_response(
        &ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            "too many failed authentications from this client; retry later",
        ),
        style,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/<x>+json`,
/// parameters (`charset`) allowed, any letter case.
pub(super) fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json") && sub.len() > 5)
}

/// Runs one call of `route` (see the module documentation for the steps); an error
/// answer at a processor path carries the processor's code where it documents one
/// (`processor_codes.rs`).
pub async fn dispatch(
    route: Arc<Route>,
    state: State<Arc<App>>,
    params: RawPathParams,
    query: RawQuery,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = run(
        Arc::clone(&route),
        state,
        params,
        query,
        peer,
        headers,
        body,
    )
    .await;
    super::processor_codes::map_response(&route, response).await
}

async fn run(
    route: Arc<Route>,
    State(app): State<Arc<App>>,
    params: RawPathParams,
    RawQuery(query): RawQuery,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let style = route.style;
    let peer = peer.map(|Extension(p)| p);
    let bytes = match read_body(&app, body).await {
        Ok(b) => b,
        Err(refused) => return refused.into_response(style),
    };
    let api_key = header_str(&headers, "apikey");
    let throttle_keys = throttle_keys(peer.as_ref(), api_key, &app.auth);
    let keys: Vec<&str> = throttle_keys.iter().map(String::as_str).collect();
    let now = now_ms();
    if let Some(wait) = app.throttle.retry_after(&keys, now) {
        return too_many(wait, style);
    }
    let call = CallHeaders {
        api_key,
        client_id: header_str(&headers, "x-clientid"),
        authorization: header_str(&headers, "authorization"),
        timestamp: header_str(&headers, "timestamp"),
        request_id: header_str(&headers, "x-client-request-id"),
        signature: header_str(&headers, "signature"),
        peer_identity: peer.as_ref().and_then(|p| p.identity.as_deref()),
    };
    let (client_id, request_id) = match app.auth.check(&call, &bytes, now) {
        Ok((c, r)) => (c.to_owned(), r.to_owned()),
        Err(e) => {
            if e.is_guess() {
                app.throttle.failure(&keys, now);
            }
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
    let (key, alias) = match idempotency::keys(&headers, &request_id) {
        Ok(k) => k,
        Err(e) => return error_response(&e, style),
    };
    let fingerprint = idempotency::fingerprint(&route, &params, query.as_deref(), &bytes);
    let running_keys: Vec<&str> = std::iter::once(key.as_str())
        .chain(alias.as_deref())
        .collect();
    let Some(_running) = IN_FLIGHT.enter(&client_id, &running_keys) else {
        return in_progress(style);
    };
    let is_read = route.method == Method::GET;
    let claim = Claim {
        client_id: client_id.clone(),
        key,
        alias,
        fingerprint,
        keep_body: !is_read,
    };
    let mark = if is_read {
        match app.store.claim_lookup(app.seal.as_ref(), &claim).await {
            // A read is answered afresh; the id stays bound to this exact request.
            Ok(Recorded::Nothing | Recorded::Same(_)) => None,
            Ok(Recorded::Other) => return reused(style),
            Err(e) => return error_response(&ApiError::from(e), style),
        }
    } else {
        let begun = app
            .store
            .claim_begin(
                app.seal.as_ref(),
                &claim,
                instance_id(),
                app.config.call_lease,
            )
            .await;
        match begun {
            Ok(Begun::Run) => Some(SharedMark::new(Arc::clone(&app), claim.clone())),
            Ok(Begun::Recorded(Recorded::Same(answer))) => {
                return answer_response(answer, style, true);
            }
            Ok(Begun::Recorded(_)) => return reused(style),
            Ok(Begun::InProgress) => return in_progress(style),
            Err(e) => return error_response(&ApiError::from(e), style),
        }
    };
    if !bytes.is_empty() && !is_json(header_str(&headers, "content-type")) {
        return error_response(
            &ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/json",
            )
            .field("Content-Type"),
            style,
        );
    }
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
            if let Some(v) = app.spec.amount_violations(schema, &body).into_iter().next() {
                return error_response(
                    &ApiError::unprocessable("invalid_amount", v.to_string()).field(v.pointer),
                    style,
                );
            }
        }
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
    // The markers stay to their lease once an answer is recorded; a server error (not
    // recorded) or a failed commit gives them back when `mark` drops.
    let recorded = match &committed {
        Ok(Committed::Answer(answer)) => answer.status < 500,
        Ok(Committed::Replay(_) | Committed::Mismatch) => true,
        Err(_) => false,
    };
    if recorded && let Some(mark) = mark {
        mark.answered();
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::auth::ApiClient;

    #[test]
    fn only_a_registered_api_key_is_counted() {
        let auth = Authenticator::new(
            vec![ApiClient::new(
                "client",
                "known-key",
                zeroize::Zeroizing::new(b"secret".to_vec()),
            )],
            crate::api::bearer::BearerKey::derive(&[7u8; 32]),
        );
        let peer = Peer {
            addr: "192.0.2.7:4000".parse().unwrap(),
            identity: None,
        };
        assert_eq!(
            throttle_keys(Some(&peer), Some("known-key"), &auth),
            ["ip:192.0.2.7", "key:known-key"]
        );
        assert_eq!(
            throttle_keys(Some(&peer), Some("made-up-key"), &auth),
            ["ip:192.0.2.7"]
        );
        assert!(throttle_keys(None, Some(&"x".repeat(8000)), &auth).is_empty());
    }
}
