//! The record store on SQLite and on PostgreSQL: the same checks on both. PostgreSQL is
//! reached through `COFRE_TEST_POSTGRES_URL` (`scripts/test` and `.ci/run` set it); a
//! missing URL fails the run unless it opts out with `COFRE_SKIP_POSTGRES=1`, and then
//! the PostgreSQL test is reported `ignored` with that reason in the summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use cofre::api::domain::{CardKind, CardStatus, Tenant};
use cofre::api::http::FacadeSeal;
use cofre::api::store::{
    Account, Answer, AppendOnly, Appends, Body, Claim, Committed, NewCard, OpOutcome, Recorded,
    Records, Store, StoreError,
};
use cofre::crypto::ClearKey;
use rand::RngExt;
use serde_json::json;

fn unique() -> String {
    format!("{:011}", rand::rng().random_range(0..100_000_000_000u64))
}

fn seal() -> Arc<FacadeSeal> {
    Arc::new(FacadeSeal::new(&ClearKey::from_array(&[9u8; 32])))
}

fn tenant(t: &str) -> Tenant {
    Tenant::new(t).unwrap()
}

async fn with<T: Send + 'static>(
    store: &Store,
    t: &Tenant,
    f: impl for<'c> FnOnce(Records<'c>) -> cofre::api::store::BoxFuture<'c, Result<T, StoreError>>
    + Send
    + 'static,
) -> Result<T, StoreError> {
    let (t, dialect) = (t.clone(), store.dialect());
    store
        .write(move |db| f(Records::new(db, dialect, t, "client-a")))
        .await
}

fn new_card(account_id: i64, customer_id: i64) -> NewCard {
    NewCard {
        account_id,
        customer_id,
        token: unique(),
        token_version: 1,
        lookup_token: unique(),
        masked_pan: "411111******1111".into(),
        kind: CardKind::PhysicalCredit,
        expiry: "2812".into(),
        service_code: "201".into(),
        pvv: "0651".into(),
        pin_blob: "01AB9F3C7E5D2A4B01AB9F3C7E5D2A4B".into(),
        body: json!({"embossingName": "MARIA SILVA"}),
        credit_limit: 0,
    }
}

/// Runs the checks on `store`; returns a tenant, a customer number and a card id it
/// made, for reading back after the store is reopened.
async fn exercise(store: &Store) -> (Tenant, i64, i64) {
    let (a_t, b_t) = (
        tenant(&format!("loja-a-{}", unique())),
        tenant(&format!("loja-b-{}", unique())),
    );
    let doc = unique();
    let number: i64 = rand::rng().random_range(1..1_000_000_000);
    let body = json!({"name": "Maria da Silva", "document": doc, "extra": {"kept": [1, 2]}});
    // The same document and customer number in two tenants: both succeed.
    let (d, b) = (doc.clone(), body.clone());
    let c = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.create_customer(number, &d, "Maria da Silva", &b).await })
    })
    .await
    .unwrap();
    let (d, b) = (doc.clone(), body.clone());
    let c2 = with(store, &b_t, move |mut r| {
        Box::pin(async move { r.create_customer(number, &d, "Outra Maria", &b).await })
    })
    .await
    .unwrap();
    assert_eq!(c.id, c2.id);
    // Each sees its own only.
    let mut conn = store.read().await.unwrap();
    let seen = Records::new(&mut conn, store.dialect(), a_t.clone(), "x")
        .customer(number)
        .await
        .unwrap();
    assert_eq!(seen.name, "Maria da Silva");
    assert_eq!(
        seen.body["extra"]["kept"],
        json!([1, 2]),
        "no field dropped"
    );
    let seen = Records::new(&mut conn, store.dialect(), b_t.clone(), "x")
        .customer(number)
        .await
        .unwrap();
    assert_eq!(seen.name, "Outra Maria");
    let other = tenant(&format!("loja-c-{}", unique()));
    let e = Records::new(&mut conn, store.dialect(), other, "x")
        .customer(number)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound("customer")), "{e}");
    drop(conn);
    // Within a tenant the document and the number are unique.
    let (d, b) = (doc.clone(), body.clone());
    let e = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.create_customer(number + 1, &d, "Other", &b).await })
    })
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // No account for another tenant's customer; no card on another customer's account.
    let acct = |id: i64, customer_id: i64, cycle_day: i64| Account {
        id,
        customer_id,
        product: "800/1".into(),
        credit_limit: 500_000,
        cycle_day,
        body: Body(json!({"shortName": "MARIA"})),
        status: "active".into(),
        tenant: String::new(),
    };
    let a_id: i64 = rand::rng().random_range(1..1_000_000_000);
    let a = acct(a_id, number, 10);
    let e = with(
        store,
        &tenant(&format!("loja-d-{}", unique())),
        move |mut r| Box::pin(async move { r.create_account(&a).await }),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::NotFound("customer")), "{e}");
    let a = acct(a_id, number, 40);
    let e = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.create_account(&a).await })
    })
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Rule(_)), "{e}");
    let a = acct(a_id, number, 10);
    let account = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.create_account(&a).await })
    })
    .await
    .unwrap();
    assert_eq!(account.tenant, a_t.as_str());
    let card = with(store, &a_t, move |mut r| {
        Box::pin(async move {
            r.create_card(new_card(a_id, number), CardStatus::Inactive, "create")
                .await
        })
    })
    .await
    .unwrap();
    // The same PAN is never stored twice, in any tenant.
    let mut again = new_card(a_id, number);
    again.lookup_token = card.lookup_token.clone();
    let e = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.create_card(again, CardStatus::Inactive, "create").await })
    })
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    let id = card.id;
    let updated = with(store, &a_t, move |mut r| {
        Box::pin(async move { r.set_card_status(id, CardStatus::Active).await })
    })
    .await
    .unwrap();
    assert_eq!(updated.status, CardStatus::Active);
    // Another tenant cannot change it.
    let e = with(store, &b_t, move |mut r| {
        Box::pin(async move { r.set_card_status(id, CardStatus::Blocked).await })
    })
    .await
    .unwrap_err();
    assert!(matches!(e, StoreError::NotFound("card")), "{e}");
    let mut conn = store.read().await.unwrap();
    let mut r = Records::new(&mut conn, store.dialect(), a_t.clone(), "x");
    let history = r.history_of("card", id).await.unwrap();
    let actions: Vec<&str> = history.iter().map(|h| h.action.as_str()).collect();
    assert_eq!(actions, ["create", "status"]);
    assert_eq!(history[1].before.as_ref().unwrap()["status"], "inactive");
    assert_eq!(history[1].after.as_ref().unwrap()["status"], "active");
    let text = serde_json::to_string(&history).unwrap();
    assert!(
        !text.contains("01AB9F3C7E5D2A4B") && !text.contains("\"0651\"") && !text.contains("pvv"),
        "no PIN blob or PVV in history: {text}"
    );
    drop(r);
    drop(conn);
    writer_recovers(store, &a_t, id).await;
    concurrent_changes(store, &a_t, id).await;
    corrupt_body(store, &a_t, id).await;
    idempotency(store).await;
    records_in_one_batch(store).await;
    (a_t, number, a_id)
}

/// What a reopened store must still hold: the customer's name and body, the account's
/// cycle day, limit and body (the card's body was deliberately corrupted).
async fn read_back(store: &Store, t: &Tenant, number: i64, account: i64) -> (String, String) {
    let mut conn = store.read().await.unwrap();
    let mut r = Records::new(&mut conn, store.dialect(), t.clone(), "x");
    let customer = r.customer(number).await.unwrap();
    let account = r.account(account).await.unwrap();
    (
        format!("{} {:?}", customer.name, customer.body),
        format!(
            "{} {} {:?}",
            account.cycle_day, account.credit_limit, account.body
        ),
    )
}

/// A transaction whose commit fails (here: an operation that ends the transaction under
/// the writer's feet) fails its own batch only; the next batches commit.
async fn writer_recovers(store: &Store, t: &Tenant, id: i64) {
    let sabotage = store
        .write(|db| {
            Box::pin(async move {
                sqlx::query("COMMIT")
                    .execute(db)
                    .await
                    .map(|_| ())
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
        })
        .await;
    assert!(sabotage.is_err(), "the broken transaction is reported");
    for _ in 0..3 {
        let c = with(store, t, move |mut r| {
            Box::pin(async move { r.update_card(id, "after-failure", |_| {}).await })
        })
        .await
        .unwrap();
        assert_eq!(c.id, id);
    }
}

/// Two writers changing different fields of one card 100 times each, concurrently: no
/// change is lost and the history's befores chain.
async fn concurrent_changes(store: &Store, t: &Tenant, id: i64) {
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let (store, t) = (store.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100i64 {
                with(&store, &t, move |mut r| {
                    Box::pin(async move {
                        r.update_card(id, "change", |c| {
                            if writer == 0 {
                                c.credit_limit += 1;
                            } else if let Some(o) = c.body.as_object_mut() {
                                o.insert("counter".into(), json!(i + 1));
                            }
                        })
                        .await
                    })
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut conn = store.read().await.unwrap();
    let mut r = Records::new(&mut conn, store.dialect(), t.clone(), "x");
    let card = r.card(id).await.unwrap();
    assert_eq!(card.credit_limit, 100, "no limit change lost");
    assert_eq!(card.body["counter"], json!(100), "no body change lost");
    let history = r.history_of("card", id).await.unwrap();
    let changes: Vec<_> = history.iter().filter(|h| h.action == "change").collect();
    assert_eq!(changes.len(), 200);
    // Each change's before was read inside its transaction: the limit increments are
    // exactly 0->1, 1->2, ..., 99->100 (no two changes read the same row).
    let distinct_limit_changes: std::collections::BTreeSet<(i64, i64)> = changes
        .iter()
        .map(|h| {
            (
                h.before.as_ref().unwrap()["credit_limit"].as_i64().unwrap(),
                h.after.as_ref().unwrap()["credit_limit"].as_i64().unwrap(),
            )
        })
        .filter(|(b, a)| a != b)
        .collect();
    let chain: std::collections::BTreeSet<(i64, i64)> = (0..100).map(|v| (v, v + 1)).collect();
    assert_eq!(
        distinct_limit_changes, chain,
        "every increment read the previous value"
    );
}

/// A stored body that does not parse is an error, never `null`.
async fn corrupt_body(store: &Store, t: &Tenant, id: i64) {
    let tt = t.as_str().to_owned();
    store
        .write(move |db| {
            Box::pin(async move {
                sqlx::query("UPDATE cards SET body = '{not json' WHERE tenant = $1 AND id = $2")
                    .bind(tt)
                    .bind(id)
                    .execute(db)
                    .await
                    .map(|_| ())
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
        })
        .await
        .unwrap();
    let mut conn = store.read().await.unwrap();
    let e = Records::new(&mut conn, store.dialect(), t.clone(), "x")
        .card(id)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
}

fn claim(key: &str, fingerprint: &str) -> Claim {
    Claim {
        client_id: "client-a".into(),
        key: key.into(),
        alias: None,
        fingerprint: fingerprint.into(),
        keep_body: true,
    }
}

fn keep(body: &str) -> cofre::api::store::Op {
    let body = body.as_bytes().to_vec();
    Box::new(move |_db| Box::pin(async move { OpOutcome::Keep(Answer { status: 200, body }) }))
}

/// The claim and the answer commit together; a repeat replays, another request is a
/// mismatch, and the stored answer is sealed.
async fn idempotency(store: &Store) {
    let seal = seal();
    let key = format!("r:{}", unique());
    let first = store
        .writer()
        .call(claim(&key, "f1"), keep(r#"{"dcvv2":"976"}"#))
        .await
        .unwrap();
    assert!(matches!(first, Committed::Answer(_)));
    let again = store
        .writer()
        .call(claim(&key, "f1"), keep(r#"{"other":1}"#))
        .await
        .unwrap();
    assert_eq!(
        again,
        Committed::Replay(Answer {
            status: 200,
            body: br#"{"dcvv2":"976"}"#.to_vec()
        })
    );
    let other = store
        .writer()
        .call(claim(&key, "f2"), keep("{}"))
        .await
        .unwrap();
    assert_eq!(other, Committed::Mismatch);
    assert!(matches!(
        store
            .idempotency_lookup(seal.as_ref(), "client-a", &key, "f1")
            .await
            .unwrap(),
        Recorded::Same(_)
    ));
    // A server error is not recorded.
    let key2 = format!("r:{}", unique());
    let failed = store
        .writer()
        .call(
            claim(&key2, "f"),
            Box::new(|_db| {
                Box::pin(async {
                    OpOutcome::Fail(Answer {
                        status: 500,
                        body: Vec::new(),
                    })
                })
            }),
        )
        .await
        .unwrap();
    assert!(matches!(failed, Committed::Answer(a) if a.status == 500));
    assert_eq!(
        store
            .idempotency_lookup(seal.as_ref(), "client-a", &key2, "f")
            .await
            .unwrap(),
        Recorded::Nothing
    );
    // Purged by age.
    assert!(store.purge_idempotency(i64::MAX).await.unwrap() >= 1);
    assert_eq!(
        store
            .idempotency_lookup(seal.as_ref(), "client-a", &key, "f1")
            .await
            .unwrap(),
        Recorded::Nothing
    );
}

/// Calls that changed nothing are recorded by one multi-row insert per batch: queued
/// while the writer is held inside another job (explicit hand-offs, no sleeps), they
/// commit together. Each new key gets its own answer, durably; a key recorded before
/// replays its answer (or is a mismatch for another request); a key twice in the batch
/// answers the first's answer the second time.
async fn records_in_one_batch(store: &Store) {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    let seal = seal();
    let old = format!("r:{}", unique());
    let answer = |body: &str| Answer {
        status: 200,
        body: body.as_bytes().to_vec(),
    };
    let first = store
        .writer()
        .record(claim(&old, "f-old"), OpOutcome::Keep(answer("old")))
        .await
        .unwrap();
    assert_eq!(first, Committed::Answer(answer("old")));

    // Hold the writer inside a job of its own.
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let writer = store.writer().clone();
    let holder = tokio::spawn(async move {
        writer
            .write(move |_db| {
                Box::pin(async move {
                    entered_tx.send(()).unwrap();
                    held.await.unwrap();
                    Ok(())
                })
            })
            .await
    });
    entered.await.unwrap();

    let fresh: Vec<String> = (0..4).map(|_| format!("r:{}", unique())).collect();
    let mut jobs: Vec<(String, &str, String)> = fresh
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), "f", format!("new-{i}")))
        .collect();
    jobs.push((fresh[1].clone(), "f", "twice".into()));
    jobs.push((old.clone(), "f-old", "again".into()));
    jobs.push((old.clone(), "f-other", "other".into()));
    type Pending = Pin<Box<dyn Future<Output = Result<Committed, StoreError>> + Send>>;
    let mut pending: Vec<Pending> = jobs
        .iter()
        .map(|(key, fingerprint, body)| {
            let (writer, claim, outcome) = (
                store.writer().clone(),
                claim(key, fingerprint),
                OpOutcome::Keep(answer(body)),
            );
            Box::pin(async move { writer.record(claim, outcome).await }) as Pending
        })
        .collect();
    // Each is polled once: queued behind the held job, waiting for its answer.
    std::future::poll_fn(|cx| {
        for p in &mut pending {
            assert!(p.as_mut().poll(cx).is_pending());
        }
        Poll::Ready(())
    })
    .await;
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let mut results = Vec::new();
    for p in pending {
        results.push(p.await.unwrap());
    }
    let mut expected: Vec<Committed> = (0..4)
        .map(|i| Committed::Answer(answer(&format!("new-{i}"))))
        .collect();
    expected.push(Committed::Replay(answer("new-1")));
    expected.push(Committed::Replay(answer("old")));
    expected.push(Committed::Mismatch);
    assert_eq!(results, expected);
    for (i, key) in fresh.iter().enumerate() {
        assert_eq!(
            store
                .idempotency_lookup(seal.as_ref(), "client-a", key, "f")
                .await
                .unwrap(),
            Recorded::Same(answer(&format!("new-{i}"))),
            "{key}"
        );
    }
}

/// Whether the read cache (SQLite) holds card `token` of `t`.
fn cached(store: &Store, t: &Tenant, token: &str) -> bool {
    let cache = store.cache().expect("SQLite has a read cache");
    cache.card(cache.snapshot(), t.as_str(), token).is_some()
}

/// A call that only appends rows (a refused PIN validation's history row and
/// occurrence) commits them with its claim and keeps the read cache; an ordinary call
/// empties it (the control: the check can fail).
async fn appends_keep_the_cache(store: &Store, t: &Tenant, customer: i64, account: i64) {
    let card = with(store, t, move |mut r| {
        Box::pin(async move {
            r.create_card(new_card(account, customer), CardStatus::Active, "create")
                .await
        })
    })
    .await
    .unwrap();
    let card_id = card.id;
    let read_through_cache = || async {
        let mut conn = store.read().await.unwrap();
        Records::new(&mut conn, store.dialect(), t.clone(), "client-a")
            .with_cache(store.cache().cloned())
            .card_by_token(&card.token)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(read_through_cache().await.id, card_id);
    assert!(cached(store, t, &card.token));
    let key = format!("r:{}", unique());
    let (tenant, dialect) = (t.clone(), store.dialect());
    let appended = store
        .writer()
        .call_appending(
            claim(&key, "f"),
            Box::new(move |db: AppendOnly<'_>| {
                Box::pin(async move {
                    let mut a = Appends::new(db, dialect, tenant, "client-a");
                    a.card_event(card_id, "pin_refused", &json!({"code": "invalid_pin"}))
                        .await
                        .unwrap();
                    a.record_occurrence(card.customer_id, "pin_refused", "invalid_pin")
                        .await
                        .unwrap();
                    OpOutcome::Keep(Answer {
                        status: 422,
                        body: b"{}".to_vec(),
                    })
                })
            }),
        )
        .await
        .unwrap();
    assert!(matches!(appended, Committed::Answer(a) if a.status == 422));
    assert!(cached(store, t, &card.token), "an append emptied the cache");
    // A read the cache serves takes no read connection; one it cannot serve takes one.
    let mut lazy = store.read_lazily();
    let mut r = Records::over_read(&mut lazy, store.dialect(), t.clone(), "client-a")
        .with_cache(store.cache().cloned());
    assert_eq!(
        r.card_by_token(&card.token).await.unwrap().unwrap().id,
        card_id
    );
    drop(r);
    assert!(!lazy.taken(), "a cached read took a connection");
    let mut r = Records::over_read(&mut lazy, store.dialect(), t.clone(), "client-a");
    assert_eq!(r.customer(customer).await.unwrap().id, card.customer_id);
    drop(r);
    assert!(lazy.taken());
    drop(lazy);
    let history = with(store, t, move |mut r| {
        Box::pin(async move { r.history_of("card", card_id).await })
    })
    .await
    .unwrap();
    assert!(
        history.iter().any(|h| h.action == "pin_refused"),
        "{history:?}"
    );
    assert!(matches!(
        store
            .idempotency_lookup(seal().as_ref(), "client-a", &key, "f")
            .await
            .unwrap(),
        Recorded::Same(a) if a.status == 422
    ));
    // The same append replays: nothing appended twice.
    let again = store
        .writer()
        .call_appending(
            claim(&key, "f"),
            Box::new(|_db: AppendOnly<'_>| {
                Box::pin(async {
                    OpOutcome::Keep(Answer {
                        status: 500,
                        body: Vec::new(),
                    })
                })
            }),
        )
        .await
        .unwrap();
    assert!(matches!(again, Committed::Replay(a) if a.status == 422));
    store
        .writer()
        .call(claim(&format!("r:{}", unique()), "f"), keep("{}"))
        .await
        .unwrap();
    assert!(!cached(store, t, &card.token), "a change kept the cache");
}

#[tokio::test]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(format!("cofre-api-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("records.db").display());
    let store = Store::open(&url, seal()).await.unwrap();
    let (t, number, account) = exercise(&store).await;
    appends_keep_the_cache(&store, &t, number, account).await;
    let before = read_back(&store, &t, number, account).await;
    store.close().await;
    // Reopening runs no migration twice and keeps the data: what was written before
    // reads back the same.
    let store = Store::open(&url, seal()).await.unwrap();
    assert_eq!(read_back(&store, &t, number, account).await, before);
    assert!(before.0.contains("Maria da Silva"), "{before:?}");
    exercise(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn postgres_url() -> Option<String> {
    match std::env::var("COFRE_TEST_POSTGRES_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => None,
        Err(_) => panic!(
            "COFRE_TEST_POSTGRES_URL is not set: run scripts/test, or opt out with COFRE_SKIP_POSTGRES=1"
        ),
    }
}

/// Creates an empty database on the server of `url` and returns its URL.
async fn fresh_database(url: &str) -> String {
    let name = format!("cofre_store_{}_{}", std::process::id(), unique());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = url.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

#[tokio::test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
async fn postgres_store() {
    let Some(server) = postgres_url() else {
        return;
    };
    // A database of its own: the server's base database may carry another checkout's
    // migrations, and the check must not depend on what ran there before.
    let url = fresh_database(&server).await;
    let store = Store::open(&url, seal()).await.unwrap();
    exercise(&store).await;
    store.close().await;
    drop_database(&server, &url).await;
}

/// Drops the database `fresh_database` made (a passed test leaves nothing on the
/// server; a failed one keeps it to be looked at).
async fn drop_database(server: &str, url: &str) {
    let name = url.rsplit_once('/').unwrap().1;
    let pool = sqlx::AnyPool::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}
