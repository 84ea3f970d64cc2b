//! The shared store's decide path on a real PostgreSQL (`COFRE_TEST_POSTGRES_URL`, a
//! fresh database per test, dropped at the end): decisions committed and seen by a
//! second store on the same database, the brute-force guard summed over both, a
//! failed commit answered `store_unavailable` then recovered by itself, and the
//! identity bound to the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::crypto::ClearKey;
use crate::hsm::counters::identity::Binding;
use crate::hsm::counters::rules::Dcvv2Outcome;
use crate::hsm::counters::{Attempt, CardRecord, Limits, PinOutcome, Verdict};
use crate::hsm::guard::GuardPolicy;
use sqlx::{Connection, PgConnection};

/// A fresh database on the test server, dropped when this is dropped.
struct FreshDb {
    admin: String,
    name: String,
    url: String,
}

impl FreshDb {
    fn new() -> Option<Self> {
        let admin = match std::env::var("COFRE_TEST_POSTGRES_URL") {
            Ok(u) => u,
            Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
            Err(_) => panic!("COFRE_TEST_POSTGRES_URL is not set (or COFRE_SKIP_POSTGRES=1)"),
        };
        let name = format!("cofre_pgc_{}_{}", std::process::id(), rand::random::<u32>());
        run(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Some(Self { admin, name, url })
    }

    /// The target, the password moved out of the URL as the configuration requires.
    fn target(&self) -> PgTarget {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (userinfo, host) = rest.split_once('@').unwrap();
        let (user, password) = userinfo.split_once(':').unwrap();
        PgTarget {
            url: format!("{scheme}://{user}@{host}"),
            password: Some(zeroize::Zeroizing::new(password.to_owned())),
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        run(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn run(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    });
}

fn seal() -> Seal {
    Seal::new(&ClearKey::from_bytes(&[1; 32]).unwrap()).unwrap()
}

fn guard(per_minute: u64) -> Guard {
    Guard::new(
        GuardPolicy {
            failures_per_minute: per_minute,
            refuse: true,
        },
        None,
    )
}

/// Opens a store; the first one of a database creates it (its id is returned through
/// `created`), the others are bound to that id.
fn open(db: &FreshDb, binding: Option<StoreId>, per_minute: u64) -> PgCounters {
    PgCounters::open(
        &db.target(),
        seal(),
        binding.map(|id| Binding { id, seq: 1 }),
        1,
        |_| Ok(()),
        CounterMetrics::new().unwrap(),
        guard(per_minute),
    )
    .unwrap()
}

fn card(n: u8) -> CardId {
    CardId::from_bytes([n; 32])
}

const LIMITS: Limits = Limits { pin: 3, dcvv2: 3 };
const NOW: u64 = 1_000_000;

fn decide(s: &PgCounters, c: CardId, attempt: Attempt) -> Result<Decision, CounterError> {
    let d = s.decide(Request {
        card: c,
        attempt,
        limits: LIMITS,
        now: NOW,
        seen: None,
    });
    resolve(d)
}

fn resolve(d: Decided) -> Result<Decision, CounterError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(d.resolved())
}

fn verdict(s: &PgCounters, c: CardId, attempt: Attempt) -> Verdict {
    decide(s, c, attempt).unwrap().verdict
}

const WRONG: Attempt = Attempt::Pin(PinOutcome::Mismatched);
const RIGHT: Attempt = Attempt::Pin(PinOutcome::Matched);

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn decisions_commit_and_are_seen_by_the_other_store() {
    let Some(db) = FreshDb::new() else { return };
    let a = open(&db, None, 1000);
    let b = open(&db, Some(a.id()), 1000);
    assert_eq!(a.id(), b.id(), "one store, one identity");
    // Alternating wrong PINs between the two: locked at exactly the limit.
    assert_eq!(verdict(&a, card(1), WRONG), Verdict::Failed);
    assert_eq!(verdict(&b, card(1), WRONG), Verdict::Failed);
    let third = decide(&a, card(1), WRONG).unwrap();
    assert!(third.locked_now && third.after.pin.failures == 3);
    assert_eq!(verdict(&b, card(1), RIGHT), Verdict::Locked);
    let seen = b.snapshot(&card(1)).unwrap().record.pin;
    assert_eq!((seen.failures, seen.locked), (3, true));
    // A reset on one lifts the lock on the other.
    assert_eq!(verdict(&b, card(1), Attempt::PinReset), Verdict::AsComputed);
    assert_eq!(verdict(&a, card(1), RIGHT), Verdict::AsComputed);
    // dCVV2: one use across both.
    let used = Attempt::Dcvv2(Dcvv2Outcome::Matched(7));
    assert_eq!(verdict(&a, card(2), used), Verdict::AsComputed);
    assert_eq!(verdict(&b, card(2), used), Verdict::Replayed);
    // A clean card's success writes nothing.
    assert_eq!(verdict(&a, card(3), RIGHT), Verdict::AsComputed);
    assert_eq!(a.snapshot(&card(3)).unwrap().record, CardRecord::default());
    // Many decisions for one card from both at once: exactly the limit counted.
    let (ra, rb): (Vec<_>, Vec<_>) = (0..20)
        .map(|_| {
            let r = |s: &PgCounters| {
                s.decide(Request {
                    card: card(4),
                    attempt: WRONG,
                    limits: LIMITS,
                    now: NOW,
                    seen: None,
                })
            };
            (r(&a), r(&b))
        })
        .unzip();
    let verdicts: Vec<Verdict> = ra
        .into_iter()
        .chain(rb)
        .map(|d| resolve(d).unwrap().verdict)
        .collect();
    let failed = verdicts.iter().filter(|v| **v == Verdict::Failed).count();
    let locked = verdicts.iter().filter(|v| **v == Verdict::Locked).count();
    assert_eq!((failed, locked), (3, 37), "{verdicts:?}");
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_record_failing_its_mac_is_locked_and_the_guard_counts_both_daemons() {
    let Some(db) = FreshDb::new() else { return };
    let a = open(&db, None, 3);
    let b = open(&db, Some(a.id()), 3);
    // Two failures on a, then two on b: the guard of b trips at the pair's fourth.
    for n in 10..12 {
        assert_eq!(verdict(&a, card(n), WRONG), Verdict::Failed);
    }
    assert_eq!(verdict(&b, card(12), WRONG), Verdict::Failed);
    assert!(!b.guard().is_tripped());
    assert_eq!(verdict(&b, card(13), WRONG), Verdict::Failed);
    assert!(b.guard().is_tripped(), "2 on a + 2 on b > 3");
    assert_eq!(verdict(&b, card(14), RIGHT), Verdict::Guarded);
    // A record edited in the database: locked, counted.
    run(
        &db.url,
        "UPDATE cofre_counter_cards SET record = set_byte(record, 0, get_byte(record, 0) # 1) \
         WHERE card = decode(repeat('0a', 32), 'hex')",
    );
    // (read by a third store whose guard allows more: the pair's guards both refuse now)
    let c = open(&db, Some(a.id()), 1000);
    assert_eq!(verdict(&c, card(10), RIGHT), Verdict::Locked);
    assert!(c.snapshot(&card(10)).unwrap().record.pin.locked);
    assert!(c.core.metrics.mac_failures.get() >= 1);
    // The other cards' records still verify.
    assert_eq!(c.snapshot(&card(11)).unwrap().record.pin.failures, 1);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_failed_commit_is_unavailable_then_recovers_by_itself() {
    let Some(db) = FreshDb::new() else { return };
    let a = open(&db, None, 1000);
    assert_eq!(verdict(&a, card(1), WRONG), Verdict::Failed);
    // Cut every connection of the store: the next commit fails.
    run(
        &db.admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ),
    );
    let failed = decide(&a, card(1), WRONG);
    assert!(
        matches!(failed, Err(CounterError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(a.is_unavailable());
    // Refused at once while unavailable, then back by itself (bounded back-off).
    let mut recovered = None;
    for _ in 0..200 {
        match decide(&a, card(1), WRONG) {
            Ok(d) => {
                recovered = Some(d);
                break;
            }
            Err(CounterError::Unavailable(_)) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{e}"),
        }
    }
    let d = recovered.expect("the store recovers by itself");
    assert_eq!(
        d.after.pin.failures, 2,
        "the refused attempt was not counted, the earlier one was kept"
    );
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn the_identity_is_bound_to_the_audit_log() {
    let Some(db) = FreshDb::new() else { return };
    let mut recorded = None;
    let a = PgCounters::open(
        &db.target(),
        seal(),
        None,
        1,
        |id| {
            recorded = Some(id);
            Ok(())
        },
        CounterMetrics::new().unwrap(),
        guard(1000),
    )
    .unwrap();
    assert_eq!(recorded, Some(a.id()), "creation wrote its audit line");
    let other = StoreId::from_hex("00112233445566778899aabbccddeeff").unwrap();
    let open_with = |binding: Option<StoreId>, seal: Seal| {
        PgCounters::open(
            &db.target(),
            seal,
            binding.map(|id| Binding { id, seq: 9 }),
            1,
            |_| Err("must not be called".into()),
            CounterMetrics::new().unwrap(),
            guard(1000),
        )
        .map(|_| ())
    };
    for (binding, seal) in [
        (None, seal()),
        (Some(other), seal()),
        (
            Some(a.id()),
            Seal::new(&ClearKey::from_bytes(&[2; 32]).unwrap()).unwrap(),
        ),
    ] {
        let e = open_with(binding, seal).unwrap_err();
        assert!(matches!(e, CounterError::Identity(_)), "{e}");
    }
    assert!(open_with(Some(a.id()), seal()).is_ok());
    // A failed audit write leaves no store behind.
    let db2 = FreshDb::new().unwrap();
    let e = PgCounters::open(
        &db2.target(),
        seal(),
        None,
        1,
        |_| Err("disk full".into()),
        CounterMetrics::new().unwrap(),
        guard(1000),
    )
    .unwrap_err();
    assert!(e.to_string().contains("disk full"));
    let mut created = None;
    let _b = PgCounters::open(
        &db2.target(),
        seal(),
        None,
        1,
        |id| {
            created = Some(id);
            Ok(())
        },
        CounterMetrics::new().unwrap(),
        guard(1000),
    )
    .unwrap();
    assert!(
        created.is_some(),
        "created again: the first attempt rolled back"
    );
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_reset_empties_the_store_under_a_new_identity_and_only_with_no_daemon_connected() {
    let Some(db) = FreshDb::new() else { return };
    let a = open(&db, None, 1000);
    let old = a.id();
    assert_eq!(verdict(&a, card(1), WRONG), Verdict::Failed);
    let never = |_| -> Result<(), String> { Err("must not be recorded".into()) };
    let e = PgCounters::reset(&db.target(), &seal(), 2, never).unwrap_err();
    assert!(e.to_string().contains("stop every daemon"), "{e}");
    drop(a);
    // The daemon's connections close asynchronously: wait until they are gone.
    let mut reset = None;
    for _ in 0..100 {
        match PgCounters::reset(&db.target(), &seal(), 2, |id| {
            reset = Some(id);
            Ok(())
        }) {
            Ok(id) => {
                assert_eq!(Some(id), reset, "recorded before the commit");
                break;
            }
            Err(e) if e.to_string().contains("stop every daemon") => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    }
    let new = reset.expect("reset once the daemon is gone");
    assert_ne!(new, old);
    let reopen = |id: StoreId| {
        PgCounters::open(
            &db.target(),
            seal(),
            Some(Binding { id, seq: 3 }),
            3,
            never,
            CounterMetrics::new().unwrap(),
            guard(1000),
        )
    };
    assert!(matches!(reopen(old), Err(CounterError::Identity(_))));
    let b = reopen(new).unwrap();
    assert_eq!(b.snapshot(&card(1)).unwrap().record, CardRecord::default());
    // A reset whose audit line fails changes nothing.
    drop(b);
    let mut failed = None;
    for _ in 0..100 {
        match PgCounters::reset(&db.target(), &seal(), 4, |_| Err("disk full".into())) {
            Err(e) if e.to_string().contains("stop every daemon") => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => {
                failed = Some(other);
                break;
            }
        }
    }
    assert!(
        failed
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("disk full")
    );
    assert_eq!(reopen(new).unwrap().id(), new, "still the reset's store");
}
