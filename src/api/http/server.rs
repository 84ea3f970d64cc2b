//! `cofre api`: opening the application state, the router built from the route table
//! ([`super::routes`]), `POST /token`, `GET /openapi.json`, and the listener with
//! graceful shutdown and systemd readiness.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on, post};
use serde_json::json;

use super::listener::Peer;
use super::pipeline::{error_response, read_body, throttle_keys, too_many};
use super::{ApiError, FacadeSeal, Route, Style, dispatch, now_ms};
use crate::api::auth::Authenticator;
use crate::api::config::ApiConfig;
use crate::api::domain::Tenant;
use crate::api::openapi::Spec;
use crate::api::state::App;
use crate::api::store::{AnswerSeal, Store};
use crate::client::Client;

/// Opens everything the facade needs: the facade key and clients, the database
/// (migrated), and the daemon connection (retried for up to `hsm_wait`, so that
/// `cofre up` can start both at once).
pub async fn open(config: ApiConfig, hsm_wait: Duration) -> Result<Arc<App>, String> {
    let facade_key = crate::api::clients::load_facade_key(config.facade_key.as_deref())?;
    let clients = crate::api::clients::load_clients(&config.clients, &facade_key)?;
    let seal: Arc<dyn AnswerSeal> = Arc::new(FacadeSeal::new(&facade_key));
    let code_key = crate::api::state::CodeKey::derive(facade_key.expose_secret());
    let bearer = crate::api::bearer::BearerKey::derive(facade_key.expose_secret());
    drop(facade_key);
    let tenants = clients
        .iter()
        .map(|(c, t)| {
            Tenant::new(t)
                .map(|t| (c.client_id.clone(), t))
                .map_err(|e| format!("client {}: {e}", c.client_id))
        })
        .collect::<Result<HashMap<_, _>, String>>()?;
    let auth = Authenticator::new(clients.into_iter().map(|(c, _)| c).collect(), bearer);
    let store = Store::open(&config.database, Arc::clone(&seal))
        .await
        .map_err(|e| format!("database: {e}"))?;
    let deadline = tokio::time::Instant::now() + hsm_wait;
    let hsm = loop {
        match Client::connect(config.hsm.clone()).await {
            Ok(c) => break c,
            Err(crate::client::ClientError::Connection(e))
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::info!(error = %e, "waiting for the HSM");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("hsm: {e}")),
        }
    };
    let throttle = crate::api::throttle::Throttle::new(
        config.limits.auth_failures,
        config.limits.auth_failure_window,
    );
    let app = Arc::new(App {
        config,
        store,
        hsm,
        auth,
        throttle,
        tenants,
        spec: Spec::firstvision(),
        seal,
        code_key,
    });
    crate::api::mass::recover(&app).await?;
    crate::api::portadores::sms::start_worker(&app)?;
    Ok(app)
}

fn filter(m: &axum::http::Method) -> MethodFilter {
    match m.as_str() {
        "GET" => MethodFilter::GET,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::POST,
    }
}

/// The router: every route of the table, `/token`, `/openapi.json`, and a 404/405 in the
/// processor's error shape for anything else.
pub fn router(app: Arc<App>) -> Router {
    let mut by_path: HashMap<&'static str, axum::routing::MethodRouter<Arc<App>>> = HashMap::new();
    for route in super::routes::all() {
        let route = Arc::new(route);
        let path = route.path;
        let method = filter(&route.method);
        let r = Arc::clone(&route);
        let handler = move |state, params, query, peer, headers, body| {
            dispatch(Arc::clone(&r), state, params, query, peer, headers, body)
        };
        let entry = by_path.remove(path);
        let mr = match entry {
            Some(existing) => existing.on(method, handler),
            None => on(method, handler),
        };
        by_path.insert(path, mr);
    }
    let mut router = Router::new();
    for (path, mr) in by_path {
        router = router.route(path, mr.fallback(method_not_allowed));
    }
    router
        .route("/token", post(token).fallback(method_not_allowed))
        .route(
            "/openapi.json",
            get(openapi_json).fallback(method_not_allowed),
        )
        .fallback(not_found)
        .with_state(app)
}

/// The error shape of a path no route answers: the cardholder API's tree answers in its
/// own shape (problem+json in Portuguese), everything else in the processor's.
fn unrouted_style(uri: &axum::http::Uri) -> Style {
    if crate::api::portadores::owns_path(uri.path()) {
        Style::ProblemPt
    } else {
        Style::Processor
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    let (s, ct, b) = ApiError::not_found("no_such_path", "no operation at this path")
        .render(unrouted_style(&uri));
    (s, [(header::CONTENT_TYPE, ct)], b).into_response()
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    let (s, ct, b) = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take this method",
    )
    .render(unrouted_style(&uri));
    (s, [(header::CONTENT_TYPE, ct)], b).into_response()
}

/// `POST /token`: HTTP Basic (api key : secret, the scheme in any letter case) and a
/// form body with `grant_type=client_credentials` (required). Failures count against
/// the source address and the api key ([`crate::api::throttle`]).
async fn token(
    State(app): State<Arc<App>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let style = Style::Processor;
    let refuse = |e: ApiError| error_response(&e, style);
    let peer = peer.map(|Extension(p)| p);
    let bytes = match read_body(&app, body).await {
        Ok(b) => b,
        Err(refused) => return refused.into_response(style),
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let api_key = Authenticator::basic_api_key(authorization);
    let keys = throttle_keys(peer.as_ref(), api_key.as_deref(), &app.auth);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let now = now_ms();
    if let Some(wait) = app.throttle.retry_after(&keys, now) {
        return too_many(wait, style);
    }
    // The body is a form; a request that names another type is refused (one that names
    // none is read as a form, as OAuth clients send it).
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
        .is_none_or(|ct| {
            ct.split(';').next().is_some_and(|e| {
                e.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_type {
        return refuse(
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be application/x-www-form-urlencoded",
            )
            .field("Content-Type"),
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes) else {
        return refuse(ApiError::bad_request(
            "invalid_request",
            "the body is not a form",
        ));
    };
    match form
        .iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.as_str())
    {
        Some("client_credentials") => {}
        Some(_) => {
            return refuse(
                ApiError::bad_request(
                    "unsupported_grant_type",
                    "grant_type must be client_credentials",
                )
                .field("grant_type"),
            );
        }
        None => {
            return refuse(
                ApiError::bad_request("invalid_request", "grant_type is required")
                    .field("grant_type"),
            );
        }
    }
    let identity = peer.as_ref().and_then(|p| p.identity.as_deref());
    match app
        .auth
        .issue_token(authorization, identity, now, &mut rand::rng())
    {
        Ok(grant) => {
            let body = json!({
                "access_token": grant.access_token,
                "token_type": "Bearer",
                "expires_in": grant.expires_in,
            });
            let mut r = (StatusCode::OK, body.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            if e.is_guess() {
                app.throttle.failure(&keys, now);
            }
            refuse(ApiError::from(e))
        }
    }
}

async fn openapi_json() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        super::doc::openapi_text(),
    )
        .into_response()
}

/// Deletes idempotency answers past the retention now, then every quarter of the
/// retention, at most hourly. A failure is logged and retried at the next round: the
/// table only grows meanwhile.
async fn purge_idempotency(app: Arc<App>) {
    let retention = app.config.idempotency_retention;
    let every = (retention / 4).clamp(Duration::from_secs(60), Duration::from_secs(3600));
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    loop {
        let now = crate::api::store::now_ms();
        let purged = app
            .store
            .purge_idempotency(now.saturating_sub(ms(retention)))
            .await;
        match purged {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "idempotency records past their retention purged"),
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed; retried later"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Deletes the in-progress markers whose lease ended (PostgreSQL), every lease (no
/// more often than every 10 s): a crashed instance's markers, and those of recorded calls, which
/// stay to their lease (`store::in_progress`). Any instance may delete any ended one.
async fn purge_calls_in_progress(app: Arc<App>) {
    if app.store.dialect() == crate::api::store::Dialect::Sqlite {
        return;
    }
    let every = app.config.call_lease.max(Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = app.store.purge_calls_in_progress().await {
            tracing::warn!(error = %e, "purge of ended in-progress markers failed; retried later");
        }
    }
}

/// The facade's TLS acceptor (`None`: plain HTTP on loopback, by configuration), built
/// before any port is bound so that a bad certificate stops the start (exit 64).
pub fn tls(app: &App) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    app.config
        .tls
        .as_ref()
        .map(super::listener::tls_acceptor)
        .transpose()
}

/// Serves until SIGTERM or SIGINT; readiness is sent once the listener is bound.
pub async fn serve(app: Arc<App>, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(app.config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", app.config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "cofre api listening");
    println!("api listening on {scheme}://{addr}");
    crate::notify::notify("READY=1");
    let purger = tokio::spawn(purge_idempotency(Arc::clone(&app))).abort_handle();
    let marker_purger = tokio::spawn(purge_calls_in_progress(Arc::clone(&app))).abort_handle();
    let app_store = app.store.clone();
    let limits = app.config.limits;
    let router = router(app);
    let stop = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        crate::notify::notify("STOPPING=1");
        tracing::info!("cofre api stopping");
    };
    super::listener::serve(listener, router, tls, limits, stop, Duration::from_secs(10)).await;
    purger.abort();
    marker_purger.abort();
    app_store.close().await;
    Ok(())
}

/// Route paths that are registered twice (same method and path) are a build defect;
/// tests call this.
pub fn duplicate_routes(routes: &[Route]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    routes
        .iter()
        .filter(|r| !seen.insert((r.method.clone(), r.path)))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}
