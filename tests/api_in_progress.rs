//! The markers of calls in progress in the store (docs/scale-out.md, "Idempotency across
//! instances"), on PostgreSQL with two stores on one database (two facade instances): a
//! live marker turns a copy away; a copy that fails on one key gives back the others it
//! took; only the owner gives a marker back; a recorded answer is replayed over a live
//! marker; an ended lease is taken over; the purge deletes exactly the ended markers.
//! On SQLite (one instance) nothing is shared: the recorded answer alone decides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cofre::api::http::FacadeSeal;
use cofre::api::store::{Answer, Begun, Claim, Committed, OpOutcome, Recorded, Store};
use cofre::crypto::ClearKey;
use rand::RngExt;

const LEASE: Duration = Duration::from_secs(60);
/// A lease that has ended by the time the next statement runs.
const ENDED: Duration = Duration::from_millis(1);

fn seal() -> Arc<FacadeSeal> {
    Arc::new(FacadeSeal::new(&ClearKey::from_array(&[9u8; 32])))
}

fn claim(key: &str, alias: Option<&str>, fingerprint: &str) -> Claim {
    Claim {
        client_id: "client-1".into(),
        key: key.into(),
        alias: alias.map(str::to_owned),
        fingerprint: fingerprint.into(),
        keep_body: true,
    }
}

async fn begin(store: &Store, c: &Claim, owner: &str, lease: Duration) -> Begun {
    store
        .claim_begin(seal().as_ref(), c, owner, lease)
        .await
        .unwrap()
}

fn answer() -> Answer {
    Answer {
        status: 201,
        body: br#"{"ok":true}"#.to_vec(),
    }
}

async fn record(store: &Store, c: &Claim) {
    let done = store
        .writer()
        .record(c.clone(), OpOutcome::Keep(answer()))
        .await
        .unwrap();
    assert_eq!(done, Committed::Answer(answer()));
}

/// Asks `f` until it is true, at most 10 s (the leases it waits for are 1 ms).
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn exercise_postgres(a: &Store, b: &Store, url: &str) {
    // A holds r:1 and its alias k:K; B's copy is turned away.
    let first = claim("r:1", Some("k:K"), "f1");
    assert_eq!(begin(a, &first, "A", LEASE).await, Begun::Run);
    assert_eq!(begin(b, &first, "B", LEASE).await, Begun::InProgress);
    // Another request id under the same alias is turned away, and gives back the request
    // id it took: that id alone runs at once.
    let same_alias = claim("r:2", Some("k:K"), "f2");
    assert_eq!(begin(b, &same_alias, "B", LEASE).await, Begun::InProgress);
    let alone = claim("r:2", None, "f2");
    assert_eq!(begin(b, &alone, "C", LEASE).await, Begun::Run);
    b.claim_end(&alone, "C").await.unwrap();
    // Only the owner gives a marker back.
    a.claim_end(&first, "B").await.unwrap();
    assert_eq!(begin(b, &first, "B", LEASE).await, Begun::InProgress);
    a.claim_end(&first, "A").await.unwrap();
    assert_eq!(begin(b, &first, "B", LEASE).await, Begun::Run);

    // B records the answer (its marker stays to its lease): any copy gets that answer,
    // and another request under the id is told so.
    record(b, &first).await;
    assert_eq!(
        begin(a, &first, "A", LEASE).await,
        Begun::Recorded(Recorded::Same(answer()))
    );
    let other = claim("r:1", None, "another request");
    assert_eq!(
        begin(a, &other, "A", LEASE).await,
        Begun::Recorded(Recorded::Other)
    );

    // A marker whose lease ended is taken over.
    let crashed = claim("r:3", None, "f3");
    assert_eq!(begin(a, &crashed, "A", ENDED).await, Begun::Run);
    eventually("the ended marker is taken", async || {
        begin(b, &crashed, "B", LEASE).await == Begun::Run
    })
    .await;

    // The purge deletes the ended markers and only them.
    for key in ["r:4", "r:5"] {
        assert_eq!(
            begin(a, &claim(key, None, "f"), "A", ENDED).await,
            Begun::Run
        );
    }
    let mut purged = 0;
    eventually("both ended markers are purged", async || {
        purged += a.purge_calls_in_progress().await.unwrap();
        purged >= 2
    })
    .await;
    assert_eq!(purged, 2);
    assert_eq!(a.purge_calls_in_progress().await.unwrap(), 0);
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut left: Vec<(String, String)> =
        sqlx::query_as("SELECT request_key, owner FROM calls_in_progress")
            .fetch_all(&pool)
            .await
            .unwrap();
    left.sort();
    pool.close().await;
    assert_eq!(
        left,
        [
            ("k:K".into(), "B".into()),
            ("r:1".into(), "B".into()),
            ("r:3".into(), "B".into())
        ],
        "the live markers stay"
    );
}

#[tokio::test]
async fn sqlite_has_no_shared_markers() {
    let dir = std::env::temp_dir().join(format!("cofre-in-progress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("records.db").display());
    let store = Store::open(&url, seal()).await.unwrap();
    let c = claim("r:1", Some("k:K"), "f1");
    // One instance: its own memory turns copies away; the store only looks up answers.
    assert_eq!(begin(&store, &c, "A", LEASE).await, Begun::Run);
    assert_eq!(begin(&store, &c, "B", LEASE).await, Begun::Run);
    store.claim_end(&c, "A").await.unwrap();
    record(&store, &c).await;
    assert_eq!(
        begin(&store, &c, "A", LEASE).await,
        Begun::Recorded(Recorded::Same(answer()))
    );
    assert_eq!(store.purge_calls_in_progress().await.unwrap(), 0);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
async fn postgres_markers_between_two_instances() {
    let server = match std::env::var("COFRE_TEST_POSTGRES_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => return,
        Err(_) => panic!("COFRE_TEST_POSTGRES_URL is not set: run scripts/test"),
    };
    let name = format!(
        "cofre_in_progress_{}_{}",
        std::process::id(),
        rand::rng().random_range(0..1_000_000_000u64)
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let a = Store::open(&url, seal()).await.unwrap();
    let b = Store::open(&url, seal()).await.unwrap();
    exercise_postgres(&a, &b, &url).await;
    a.close().await;
    b.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
}
