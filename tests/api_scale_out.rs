//! Two `cofre api` processes on one PostgreSQL database, as behind a load balancer
//! (docs/scale-out.md): a bearer token from one is accepted by the other (and by a
//! restarted one); the same request sent to both at once has one effect and both
//! answers are the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use api::flow::{
    account_body, cards_per_account, customer_and_account, customer_body, embosser_body,
};
use api::{CLIENT_1, CLIENT_2, Db, System, request_id};

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
