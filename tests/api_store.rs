//! The record store on SQLite and on PostgreSQL: the same checks on both. PostgreSQL is
//! reached through `COFRE_TEST_POSTGRES_URL` (`.ci/run` installs and starts a server on
//! loopback and sets it); with `COFRE_REQUIRE_POSTGRES=1` a missing URL fails the test
//! instead of skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cofre::api::store::{Claim, NewCard, Store, StoreError};
use rand::RngExt;
use serde_json::json;

fn unique() -> String {
    format!("{:011}", rand::rng().random_range(0..100_000_000_000u64))
}

/// Runs the checks on `store`; returns the customer and the card it made (their ids),
/// for reading back after the store is reopened.
async fn exercise(store: &Store) -> (i64, i64) {
    let doc = unique();
    let body = json!({"name": "Maria da Silva", "document": doc, "extra": {"kept": [1, 2]}});
    let c = store
        .create_customer("client-a", &doc, "Maria da Silva", &body)
        .await
        .unwrap();
    assert_eq!(store.customer(c.id).await.unwrap(), c);
    assert_eq!(
        store.customer(c.id).await.unwrap().body["extra"]["kept"],
        json!([1, 2]),
        "no field dropped"
    );
    // The document is unique.
    let e = store
        .create_customer("client-a", &doc, "Other", &body)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // No account without a customer; no card without an account of that customer.
    let e = store
        .create_account("client-a", 1, "gold", 100_000, 10, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound("customer")), "{e}");
    let a = store
        .create_account(
            "client-a",
            c.id,
            "gold",
            500_000,
            10,
            &json!({"shortName": "MARIA"}),
        )
        .await
        .unwrap();
    assert_eq!(store.account(a.id).await.unwrap(), a);
    let e = store
        .create_account("client-a", c.id, "gold", 1, 40, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Rule(_)));
    let other = store
        .create_customer("client-a", &unique(), "Other", &json!({}))
        .await
        .unwrap();
    let token = unique();
    let card = |customer_id, token: &str, lookup: &str| NewCard {
        account_id: a.id,
        customer_id,
        token: token.to_owned(),
        token_version: 1,
        lookup_token: lookup.to_owned(),
        masked_pan: "411111******1111".into(),
        kind: "physical-credit".into(),
        expiry: "2812".into(),
        service_code: "201".into(),
        pvv: "0651".into(),
        pin_blob: "01AB".into(),
        body: json!({"embossingName": "MARIA SILVA"}),
        credit_limit: 0,
        tenant: String::new(),
    };
    let e = store
        .create_card("client-a", card(other.id, &token, &unique()))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Rule(_)), "{e}");
    let lookup = unique();
    let k = store
        .create_card("client-a", card(c.id, &token, &lookup))
        .await
        .unwrap();
    assert_eq!(k.status, "inactive");
    assert_eq!(store.card(k.id).await.unwrap(), k);
    // The same PAN (lookup token) cannot be issued twice.
    let e = store
        .create_card("client-a", card(c.id, &unique(), &lookup))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // Activation, with history: who, what, before/after, never the PIN blob.
    let active = store
        .set_card_status("client-b", k.id, "active")
        .await
        .unwrap();
    assert_eq!(active.status, "active");
    let h = store.history_of("card", k.id).await.unwrap();
    assert_eq!(
        h.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["create", "status"]
    );
    assert_eq!(h[1].actor, "client-b");
    assert_eq!(h[1].before.as_ref().unwrap()["status"], "inactive");
    assert_eq!(h[1].after.as_ref().unwrap()["status"], "active");
    assert!(!serde_json::to_string(&h).unwrap().contains("01AB"));
    assert_eq!(store.history_of("customer", c.id).await.unwrap().len(), 1);
    assert!(matches!(
        store.card(1).await.unwrap_err(),
        StoreError::NotFound("card")
    ));
    (c.id, k.id)
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Answers past their retention are purged (the request id then runs as a new call);
/// a claim still pending is kept until its own horizon.
async fn idempotency_purge(store: &Store) {
    let (done, pending) = (unique(), unique());
    assert_eq!(
        store
            .idempotency_claim("client-a", &done, "h1")
            .await
            .unwrap(),
        Claim::Fresh
    );
    store
        .idempotency_finish("client-a", &done, 201, "{}")
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_claim("client-a", &pending, "h1")
            .await
            .unwrap(),
        Claim::Fresh
    );
    // Nothing is old enough yet.
    let before = now_ms() - 60_000;
    store.idempotency_purge(before, before).await.unwrap();
    assert!(matches!(
        store
            .idempotency_claim("client-a", &done, "h1")
            .await
            .unwrap(),
        Claim::Replay { status: 201, .. }
    ));
    // Answers claimed before now are past a zero retention; pending ones are kept.
    let after = now_ms() + 1000;
    assert!(store.idempotency_purge(after, before).await.unwrap() >= 1);
    assert_eq!(
        store
            .idempotency_claim("client-a", &done, "h2")
            .await
            .unwrap(),
        Claim::Fresh,
        "a purged request id runs as a new call"
    );
    assert_eq!(
        store
            .idempotency_claim("client-a", &pending, "h1")
            .await
            .unwrap(),
        Claim::InProgress
    );
    store.idempotency_purge(before, after).await.unwrap();
    assert_eq!(
        store
            .idempotency_claim("client-a", &pending, "h1")
            .await
            .unwrap(),
        Claim::Fresh,
        "a dead pending claim is purged at its horizon"
    );
}

#[tokio::test]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("cofre-api-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("records.db").display());
    let store = Store::open(&url).await.unwrap();
    let (customer, card) = exercise(&store).await;
    let (before_customer, before_card) = (
        store.customer(customer).await.unwrap(),
        store.card(card).await.unwrap(),
    );
    // Reopening runs no migration twice and keeps the data: what was written before
    // reads back the same.
    drop(store);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.customer(customer).await.unwrap(), before_customer);
    assert_eq!(store.card(card).await.unwrap(), before_card);
    assert_eq!(before_card.status, "active");
    exercise(&store).await;
    idempotency_purge(&store).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_store() {
    let Ok(url) = std::env::var("COFRE_TEST_POSTGRES_URL") else {
        if std::env::var("COFRE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!("COFRE_REQUIRE_POSTGRES=1 but COFRE_TEST_POSTGRES_URL is not set");
        }
        eprintln!("SKIPPED PostgreSQL store test: set COFRE_TEST_POSTGRES_URL (scripts/test does)");
        return;
    };
    let store = Store::open(&url).await.unwrap();
    exercise(&store).await;
    idempotency_purge(&store).await;
}
