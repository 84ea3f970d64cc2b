//! A mass issue outlives the facade that runs it (docs/scale-out.md, "Mass issue
//! leases"). The facade running a batch is SIGKILLed once some cards are committed (the
//! test polls the progress until it sees them: no sleep proves anything); then on
//! PostgreSQL the second facade on the database takes the batch over when the lease
//! (`bureau.lease = "2s"` in the configuration) ends, and on SQLite the restarted
//! facade resumes it. Either way the batch ends `done` with every sequence issued
//! exactly once, none missing, distinct PANs, and an embosser file with every card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use api::mass::{SPEC, body, decrypt, wait_done};
use api::{Api, CLIENT_1, Db, System};
use cofre::crypto::pan::luhn_valid;
use serde_json::Value;

const CARDS: i64 = 2500;

/// One row of five integers from `sql` with `$1` = `id`.
fn five(sys: &System, sql: &'static str, id: i64) -> (i64, i64, i64, i64, i64) {
    sys.with_db(async |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

fn owner_of(sys: &System, id: i64) -> String {
    sys.with_db(async |pool| {
        sqlx::query_scalar("SELECT owner FROM mass_issues WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    })
}

/// Polls the progress until 200 cards, not all, are committed.
fn wait_mid_way(c: &Api, id: &str) -> i64 {
    let start = Instant::now();
    loop {
        let r = c.call("GET", &format!("/cofre/v1/mass-issues/{id}"), &Value::Null);
        r.expect(200);
        let issued = r.json["issued"].as_i64().unwrap();
        if issued >= 200 {
            assert_eq!(r.json["state"], "running", "{}", r.text);
            assert!(issued < CARDS, "the batch ended before it could be cut");
            return issued;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no card committed in 120 s: {}",
            r.text
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn takeover(db: Db) {
    let Some(mut sys) = System::start_with_api_edits(
        "mass-takeover",
        db,
        &[(
            "output_dir = \"state/embosser\"",
            "output_dir = \"state/embosser\"\nlease = \"2s\"",
        )],
    ) else {
        return;
    };
    let second = (db == Db::Postgres).then(|| sys.another_api("b"));
    let c = sys.client(CLIENT_1);
    let r = c.call("POST", SPEC, &body(1, CARDS));
    r.expect(200).check("POST", SPEC);
    let id = r.json["outputArea"]["massIssueId"]
        .as_str()
        .unwrap()
        .to_owned();
    let numeric: i64 = id.parse().unwrap();
    let cut_at = wait_mid_way(&c, &id);

    // SIGKILL the instance that runs the batch; the other one (or the restarted one)
    // must finish it.
    let survivor = match second {
        Some(mut b) => {
            let owner = owner_of(&sys, numeric);
            assert!(!owner.is_empty());
            if sys.api_log().contains(&owner) {
                sys.kill_api();
                (b.route(&c), Some(b))
            } else {
                assert!(b.log().contains(&owner), "the owner is one of the two");
                b.kill();
                (c.clone(), None)
            }
        }
        None => {
            sys.kill_api();
            sys.restart_api();
            (
                Api {
                    addr: sys.addr.clone(),
                    ..c.clone()
                },
                None,
            )
        }
    };
    let (on, other_facade) = survivor;
    let (done, _) = wait_done(&on, &id);
    eprintln!("cut at {cut_at} of {CARDS} cards; finished: {done}");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["issued"], CARDS);
    assert_eq!(done["failed"], 0);
    let log = match &other_facade {
        Some(b) => b.log(),
        None => sys.api_log(),
    };
    assert!(log.contains("mass issue resumed"), "the batch was resumed");
    every_card_once(&sys, &on, &id);
}

/// The batch is `done` with every sequence issued exactly once, none missing, every PAN
/// distinct, no bureau value left in the database, and every card in the file.
fn every_card_once(sys: &System, on: &Api, id: &str) {
    let numeric: i64 = id.parse().unwrap();
    let r = on.call("GET", &format!("/cofre/v1/mass-issues/{id}"), &Value::Null);
    r.expect(200);
    assert_eq!(r.json["state"], "done", "{}", r.text);
    assert_eq!(r.json["issued"], CARDS);

    // Every sequence exactly once, none missing, every PAN distinct; the bureau values
    // kept for the takeover are gone.
    let stats = five(
        sys,
        "SELECT COUNT(*), COUNT(DISTINCT sequence), MIN(sequence), MAX(sequence), COUNT(DISTINCT lookup_token) FROM batch_cards WHERE mass_issue_id = $1",
        numeric,
    );
    assert_eq!(stats, (CARDS, CARDS, 1, CARDS, CARDS));
    let kept = five(
        sys,
        "SELECT COUNT(*), COUNT(*), COUNT(*), COUNT(*), COUNT(*) FROM batch_cards WHERE mass_issue_id = $1 AND (encrypted_pan <> '' OR encrypted_codes <> '')",
        numeric,
    );
    assert_eq!(kept.0, 0, "bureau values left in the database");

    // The embosser file has every card, in order, each PAN once.
    let r = on.call(
        "GET",
        &format!("/cofre/v1/mass-issues/{id}/embosser-file"),
        &Value::Null,
    );
    r.expect(200);
    let lines: Vec<&str> = r.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), usize::try_from(CARDS).unwrap() + 2);
    assert_eq!(lines[lines.len() - 1], format!("T|{CARDS:06}"));
    let mut pans = HashSet::new();
    for (i, line) in lines[1..lines.len() - 1].iter().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[1], format!("{:06}", i + 1), "{line}");
        let pan = decrypt(f[6]);
        assert!(luhn_valid(pan.as_bytes()));
        assert_eq!(f[3], format!("{}******{}", &pan[..6], &pan[12..]));
        assert!(decrypt(f[7]).starts_with("CVV="));
        pans.insert(pan);
    }
    assert_eq!(pans.len(), lines.len() - 2, "a PAN repeats");
}

#[test]
fn a_batch_cut_by_a_restart_is_resumed_sqlite() {
    takeover(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_batch_whose_facade_was_killed_is_taken_over_postgres() {
    takeover(Db::Postgres);
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

/// The owner is paused (SIGSTOP) past its lease, as a hung or cut-off instance would
/// be: the other instance takes the batch over and finishes it; the paused one, resumed
/// (SIGCONT), finds itself fenced out and changes nothing.
#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_paused_owner_is_fenced_out_postgres() {
    let Some(mut sys) = System::start_with_api_edits(
        "mass-paused",
        Db::Postgres,
        &[(
            "output_dir = \"state/embosser\"",
            "output_dir = \"state/embosser\"\nlease = \"2s\"",
        )],
    ) else {
        return;
    };
    // A transaction left open by the paused process is ended by the server (as an
    // operator configures it, docs/scale-out.md); the facade restarts to use it.
    let name = sys.database.rsplit_once('/').unwrap().1.to_owned();
    sys.with_db(async |pool| {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '3s'"
        )))
        .execute(pool)
        .await
        .unwrap();
    });
    sys.kill_api();
    sys.restart_api();
    let b = sys.another_api("b");
    let c = sys.client(CLIENT_1);
    let r = c.call("POST", SPEC, &body(1, CARDS));
    r.expect(200).check("POST", SPEC);
    let id = r.json["outputArea"]["massIssueId"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_mid_way(&c, &id);
    let owner = owner_of(&sys, id.parse().unwrap());
    let a_owns = sys.api_log().contains(&owner);
    assert!(
        a_owns || b.log().contains(&owner),
        "the owner is one of the two"
    );
    let (paused, on) = if a_owns {
        (sys.api.id(), b.route(&c))
    } else {
        (b.child.id(), c.clone())
    };
    signal(paused, "-STOP");
    let (done, _) = wait_done(&on, &id);
    assert_eq!(done["state"], "done", "{done}");
    signal(paused, "-CONT");
    // The resumed owner notices (its renewal or its next commit is refused) ...
    let start = Instant::now();
    let noticed = || {
        let log = if a_owns { sys.api_log() } else { b.log() };
        log.contains("mass issue lease lost") || log.contains("mass issue taken over")
    };
    while !noticed() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the resumed owner did not notice in 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... and the batch is as the other instance finished it.
    every_card_once(&sys, &on, &id);
}
