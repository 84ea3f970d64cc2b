//! Requests bound to what was signed, over HTTP against real `cofre hsm` and `cofre api`
//! processes on SQLite and PostgreSQL. A signed call is captured (its exact headers and
//! body) and sent again every way an attacker would:
//! * a `POST /cards/embosser` with three new `Idempotency-Key` values: one card, the
//!   first answer replayed each time;
//! * the same request id on another method, another path, the same path with a query
//!   string: `409 request_id_reused`, for a body-less `GET` too;
//! * all of it again after the facade restarted (the binding lasts the retention, not
//!   the process);
//! * a legitimate retry under a new request id and the same `Idempotency-Key` replays;
//!   the same key on another body is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::flow::{customer_and_account, embosser_body};
use api::{Api, CLIENT_1, Db, Resp, System, raw_http, request_id};
use serde_json::json;

/// A signed request, captured whole: method, path, headers and body.
struct Captured {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn new(c: &Api, method: &'static str, path: &str, body: &[u8]) -> Self {
        let now = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        Self {
            method,
            path: path.to_owned(),
            headers: c.headers(&request_id(), now, body),
            body: body.to_vec(),
        }
    }

    /// Sent as captured, to `addr`, with `extra` headers, another method or path.
    fn send(&self, addr: &str, method: &str, path: &str, extra: &[(&'static str, String)]) -> Resp {
        let mut headers = self.headers.clone();
        headers.extend(extra.iter().cloned());
        raw_http(addr, method, path, &headers, &self.body)
    }

    fn replay(&self, addr: &str) -> Resp {
        self.send(addr, self.method, &self.path, &[])
    }
}

/// Every request the daemon has answered (the sum of `cofre_requests_total`).
fn hsm_requests(sys: &System) -> f64 {
    let total: f64 = sys
        .hsm
        .metrics_text()
        .lines()
        .filter(|l| l.starts_with("cofre_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(total > 0.0, "the daemon's request counter is read");
    total
}

fn cards_of_account(sys: &System, account: &str) -> i64 {
    let id: i64 = account.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cards WHERE account_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    })
}

fn reused(r: &Resp) {
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "request_id_reused"),
        "{}",
        r.text
    );
}

fn replays(db: Db) {
    let Some(mut sys) = System::start("api-replay", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let (customer, account) = customer_and_account(&c, "31415926535");
    let body = embosser_body(&customer, &account).to_string().into_bytes();
    let post = Captured::new(&c, "POST", "/cards/embosser", &body);
    let first = post.send(
        &sys.addr,
        "POST",
        "/cards/embosser",
        &[("Idempotency-Key", "k-1".into())],
    );
    first.expect(200);
    assert_eq!(first.header("idempotent-replayed"), None);
    // Three new Idempotency-Key values on the captured request: the first answer, no card.
    for key in ["k-2", "k-3", "k-4"] {
        let again = post.send(
            &sys.addr,
            "POST",
            "/cards/embosser",
            &[("Idempotency-Key", key.into())],
        );
        again.expect(200);
        assert_eq!(again.json, first.json);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(post.replay(&sys.addr).json, first.json);
    assert_eq!(cards_of_account(&sys, &account), 1, "a replay made a card");
    // Another method, another path, a query string: refused.
    reused(&post.send(&sys.addr, "PUT", "/cards/embosser/cardAction-L8V2", &[]));
    reused(&post.send(&sys.addr, "POST", "/cards/embosser/l8vf", &[]));
    reused(&post.send(
        &sys.addr,
        "POST",
        "/cards/embosser?organizationNumber=800",
        &[],
    ));
    // A body-less GET, re-sent elsewhere.
    let get = Captured::new(&c, "GET", "/cofre/v1/mass-issues/12345", b"");
    let r = get.replay(&sys.addr);
    assert_eq!((r.status, r.code().as_str()), (404, "mass_issue_not_found"));
    // The same GET again is the same request (answered afresh, never refused).
    assert_eq!(get.replay(&sys.addr).status, 404);
    reused(&get.send(&sys.addr, "GET", "/cofre/v1/mass-issues/12346", &[]));
    reused(&get.send(&sys.addr, "GET", "/cofre/v1/mass-issues/12345?page=2", &[]));
    reused(&get.send(
        &sys.addr,
        "GET",
        "/cards/mass-card-issue-L8V3?organizationNumber=800&logo=1&serviceType=1",
        &[],
    ));
    // A legitimate retry: a new request id and the same key replays the first answer,
    // from the store, before the call runs: the daemon sees no request for it (the
    // embosser call makes several). The same key on another request is refused.
    let key = ("Idempotency-Key", "k-1".to_owned());
    let daemon_requests = hsm_requests(&sys);
    let retry = c.call_with(
        "POST",
        "/cards/embosser",
        &embosser_body(&customer, &account),
        &request_id(),
        std::slice::from_ref(&key),
    );
    retry.expect(200);
    assert_eq!(retry.json, first.json);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        hsm_requests(&sys),
        daemon_requests,
        "the replay reached the daemon"
    );
    let mut other = embosser_body(&customer, &account);
    other["embossedName1"] = json!("OUTRO NOME");
    reused(&c.call_with("POST", "/cards/embosser", &other, &request_id(), &[key]));
    assert_eq!(cards_of_account(&sys, &account), 1);
    // After a restart the bindings hold (the timestamp is still in its window). Bearer
    // tokens die with the process and the signature does not cover them: the captured
    // requests go again under a fresh token.
    sys.kill_api();
    sys.restart_api();
    let fresh = sys.client(CLIENT_1);
    let bearer = ("Authorization", format!("Bearer {}", fresh.token));
    let (mut post, mut get) = (post, get);
    for captured in [&mut post, &mut get] {
        captured.headers.retain(|(k, _)| *k != "Authorization");
        captured.headers.push(bearer.clone());
    }
    let again = post.send(
        &sys.addr,
        "POST",
        "/cards/embosser",
        &[("Idempotency-Key", "k-9".into())],
    );
    again.expect(200);
    assert_eq!(again.json, first.json);
    reused(&post.send(&sys.addr, "POST", "/cards/embosser/l8vf", &[]));
    reused(&get.send(&sys.addr, "GET", "/cofre/v1/mass-issues/12347", &[]));
    assert_eq!(cards_of_account(&sys, &account), 1);
}

#[test]
fn replays_sqlite() {
    replays(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn replays_postgres() {
    replays(Db::Postgres);
}
