//! Mass card issue over HTTP against real `cofre hsm` and `cofre api` processes, on SQLite
//! and PostgreSQL: refused requests create nothing; a batch of 1,000 cards runs in the
//! background to `done`, every card distinct, and its embosser file decrypts (with the
//! bureau's clear example transport key) to Luhn-valid PANs of the product's BIN that
//! appear nowhere in the database, the file or the log; a queued request is updated and
//! another cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;

use std::collections::HashSet;
use std::time::Instant;

use api::{Api, CLIENT_1, Db, System};
use cofre::crypto::pan::luhn_valid;
use serde_json::{Value, json};

use api::mass::{SPEC, body, decrypt, wait_done};

/// (token, lookup_token) of every card of a batch, read from the database.
fn batch_rows(sys: &System, id: i64) -> Vec<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT token, lookup_token FROM batch_cards WHERE mass_issue_id = $1")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    })
}

fn count(sys: &System, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&sys.database).await.unwrap();
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    })
}

fn refused(c: &Api, body: &Value, status: u16, code: &str, field: &str) {
    let r = c.call("POST", SPEC, body);
    r.expect(status).check("POST", SPEC);
    assert_eq!(r.code(), code, "{}", r.text);
    assert_eq!(r.json["error"]["field"], field, "{}", r.text);
}

fn mass_issue(db: Db) {
    let Some(sys) = System::start("api-mass", db) else {
        return;
    };
    let c = sys.client(CLIENT_1);
    let inquiry = format!("{SPEC}?organizationNumber=800&logo=1&serviceType=1");

    // Refused: nothing is created.
    refused(
        &c,
        &body(1, 0),
        422,
        "quantity_out_of_range",
        "/quantityToCreate",
    );
    refused(
        &c,
        &body(1, 1_000_001),
        422,
        "quantity_out_of_range",
        "/quantityToCreate",
    );
    refused(&c, &body(9, 10), 422, "unknown_product", "/logo");
    let mut bad = body(1, 10);
    bad["organizationNumber"] = json!(801);
    refused(&c, &bad, 422, "unknown_organization", "/organizationNumber");
    let mut bad = body(1, 10);
    bad["expiryDate"] = json!("2001-01-01");
    refused(&c, &bad, 422, "invalid_expiry_date", "/expiryDate");
    let mut bad = body(1, 10);
    bad["functionType"] = json!("M");
    refused(&c, &bad, 422, "mass_issue_not_found", "/logo");
    let mut bad = body(1, 10);
    bad["quantityToCreate"] = json!("many");
    refused(&c, &bad, 400, "schema_violation", "/quantityToCreate");
    let mut bad = body(1, 10);
    bad.as_object_mut().unwrap().remove("expiryDate");
    let r = c.call("POST", SPEC, &bad);
    r.expect(400);
    assert_eq!(r.code(), "schema_violation");
    let r = c.call("GET", &inquiry, &Value::Null);
    r.expect(422).check("GET", SPEC);
    assert_eq!(r.code(), "mass_issue_not_found");
    assert_eq!(count(&sys, "SELECT COUNT(*) FROM mass_issues"), 0);
    assert_eq!(count(&sys, "SELECT COUNT(*) FROM batch_cards"), 0);
    let r = c.call("GET", &format!("{SPEC}?logo=1&serviceType=1"), &Value::Null);
    r.expect(400);
    assert_eq!(r.code(), "missing_parameter");

    // The batch: answered at once (the answer says `queued`: it was written before any
    // card was made), run in the background.
    let asked = Instant::now();
    let r = c.call("POST", SPEC, &body(1, 1000));
    r.expect(200).check("POST", SPEC);
    let out = &r.json["outputArea"];
    assert_eq!(out["massIssueState"], "queued", "{}", r.text);
    assert_eq!(out["addStatus"], 1);
    assert_eq!(out["quantityToCreate"], 1000);
    assert_eq!(out["logo"], 1);
    let id = out["massIssueId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 19);

    // While it runs: a request for another product waits queued, so it can be updated
    // (then made with the new quantity) and a third one cancelled.
    let r = c.call("POST", SPEC, &body(2, 5));
    r.expect(200).check("POST", SPEC);
    let second = r.json["outputArea"]["massIssueId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.call("POST", SPEC, &body(2, 7));
    r.expect(200).check("POST", SPEC);
    assert_eq!(r.json["outputArea"]["addStatus"], 2, "{}", r.text);
    assert_eq!(r.json["outputArea"]["massIssueId"], second.as_str());
    let r = c.call("POST", SPEC, &body(3, 5));
    r.expect(200).check("POST", SPEC);
    let third = r.json["outputArea"]["massIssueId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut cancel = body(3, 5);
    cancel["status"] = json!(9);
    let r = c.call("POST", SPEC, &cancel);
    r.expect(200).check("POST", SPEC);
    assert_eq!(r.json["outputArea"]["addStatus"], 9);
    assert_eq!(r.json["outputArea"]["massIssueState"], "cancelled");

    let (done, seen) = wait_done(&c, &id);
    let took = asked.elapsed();
    eprintln!("1000 cards in {took:?}; progress polled: {seen:?}");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["requested"], 1000);
    assert_eq!(done["issued"], 1000);
    assert_eq!(done["failed"], 0);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress went back");
    let name = done["fileName"].as_str().unwrap().to_owned();

    // The processor's inquiry: progress and the cards, by page.
    let r = c.call("GET", &inquiry, &Value::Null);
    r.expect(200).check("GET", SPEC);
    let out = &r.json["outputArea"];
    assert_eq!(out["massIssueId"], id.as_str());
    assert_eq!(out["totalCardsCount"], 1000);
    assert_eq!(out["totalPagesCount"], 20);
    assert_eq!(out["hasMoreRecords"], true);
    assert_eq!(out["cards"].as_array().unwrap().len(), 50);
    // Cursor pagination walks the same 1,000 cards.
    let mut cursor = out["nextCursor"].as_str().unwrap().to_owned();
    let mut walked = 50;
    loop {
        let r = c.call("GET", &format!("{inquiry}&cursor={cursor}"), &Value::Null);
        r.expect(200).check("GET", SPEC);
        walked += r.json["outputArea"]["cards"].as_array().unwrap().len();
        match r.json["outputArea"]["nextCursor"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(walked, 1000);
    let r = c.call("GET", &format!("{inquiry}&page=20"), &Value::Null);
    r.expect(200).check("GET", SPEC);
    assert_eq!(r.json["outputArea"]["hasMoreRecords"], false);
    assert_eq!(r.json["outputArea"]["cards"].as_array().unwrap().len(), 50);

    // 1,000 batch cards, all distinct.
    let rows = batch_rows(&sys, id.parse().unwrap());
    assert_eq!(rows.len(), 1000);
    let tokens: HashSet<_> = rows.iter().map(|r| &r.0).collect();
    let lookups: HashSet<_> = rows.iter().map(|r| &r.1).collect();
    assert_eq!(tokens.len(), rows.len());
    assert_eq!(lookups.len(), rows.len());

    // The embosser file, through the API and on disk.
    let r = c.call(
        "GET",
        &format!("/cofre/v1/mass-issues/{id}/embosser-file"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json["name"], name.as_str());
    let lines: Vec<String> = r.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    let disk = std::fs::read_to_string(sys.dir.join("state/embosser").join(&name)).unwrap();
    assert_eq!(disk.lines().collect::<Vec<_>>(), lines);
    assert_eq!(lines.len(), 1002);
    let header: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(header[..4], ["H", "COFRE-EMBOSSER", "1", id.as_str()]);
    assert_eq!(lines[1001], "T|001000");
    let mut pans = HashSet::new();
    for (i, line) in lines[1..1001].iter().enumerate() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 8, "{line}");
        assert_eq!(f[0], "D");
        assert_eq!(f[1], format!("{:06}", i + 1));
        assert_eq!(f[2], "classic");
        assert_eq!(f[5], "201");
        let pan = decrypt(f[6]);
        assert_eq!(pan.len(), 16);
        assert!(pan.starts_with("455555"));
        assert!(luhn_valid(pan.as_bytes()));
        assert_eq!(f[3], format!("{}******{}", &pan[..6], &pan[12..]));
        assert!(!line.contains(&pan));
        if i < 5 {
            let codes = decrypt(f[7]);
            let parts: Vec<&str> = codes.split(';').collect();
            assert_eq!(parts.len(), 4, "codes fields");
            for (p, name) in parts.iter().zip(["CVV=", "CVV2=", "ICVV=", "PIN="]) {
                let v = p.strip_prefix(name).expect("codes field name");
                assert!(v.bytes().all(|b| b.is_ascii_digit()) && v.len() >= 3);
            }
        }
        pans.insert(pan);
    }
    assert_eq!(pans.len(), 1000, "a PAN repeats");

    // No clear PAN anywhere.
    let dump = sys.dump_database();
    let log = sys.api_log();
    assert!(
        dump.contains(rows[0].0.as_str()),
        "the dump has no batch card"
    );
    assert!(!log.contains("response breaks the spec"), "{log}");
    for pan in &pans {
        assert!(!dump.contains(pan.as_str()), "a PAN is in the database");
        assert!(!disk.contains(pan.as_str()), "a PAN is in the file");
        assert!(!log.contains(pan.as_str()), "a PAN is in the log");
    }

    // The queued request ran with its updated quantity; the cancelled one never ran.
    let (second, _) = wait_done(&c, &second);
    assert_eq!(second["state"], "done");
    assert_eq!(second["issued"], 7);
    let r = c.call(
        "GET",
        &format!("/cofre/v1/mass-issues/{third}"),
        &Value::Null,
    );
    r.expect(200);
    assert_eq!(r.json["state"], "cancelled");
    assert_eq!(r.json["issued"], 0);
    let r = c.call(
        "GET",
        &format!("/cofre/v1/mass-issues/{third}/embosser-file"),
        &Value::Null,
    );
    r.expect(409);
    assert_eq!(r.code(), "mass_issue_not_done");
    let r = c.call("GET", "/cofre/v1/mass-issues/123", &Value::Null);
    r.expect(404);
    assert_eq!(r.code(), "mass_issue_not_found");
    // Nothing queued any more: modify is refused.
    let mut modify = body(1, 10);
    modify["functionType"] = json!("M");
    refused(&c, &modify, 422, "mass_issue_not_found", "/logo");
}

#[test]
fn mass_issue_sqlite() {
    mass_issue(Db::Sqlite);
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn mass_issue_postgres() {
    mass_issue(Db::Postgres);
}
