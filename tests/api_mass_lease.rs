//! The lease rules of a mass issue batch in the store (docs/scale-out.md, "Mass issue
//! leases"), on SQLite and on PostgreSQL with two stores on one database (two facade
//! instances): one claim of two wins; a live lease is not taken; an ended one is; the
//! instance that lost the batch can neither add a card, nor renew, nor end it; the
//! claimable list follows the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use cofre::api::domain::Tenant;
use cofre::api::http::FacadeSeal;
use cofre::api::store::{BatchCard, BatchClaim, MassIssue, Records, Store, StoreError, now_ms};
use cofre::crypto::ClearKey;
use rand::RngExt;
use serde_json::json;

fn seal() -> Arc<FacadeSeal> {
    Arc::new(FacadeSeal::new(&ClearKey::from_array(&[9u8; 32])))
}

async fn with<T: Send + 'static>(
    store: &Store,
    f: impl for<'c> FnOnce(Records<'c>) -> cofre::api::store::BoxFuture<'c, Result<T, StoreError>>
    + Send
    + 'static,
) -> Result<T, StoreError> {
    let dialect = store.dialect();
    store
        .write(move |db| {
            f(Records::new(
                db,
                dialect,
                Tenant::new("lease-t").unwrap(),
                "cofre",
            ))
        })
        .await
}

fn card(sequence: i64) -> BatchCard {
    let unique = rand::rng().random_range(0..100_000_000_000u64);
    BatchCard {
        sequence,
        token: format!("T{unique:011}"),
        token_version: 1,
        lookup_token: format!("L{unique:011}"),
        masked_pan: "455555******1234".into(),
        expiry: "3012".into(),
        service_code: "201".into(),
        pvv: "1234".into(),
        pin_blob: "00".into(),
        encrypted_pan: "AB".into(),
        encrypted_codes: "CD".into(),
    }
}

async fn claim(store: &Store, id: i64, owner: &'static str, until: i64, how: BatchClaim) -> bool {
    with(store, move |mut r| {
        Box::pin(async move { r.mass_issue_claim(id, owner, until, how).await })
    })
    .await
    .unwrap()
    .is_some()
}

async fn add(
    store: &Store,
    id: i64,
    owner: &'static str,
    sequence: i64,
) -> Result<Vec<i64>, StoreError> {
    let until = now_ms() + 60_000;
    with(store, move |mut r| {
        Box::pin(async move {
            r.batch_cards_add(id, owner, until, &[card(sequence)], (sequence, 0))
                .await
        })
    })
    .await
}

async fn state(store: &Store, id: i64) -> MassIssue {
    with(store, move |mut r| {
        Box::pin(async move { r.mass_issue(id).await })
    })
    .await
    .unwrap()
}

async fn claimable(store: &Store, id: i64, how: BatchClaim) -> bool {
    store
        .mass_issue_claimable(now_ms(), how)
        .await
        .unwrap()
        .iter()
        .any(|(_, i)| *i == id)
}

/// `a` and `b` are two stores on one database (or the same store twice on SQLite).
async fn exercise(a: &Store, b: &Store) {
    let m = with(a, |mut r| {
        Box::pin(async move { r.mass_issue_create(800, 1, 1, 3, &json!({})).await })
    })
    .await
    .unwrap();
    let id = m.id;
    assert!(
        claimable(b, id, BatchClaim::Free).await,
        "a queued batch is claimable"
    );

    // A claims it with a live lease: B can neither claim it nor see it claimable.
    let live = now_ms() + 60_000;
    assert!(claim(a, id, "owner-a", live, BatchClaim::Free).await);
    assert_eq!(state(b, id).await.state, "running");
    assert!(!claim(b, id, "owner-b", live, BatchClaim::Free).await);
    assert!(!claimable(b, id, BatchClaim::Free).await);
    assert_eq!(add(a, id, "owner-a", 1).await.unwrap(), Vec::<i64>::new());
    // B, not the owner, cannot add a card.
    assert!(matches!(
        add(b, id, "owner-b", 2).await,
        Err(StoreError::Rule(_))
    ));

    // A's lease ends (it stopped renewing): B takes over.
    let ended = now_ms() - 1;
    assert!(
        with(a, move |mut r| {
            Box::pin(async move { r.mass_issue_renew(id, "owner-a", ended).await })
        })
        .await
        .unwrap()
    );
    assert!(claimable(b, id, BatchClaim::Free).await);
    assert!(claim(b, id, "owner-b", live, BatchClaim::Free).await);
    // A, late, is fenced out of every change, and its card never lands.
    assert!(matches!(
        add(a, id, "owner-a", 2).await,
        Err(StoreError::Rule(_))
    ));
    assert!(
        !with(a, move |mut r| {
            Box::pin(async move { r.mass_issue_renew(id, "owner-a", live).await })
        })
        .await
        .unwrap()
    );
    assert!(
        !with(a, move |mut r| {
            Box::pin(async move { r.mass_issue_finish(id, "owner-a", "failed", "x", "").await })
        })
        .await
        .unwrap()
    );
    // B resumes from what was committed: sequence 1 and its bureau values.
    let committed = with(b, move |mut r| {
        Box::pin(async move { r.batch_cards_committed(id).await })
    })
    .await
    .unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (committed[0].sequence, committed[0].encrypted_pan.as_str()),
        (1, "AB")
    );
    // A sequence is never added twice.
    assert!(add(b, id, "owner-b", 1).await.is_err());
    add(b, id, "owner-b", 2).await.unwrap();
    add(b, id, "owner-b", 3).await.unwrap();
    // A restart on SQLite claims even a live lease.
    assert!(claimable(a, id, BatchClaim::EvenLeased).await);
    assert!(!claimable(a, id, BatchClaim::Free).await);
    assert!(claim(a, id, "owner-a2", live, BatchClaim::EvenLeased).await);
    assert!(
        with(a, move |mut r| {
            Box::pin(async move {
                r.mass_issue_finish(id, "owner-a2", "done", "", "f.txt")
                    .await
            })
        })
        .await
        .unwrap()
    );
    let done = state(b, id).await;
    assert_eq!((done.state.as_str(), done.issued), ("done", 3));
    // Ended: nobody claims it, and the bureau values are gone.
    assert!(!claim(b, id, "owner-b", live, BatchClaim::EvenLeased).await);
    assert!(!claimable(b, id, BatchClaim::EvenLeased).await);
    let committed = with(b, move |mut r| {
        Box::pin(async move { r.batch_cards_committed(id).await })
    })
    .await
    .unwrap();
    assert_eq!(committed.len(), 3);
    assert!(
        committed
            .iter()
            .all(|c| c.encrypted_pan.is_empty() && c.encrypted_codes.is_empty())
    );
}

#[tokio::test]
async fn sqlite_lease() {
    let dir = std::env::temp_dir().join(format!("cofre-mass-lease-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("records.db").display());
    let store = Store::open(&url, seal()).await.unwrap();
    exercise(&store, &store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
async fn postgres_lease_between_two_instances() {
    let server = match std::env::var("COFRE_TEST_POSTGRES_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => return,
        Err(_) => panic!("COFRE_TEST_POSTGRES_URL is not set: run scripts/test"),
    };
    let name = format!(
        "cofre_lease_{}_{}",
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
    exercise(&a, &b).await;
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
