//! `cofre api`: opening the application state, the router built from the route table
//! ([`super::routes`]), `POST /token`, `GET /openapi.json`, and the listener with
//! graceful shutdown and systemd readiness.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on, post};
use serde_json::json;

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
    drop(facade_key);
    let tenants = clients
        .iter()
        .map(|(c, t)| {
            Tenant::new(t)
                .map(|t| (c.client_id.clone(), t))
                .map_err(|e| format!("client {}: {e}", c.client_id))
        })
        .collect::<Result<HashMap<_, _>, String>>()?;
    let auth = Authenticator::new(clients.into_iter().map(|(c, _)| c).collect());
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
    let app = Arc::new(App {
        config,
        store,
        hsm,
        auth,
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
        let handler = move |state, params, query, headers, body| {
            dispatch(Arc::clone(&r), state, params, query, headers, body)
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
    let max_body = app.config.max_body;
    router
        .route("/token", post(token).fallback(method_not_allowed))
        .route(
            "/openapi.json",
            get(openapi_json).fallback(method_not_allowed),
        )
        .fallback(not_found)
        // Bodies read by extractors (`/token`) get the same cap as `dispatch` applies.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
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

/// `POST /token`: HTTP Basic (api key : secret), `grant_type=client_credentials`.
async fn token(State(app): State<Arc<App>>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let grant_type = form
        .get("grant_type")
        .map(String::as_str)
        .unwrap_or("client_credentials");
    if grant_type != "client_credentials" {
        let (s, ct, b) = ApiError::bad_request(
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        )
        .field("grant_type")
        .render(Style::Processor);
        return (s, [(header::CONTENT_TYPE, ct)], b).into_response();
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match app
        .auth
        .issue_token(authorization, now_ms(), &mut rand::rng())
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
            let (s, ct, b) = ApiError::from(e).render(Style::Processor);
            (s, [(header::CONTENT_TYPE, ct)], b).into_response()
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

/// Serves until SIGTERM or SIGINT; readiness is sent once the listener is bound.
pub async fn serve(app: Arc<App>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(app.config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", app.config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%addr, "cofre api listening");
    println!("api listening on http://{addr}");
    crate::notify::notify("READY=1");
    let purger = tokio::spawn(purge_idempotency(Arc::clone(&app))).abort_handle();
    let app_store = app.store.clone();
    let router = router(app);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async {
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
        })
        .await
        .map_err(|e| e.to_string());
    purger.abort();
    app_store.close().await;
    served
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
