//! Two `cofre api` processes on one PostgreSQL database, as behind a load balancer
//! (docs/scale-out.md): a bearer token from one is accepted by the other (and by a
//! restarted one); the same request sent to both at once has one effect and both
//! answers are the same; a wrong PIN sent to both at once is one try at the daemon
//! (the call in progress is known to both); and the in-progress marker of a facade
//! SIGKILLed mid-call ends with its lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::time::{Duration, Instant};

use api::flow::{
    account_body, attempts, cards_per_account, clear_pan, customer_and_account, customer_body,
    embosser_body, iso0, issue_card, security_codes, validate,
};
use api::{Api, CLIENT_1, CLIENT_2, Db, Resp, System, request_id};
use serde_json::{Value, json};

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_token_from_one_facade_works_on_the_other() {
    let Some(mut sys) = System::start("scale-token", Db::Postgres) else {
        return;
    };
    let b = sys.another_api("b");
    let on_a = sys.client(CLIENT_1);
    let on_b = b.route(&on_a);
    // The token was issued by A; B accepts it, and a record made through A is used
    // through B (an account for A's customer), and the other way round.
    let r = on_a.call("POST", "/customer", &customer_body("SCALE1"));
    r.expect(200);
    let customer = r.json["customerNumber"].as_str().unwrap().to_owned();
    on_b.call("POST", "/account", &account_body(&customer))
        .expect(200);
    let (customer_b, _) = customer_and_account(&on_b, "SCALE2");
    on_a.call("POST", "/account", &account_body(&customer_b))
        .expect(200);

    // Still another client's token on B is refused for this client's calls, and a
    // made-up one is refused on both (positive control: the same call with the real
    // token passes above).
    let other = b.route(&sys.client(CLIENT_2));
    let foreign = api::Api {
        token: other.token.clone(),
        ..on_b.clone()
    };
    assert_eq!(
        foreign
            .call("POST", "/account", &account_body(&customer))
            .status,
        401
    );
    for facade in [&on_a, &on_b] {
        let forged = api::Api {
            token: "A".repeat(60),
            ..facade.clone()
        };
        assert_eq!(
            forged
                .call("POST", "/account", &account_body(&customer))
                .status,
            401
        );
    }

    // A restarted facade accepts the tokens issued before it restarted.
    sys.kill_api();
    sys.restart_api();
    let on_a = api::Api {
        addr: sys.addr.clone(),
        ..on_a
    };
    on_a.call("POST", "/account", &account_body(&customer))
        .expect(200);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn one_request_sent_to_both_facades_at_once_has_one_effect() {
    let Some(sys) = System::start("scale-idem", Db::Postgres) else {
        return;
    };
    let b = sys.another_api("b");
    let on_a = sys.client(CLIENT_1);
    let on_b = b.route(&on_a);
    let run = request_id();
    let tag: String = run
        .chars()
        .rev()
        .filter(char::is_ascii_digit)
        .take(9)
        .collect();
    const PAIRS: usize = 12;
    let mut accounts = Vec::new();
    for i in 0..PAIRS {
        let (customer, account) = customer_and_account(&on_a, &format!("ID{i}X{tag}"));
        let body = embosser_body(&customer, &account);
        let rid = format!("both-{i}-{run}");
        // Both facades get the same signed request at once (a barrier releases them).
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let sent: Vec<_> = [on_a.clone(), on_b.clone()]
            .into_iter()
            .map(|c| {
                let (barrier, body, rid) = (barrier.clone(), body.clone(), rid.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.call_rid("POST", "/cards/embosser", &body, &rid)
                })
            })
            .collect();
        let answers: Vec<api::Resp> = sent.into_iter().map(|t| t.join().unwrap()).collect();
        for r in &answers {
            assert!(
                r.status == 200 || r.code() == "request_in_progress",
                "{}",
                r.text
            );
        }
        let done: Vec<&api::Resp> = answers.iter().filter(|r| r.status == 200).collect();
        assert!(!done.is_empty(), "at least one ran");
        if done.len() == 2 {
            assert_eq!(
                done[0].json, done[1].json,
                "both answers are the one effect's"
            );
        }
        // A retry on either facade replays that answer.
        for c in [&on_a, &on_b] {
            let again = c.call_rid("POST", "/cards/embosser", &body, &rid);
            again.expect(200);
            assert_eq!(again.json, done[0].json);
            assert_eq!(again.header("idempotent-replayed"), Some("true"));
        }
        accounts.push(account);
    }
    let cards = cards_per_account(&sys);
    for account in &accounts {
        assert_eq!(
            cards.get(account.as_str()).copied(),
            Some(1),
            "account {account}: one card for one request sent twice"
        );
    }
}

/// The body of a PIN validation.
fn validation(card: &str, block: &str) -> Value {
    json!({"organizationNumber": 800, "cardNumber": card, "currentPinBlock": block,
        "channel": "A", "keyAssociation": "IYY"})
}

/// Sends one signed call to each facade at once (a barrier releases both).
fn both_at_once(facades: [&Api; 2], body: &Value, rid: &str) -> Vec<Resp> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let sent: Vec<_> = facades
        .into_iter()
        .map(|c| {
            let (c, barrier, body, rid) =
                (c.clone(), barrier.clone(), body.clone(), rid.to_owned());
            std::thread::spawn(move || {
                barrier.wait();
                c.call_rid("POST", "/cards/pin/validation", &body, &rid)
            })
        })
        .collect();
    sent.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_wrong_pin_sent_to_both_facades_at_once_is_one_try() {
    let Some(sys) = System::start("scale-pin", Db::Postgres) else {
        return;
    };
    let b = sys.another_api("b");
    let on_a = sys.client(CLIENT_1);
    let on_b = b.route(&on_a);
    let card = issue_card(&on_a, "52998224725");
    let pan = clear_pan(&sys, &card);
    let (pin, _) = security_codes(&sys, &on_a, &card, &pan);
    let right = iso0(&pin, &pan);
    let wrong = iso0(if pin == "1234" { "4321" } else { "1234" }, &pan);
    let run = request_id();
    const ROUNDS: usize = 12;
    let mut turned_away = 0;
    for round in 0..ROUNDS {
        let rid = format!("pin-{round}-{run}");
        let body = validation(&card, &wrong);
        let answers = both_at_once([&on_a, &on_b], &body, &rid);
        for r in &answers {
            assert!(
                (r.status, r.code().as_str()) == (422, "invalid_pin")
                    || (r.status, r.code().as_str()) == (409, "request_in_progress"),
                "round {round}: {} {}",
                r.status,
                r.text
            );
        }
        let ran: Vec<&Resp> = answers.iter().filter(|r| r.status == 422).collect();
        assert!(!ran.is_empty(), "round {round}: one copy runs");
        turned_away += answers.len() - ran.len();
        // The daemon counted one try for the one request id, whichever facade ran it.
        assert_eq!(
            attempts(&on_a, &card)["cardInvalidPinTries"],
            1,
            "round {round}: {} answered, the daemon counted once",
            ran.len()
        );
        // A retry after both, on either facade, replays the recorded refusal.
        for c in [&on_a, &on_b] {
            let again = c.call_rid("POST", "/cards/pin/validation", &body, &rid);
            assert_eq!((again.status, again.code().as_str()), (422, "invalid_pin"));
            assert_eq!(again.header("idempotent-replayed"), Some("true"));
        }
        assert_eq!(attempts(&on_b, &card)["cardInvalidPinTries"], 1);
        // The recorded call's marker stays to its lease (given back at once, a copy that
        // waited on it could run with a snapshot from before the answer).
        assert!(
            live_marker(&sys, &format!("r:{rid}")).is_some(),
            "round {round}: the marker of a recorded call lives on"
        );
        // The right PIN resets the count for the next round.
        validate(&on_b, &card, &right).expect(200);
        assert_eq!(attempts(&on_a, &card)["cardInvalidPinTries"], 0);
    }
    println!("{turned_away} of {ROUNDS} copies answered request_in_progress");

    // A call refused before the daemon (its body is not JSON) records nothing and gives
    // its marker back: the same request on the other facade runs at once, not
    // `request_in_progress` for the lease (60 s; the poll gives up after 10 s).
    let rid = format!("bad-json-{run}");
    let ts = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let bad = on_a.call_raw("POST", "/cards/pin/validation", b"{not json", &rid, ts);
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_json"));
    let again = poll(Duration::from_secs(10), "the marker is given back", || {
        let r = on_b.call_raw("POST", "/cards/pin/validation", b"{not json", &rid, ts);
        (r.code() != "request_in_progress").then_some(r)
    });
    assert_eq!((again.status, again.code().as_str()), (400, "invalid_json"));
}

/// Polls `check` every 20 ms until it answers, for at most `limit`.
fn poll<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The owner of the live in-progress marker of `key`, if any (by the database's clock).
fn live_marker(sys: &System, key: &str) -> Option<String> {
    let key = key.to_owned();
    sys.with_db(async |pool| {
        sqlx::query_scalar::<_, String>(
            "SELECT owner FROM calls_in_progress WHERE request_key = $1 AND lease_until > clock_timestamp()",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
        .unwrap()
    })
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn the_marker_of_a_facade_killed_mid_call_ends_with_its_lease() {
    use nix::sys::signal::Signal;
    let Some(sys) = System::start_with_api_edits(
        "scale-lease",
        Db::Postgres,
        &[(
            "idempotency_retention = \"24h\"",
            "idempotency_retention = \"24h\"\ncall_lease = \"4s\"",
        )],
    ) else {
        return;
    };
    let mut b = sys.another_api("b");
    let on_a = sys.client(CLIENT_1);
    let on_b = b.route(&on_a);
    let card = issue_card(&on_a, "52998224725");
    let pan = clear_pan(&sys, &card);
    let (pin, _) = security_codes(&sys, &on_a, &card, &pan);
    let body = validation(&card, &iso0(&pin, &pan));
    let rid = format!("lease-{}", request_id());
    let key = format!("r:{rid}");

    // B takes the call and waits on the stopped daemon; then B is SIGKILLed.
    sys.hsm.signal(Signal::SIGSTOP);
    let sent = {
        let (on_b, body, rid) = (on_b.clone(), body.clone(), rid.clone());
        std::thread::spawn(move || on_b.try_call_rid("POST", "/cards/pin/validation", &body, &rid))
    };
    let owner = poll(Duration::from_secs(30), "B marks the call", || {
        live_marker(&sys, &key)
    });
    b.kill();
    assert!(sent.join().unwrap().is_none_or(|r| r.status != 200));
    sys.hsm.signal(Signal::SIGCONT);

    // A turns the copy away while B's marker lives (checked by the database's clock
    // after the answer), then runs it once the marker ended.
    let first = on_a.call_rid("POST", "/cards/pin/validation", &body, &rid);
    if live_marker(&sys, &key).as_deref() == Some(owner.as_str()) {
        assert_eq!(
            (first.status, first.code().as_str()),
            (409, "request_in_progress"),
            "{}",
            first.text
        );
    }
    let done = poll(Duration::from_secs(60), "the marker ends", || {
        let r = on_a.call_rid("POST", "/cards/pin/validation", &body, &rid);
        if r.status == 200 {
            return Some(r);
        }
        assert_eq!(
            (r.status, r.code().as_str()),
            (409, "request_in_progress"),
            "{}",
            r.text
        );
        None
    });
    assert_eq!(done.header("idempotent-replayed"), None);
    assert_ne!(live_marker(&sys, &key).as_deref(), Some(owner.as_str()));
    let again = on_a.call_rid("POST", "/cards/pin/validation", &body, &rid);
    again.expect(200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}
