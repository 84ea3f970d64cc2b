//! The facade is SIGKILLed during 40 concurrent card issues (`POST /cards/embosser`),
//! restarted on the same database, and every call is retried with its request id: each
//! either replays its first answer or issues its card now, exactly once; no account has
//! two cards from one request. On SQLite no retry is told `request_in_progress`; on
//! PostgreSQL the killed instance's in-progress markers (docs/scale-out.md) turn a retry
//! away until their lease (2 s here) ends, never longer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::sync::mpsc;

use api::flow::{cards_per_account, customer_and_account, embosser_body};
use api::{CLIENT_1, Db, System, request_id};

const CALLS: usize = 40;

fn crash_during_issues(db: Db) {
    let lease = (
        "idempotency_retention = \"24h\"",
        "idempotency_retention = \"24h\"\ncall_lease = \"2s\"",
    );
    let Some(mut sys) = System::start_with_api_edits("api-crash", db, &[lease]) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let run = request_id();
    let tag: String = run
        .chars()
        .rev()
        .filter(char::is_ascii_digit)
        .take(9)
        .collect();
    let calls: Vec<(String, String, serde_json::Value)> = (0..CALLS)
        .map(|i| {
            let (customer, account) = customer_and_account(&c, &format!("CR{i}X{tag}"));
            let body = embosser_body(&customer, &account);
            (format!("crash-{i}-{run}"), account, body)
        })
        .collect();

    // 40 concurrent issues; the facade is killed as soon as the first answer is in, so
    // some calls committed and answered, some committed unanswered, some never ran.
    let (answered, first_answer) = mpsc::channel();
    let threads: Vec<_> = calls
        .iter()
        .map(|(rid, _, body)| {
            let (c, rid, body, answered) = (c.clone(), rid.clone(), body.clone(), answered.clone());
            std::thread::spawn(move || {
                let r = c.try_call_rid("POST", "/cards/embosser", &body, &rid);
                let _ = answered.send(());
                r
            })
        })
        .collect();
    first_answer.recv().unwrap();
    sys.kill_api();
    let before: Vec<Option<api::Resp>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let answered_before: usize = before
        .iter()
        .filter(|r| r.as_ref().is_some_and(|r| r.status == 200))
        .count();
    assert!(
        answered_before >= 1,
        "the first answer came before the kill"
    );

    sys.restart_api();
    let c = sys.client(CLIENT_1);
    let mut replays = 0;
    for ((rid, account, body), first) in calls.iter().zip(&before) {
        let mut r = c.call_rid("POST", "/cards/embosser", body, rid);
        let start = std::time::Instant::now();
        while db == Db::Postgres && r.code() == "request_in_progress" {
            // Bounded far past the lease: a marker that outlives it fails here.
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "{}",
                r.text
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
            r = c.call_rid("POST", "/cards/embosser", body, rid);
        }
        assert_ne!(
            r.code(),
            "request_in_progress",
            "nothing stays pending: {}",
            r.text
        );
        r.expect(200);
        assert_eq!(r.json["accountNumber"], account.as_str());
        if let Some(first) = first.as_ref().filter(|f| f.status == 200) {
            assert_eq!(r.json, first.json, "a retry replays the answer it had");
            assert_eq!(r.header("idempotent-replayed"), Some("true"));
        }
        if r.header("idempotent-replayed") == Some("true") {
            replays += 1;
        }
        // A second retry is always a replay of the same card.
        let again = c.call_rid("POST", "/cards/embosser", body, rid);
        again.expect(200);
        assert_eq!(again.json["cardNumber"], r.json["cardNumber"]);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert!(replays >= answered_before);
    let cards = cards_per_account(&sys);
    for (_, account, _) in &calls {
        assert_eq!(
            cards.get(account.as_str()).copied(),
            Some(1),
            "account {account}: one card per request"
        );
    }
}

#[test]
fn crash_during_issues_sqlite() {
    crash_during_issues(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn crash_during_issues_postgres() {
    crash_during_issues(Db::Postgres);
}
