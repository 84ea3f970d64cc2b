//! Keys on every node of a pair (docs/pair.md, "One key ledger"): a key imported or
//! rotated on one daemon is used by the other without a restart or a copy; key changes
//! on both daemons at once leave one linear audit chain; a document tampered with in
//! the database is refused and the daemon keeps its keys; the database and the logs
//! hold no key in clear; `cofre keys --config <node's hsm.toml>` run on either node
//! changes the keys of both running daemons through the shared ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod pair;

use std::time::{Duration, Instant};

use cofre::crypto::{ClearKey, tr31};
use cofre::keys::{Lmk, LmkSource};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::Raw;
use pair::{FreshDb, Pair, PrivatePostgres};

const KEK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
/// A clear TDES MAC key (ISO 9797-1 algorithm 3), imported under the example KEK.
const RETAIL: &str = "0123456789ABCDEFFEDCBA9876543210";
const DATA: &[u8] = b"0200 pair";

/// The longest a change may take to reach the other daemon (it polls every 2 s).
const REACH: Duration = Duration::from_secs(30);

/// The example retail MAC key as a TR-31 block under the example KEK.
fn mac_key_block() -> String {
    tr31::wrap(
        &ClearKey::from_hex(KEK).unwrap(),
        &tr31::Header::parse("D0000M3TC00E0000").unwrap(),
        &ClearKey::from_hex(RETAIL).unwrap(),
        &mut rand::rng(),
    )
    .unwrap()
}

fn import_mac_key(so: &mut Raw, id: &str) -> cofre::protocol::Status {
    let block = mac_key_block();
    so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, id)
            .str(Tag::Kek, "kek.example")
            .str(Tag::KeyBlock, &block);
    })
    .status()
}

fn mac_generate(c: &mut Raw, id: &str) -> daemon::Resp {
    c.call(Opcode::MacGenerate, |w| {
        w.str(Tag::Key, id).bytes(Tag::Data, DATA);
    })
}

fn mac_verify(c: &mut Raw, id: &str, mac: &[u8]) -> daemon::Resp {
    c.call(Opcode::MacVerify, |w| {
        w.str(Tag::Key, id)
            .bytes(Tag::Data, DATA)
            .bytes(Tag::Mac, mac);
    })
}

/// Asks `ask` until it is true, at most [`REACH`]; the answer is the proof, the pause
/// between two questions only spares the CPU.
fn eventually(what: &str, mut ask: impl FnMut() -> bool) {
    let deadline = Instant::now() + REACH;
    while !ask() {
        assert!(Instant::now() < deadline, "not within {REACH:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The ledger row: (generation, key store document, audit log).
fn ledger_row(url: &str) -> (i64, String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT generation, document, audit FROM cofre_key_ledger WHERE id = 1")
            .fetch_one(&mut c)
            .await
            .unwrap()
    })
}

fn example_lmk() -> Lmk {
    let dir = daemon::example_dir().join("lmk");
    LmkSource::Components(vec![
        dir.join("component-1.txt"),
        dir.join("component-2.txt"),
    ])
    .load()
    .unwrap()
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_key_imported_or_rotated_on_one_daemon_is_used_by_the_other() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-keys", &db.url);
    let mut so_a = p.a.connect("security-officer-1");
    let (mut host_a, mut host_b) = (p.a.connect("issuing-host-1"), p.b.connect("issuing-host-1"));
    // Before: B does not know the key.
    assert_eq!(
        mac_generate(&mut host_b, "mac.pair").status(),
        Status::UnknownKey
    );
    assert_eq!(import_mac_key(&mut so_a, "mac.pair"), Status::Ok);
    let v1 = mac_generate(&mut host_a, "mac.pair");
    assert_eq!((v1.status(), v1.u32(Tag::KeyVersion)), (Status::Ok, 1));
    let expected = cofre::crypto::mac::retail_mac(&ClearKey::from_hex(RETAIL).unwrap(), DATA)
        .unwrap()
        .to_vec();
    assert_eq!(v1.bytes(Tag::Mac), expected);
    eventually("B verifies with the key imported on A", || {
        let r = mac_verify(&mut host_b, "mac.pair", &expected);
        r.status() == Status::Ok && r.u32(Tag::KeyVersion) == 1
    });

    // Rotated on A: B generates and verifies with version 2, the same key as A's.
    let r = so_a.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "mac.pair");
    });
    assert_eq!((r.status(), r.u32(Tag::KeyVersion)), (Status::Ok, 2));
    let v2 = mac_generate(&mut host_a, "mac.pair");
    assert_eq!(v2.u32(Tag::KeyVersion), 2);
    assert_ne!(v2.bytes(Tag::Mac), expected);
    eventually("B generates with the version rotated on A", || {
        let r = mac_generate(&mut host_b, "mac.pair");
        r.status() == Status::Ok && r.u32(Tag::KeyVersion) == 2
    });
    assert_eq!(
        mac_generate(&mut host_b, "mac.pair").bytes(Tag::Mac),
        v2.bytes(Tag::Mac)
    );
    let r = mac_verify(&mut host_b, "mac.pair", &v2.bytes(Tag::Mac));
    assert_eq!((r.status(), r.u32(Tag::KeyVersion)), (Status::Ok, 2));
    // Version 1 still verifies there (verify-only after rotation).
    let r = mac_verify(&mut host_b, "mac.pair", &expected);
    assert_eq!((r.status(), r.u32(Tag::KeyVersion)), (Status::Ok, 1));

    // A change made on B reaches A the same way, and B's local copy is the ledger's.
    let mut so_b = p.b.connect("security-officer-1");
    let r = so_b.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "mac.pair");
    });
    assert_eq!((r.status(), r.u32(Tag::KeyVersion)), (Status::Ok, 3));
    eventually("A generates with the version rotated on B", || {
        mac_generate(&mut host_a, "mac.pair").u32(Tag::KeyVersion) == 3
    });
    let (_, document, audit) = ledger_row(&db.url);
    assert_eq!(
        std::fs::read_to_string(p.b.dir.join("audit.log")).unwrap(),
        audit
    );
    assert_eq!(
        std::fs::read_to_string(p.b.dir.join("keys.json")).unwrap(),
        document
    );

    // No key in clear in the database or the logs. Positive control: the same search
    // finds the key's id and the clear key where they are.
    let dump = format!("{document}\n{audit}");
    assert!(dump.contains("mac.pair"));
    let control = format!("control {RETAIL}");
    for text in [&control, &dump, &p.a.log_text(), &p.b.log_text()] {
        let found = text.to_uppercase().contains(RETAIL) || text.contains(KEK);
        assert_eq!(
            found,
            std::ptr::eq(text, &control),
            "clear key in {text:.200}"
        );
    }
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn key_changes_on_both_daemons_at_once_leave_one_chain() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-keys-race", &db.url);
    let (_, _, before) = ledger_row(&db.url);
    let lines_before = before.lines().count();
    const EACH: u32 = 6;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = [
        (p.a.addr.clone(), "mac.race.a"),
        (p.b.addr.clone(), "mac.race.b"),
    ]
    .into_iter()
    .map(|(addr, id)| {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let mut so = Raw::connect(&addr, "security-officer-1").unwrap();
            barrier.wait();
            let mut statuses = vec![import_mac_key(&mut so, id)];
            for _ in 1..EACH {
                let r = so.call(Opcode::KeyRotate, |w| {
                    w.str(Tag::Key, id);
                });
                statuses.push(r.status());
            }
            statuses
        })
    })
    .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), vec![Status::Ok; EACH as usize]);
    }
    // One chain in the ledger, with every change once, verified under the LMK.
    let (generation, document, audit) = ledger_row(&db.url);
    let lmk = example_lmk();
    let snapshot = cofre::hsm::ledger::verify(&document, &audit, &lmk).unwrap();
    let head = snapshot.head.unwrap();
    assert_eq!(head.seq as usize, lines_before + 2 * EACH as usize);
    assert_eq!(audit.lines().count(), lines_before + 2 * EACH as usize);
    assert!(generation > 2 * i64::from(EACH));
    for id in ["mac.race.a", "mac.race.b"] {
        assert_eq!(audit.matches(&format!("\"{id}\"")).count(), EACH as usize);
        let versions: Vec<_> = snapshot
            .store
            .list()
            .iter()
            .filter(|r| r.id == id)
            .map(|r| r.version)
            .collect();
        assert_eq!(versions, (1..=EACH).collect::<Vec<_>>());
    }
    // Both daemons end on that chain: each one's local copy is the ledger's.
    for d in [&p.a, &p.b] {
        eventually("each daemon holds the ledger's last generation", || {
            std::fs::read_to_string(d.dir.join("audit.log")).unwrap() == audit
        });
        let mut host = d.connect("issuing-host-1");
        for id in ["mac.race.a", "mac.race.b"] {
            assert_eq!(mac_generate(&mut host, id).u32(Tag::KeyVersion), EACH);
        }
    }
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_tampered_document_is_refused_and_the_old_keys_stay() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-keys-tamper", &db.url);
    let mut so_a = p.a.connect("security-officer-1");
    let mut host_b = p.b.connect("issuing-host-1");
    assert_eq!(import_mac_key(&mut so_a, "mac.pair"), Status::Ok);
    eventually("B has the imported key", || {
        mac_generate(&mut host_b, "mac.pair").status() == Status::Ok
    });
    let before = mac_generate(&mut host_b, "mac.pair").bytes(Tag::Mac);
    // Someone with access to the database edits the key's record (its exportability)
    // and bumps the generation: the store MAC no longer verifies.
    pair::sql(
        &db.url,
        "UPDATE cofre_key_ledger SET generation = generation + 1, \
         document = replace(document, '\"exportable\": true', '\"exportable\": false')",
    );
    let (_, document, _) = ledger_row(&db.url);
    assert!(document.contains("\"exportable\": false"), "the edit took");
    eventually("B logs the refusal", || {
        p.b.log_text()
            .contains("shared key store refused; keeping the previous keys")
    });
    let log = p.b.log_text();
    assert!(log.contains("MAC"), "{log}");
    // B keeps working on its keys.
    let r = mac_generate(&mut host_b, "mac.pair");
    assert_eq!((r.status(), r.bytes(Tag::Mac)), (Status::Ok, before));
    // A key change cannot be built on the tampered document.
    let r = so_a.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "mac.pair");
    });
    assert_eq!(r.status(), Status::StoreUnavailable, "{}", r.message());
    let mut host_a = p.a.connect("issuing-host-1");
    assert_eq!(
        mac_generate(&mut host_a, "mac.pair").u32(Tag::KeyVersion),
        1
    );
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn with_postgres_stopped_key_changes_are_refused_and_keys_keep_working() {
    let server = PrivatePostgres::start();
    let db = FreshDb::on(&server.url());
    let p = Pair::start("pair-keys-pg-down", &db.url);
    let mut so_a = p.a.connect("security-officer-1");
    let (mut host_a, mut host_b) = (p.a.connect("issuing-host-1"), p.b.connect("issuing-host-1"));
    assert_eq!(import_mac_key(&mut so_a, "mac.pair"), Status::Ok);
    eventually("B has the imported key", || {
        mac_generate(&mut host_b, "mac.pair").status() == Status::Ok
    });
    server.down();
    // No change without the ledger; both daemons keep using the keys they hold.
    let r = so_a.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "mac.pair");
    });
    assert_eq!(r.status(), Status::StoreUnavailable, "{}", r.message());
    for host in [&mut host_a, &mut host_b] {
        let r = mac_generate(host, "mac.pair");
        assert_eq!((r.status(), r.u32(Tag::KeyVersion)), (Status::Ok, 1));
    }
    eventually("B logs the outage", || {
        p.b.log_text().contains("cannot look for key changes")
    });
    server.up();
    // Back by itself: the next change is made and reaches the other daemon.
    eventually("a rotation on A succeeds once PostgreSQL is back", || {
        let r = so_a.call(Opcode::KeyRotate, |w| {
            w.str(Tag::Key, "mac.pair");
        });
        assert!(
            matches!(r.status(), Status::Ok | Status::StoreUnavailable),
            "{}",
            r.message()
        );
        r.status() == Status::Ok
    });
    eventually("B generates with version 2", || {
        mac_generate(&mut host_b, "mac.pair").u32(Tag::KeyVersion) == 2
    });
    assert!(p.b.log_text().contains("key ledger reachable again"));
    assert_eq!(
        p.b.log_text()
            .matches("cannot look for key changes")
            .count(),
        1,
        "logged once per outage"
    );
}

/// `cofre keys <args>` on a node's files, with `--config` naming its `hsm.toml` when
/// `config` is set; (success, stdout, stderr).
fn keys_on_node(dir: &std::path::Path, config: bool, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"));
    cmd.arg("keys")
        .args(args)
        .arg("--store")
        .arg(dir.join("keys.json"))
        .arg("--lmk-component")
        .arg(dir.join("lmk/component-1.txt"))
        .arg("--lmk-component")
        .arg(dir.join("lmk/component-2.txt"))
        .args(["--operator", "so-cli"]);
    if config {
        cmd.arg("--config").arg(dir.join("hsm.toml"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn cofre_keys_on_a_node_of_a_pair_changes_both_running_daemons() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-keys-cli", &db.url);
    let (mut host_a, mut host_b) = (p.a.connect("issuing-host-1"), p.b.connect("issuing-host-1"));
    assert_eq!(
        mac_generate(&mut host_b, "mac.cli").status(),
        Status::UnknownKey
    );
    let (generation_before, _, _) = ledger_row(&db.url);

    // Imported with `cofre keys` on A's node: both running daemons use it.
    let block = mac_key_block();
    let mut printed = Vec::new();
    let (ok, out, err) = keys_on_node(
        &p.a.dir,
        true,
        &[
            "import",
            "--id",
            "mac.cli",
            "--kek",
            "kek.example",
            "--tr31",
            &block,
        ],
    );
    assert!(ok, "{out}{err}");
    printed.extend([out, err]);
    let expected = cofre::crypto::mac::retail_mac(&ClearKey::from_hex(RETAIL).unwrap(), DATA)
        .unwrap()
        .to_vec();
    for (name, host) in [("A", &mut host_a), ("B", &mut host_b)] {
        eventually(
            &format!("{name} generates with the key imported by cofre keys"),
            || {
                let r = mac_generate(host, "mac.cli");
                r.status() == Status::Ok && r.bytes(Tag::Mac) == expected
            },
        );
    }
    // One chain: the import is the ledger's next generation, its audit line names the
    // operator, and A's files are that generation.
    let (generation, document, audit) = ledger_row(&db.url);
    assert_eq!(generation, generation_before + 1);
    let last = audit.lines().last().unwrap();
    assert!(
        last.contains("\"so-cli\"") && last.contains("\"import\"") && last.contains("mac.cli"),
        "{last}"
    );
    cofre::hsm::ledger::verify(&document, &audit, &example_lmk()).unwrap();
    assert_eq!(
        std::fs::read_to_string(p.a.dir.join("audit.log")).unwrap(),
        audit
    );
    assert_eq!(
        std::fs::read_to_string(p.a.dir.join("keys.json")).unwrap(),
        document
    );

    // Rotated with `cofre keys` on B's node: A generates with version 2.
    let (ok, out, err) = keys_on_node(&p.b.dir, true, &["rotate", "--id", "mac.cli"]);
    assert!(ok, "{out}{err}");
    printed.extend([out, err]);
    eventually("A generates with the version rotated on B's node", || {
        let r = mac_generate(&mut host_a, "mac.cli");
        r.status() == Status::Ok && r.u32(Tag::KeyVersion) == 2
    });
    assert_eq!(ledger_row(&db.url).0, generation + 1);
    // Seeding a pair's ledger is its first daemon's, not `init`'s.
    let (ok, _, err) = keys_on_node(&p.b.dir, true, &["init"]);
    assert!(!ok && err.contains("pair"), "{err}");

    // Control: without --config the command edits only the node's files (the old way):
    // the ledger does not move.
    let (ok, out, err) = keys_on_node(&p.a.dir, false, &["rotate", "--id", "mac.cli"]);
    assert!(ok, "{out}{err}");
    printed.extend([out, err]);
    assert_eq!(ledger_row(&db.url).0, generation + 1);

    // No key in clear in what the commands printed (positive control: the same search
    // finds the clear key in a text that has it).
    let control = format!("control {RETAIL}");
    printed.extend([p.a.log_text(), p.b.log_text()]);
    for text in std::iter::once(&control).chain(&printed) {
        assert_eq!(
            text.to_uppercase().contains(RETAIL) || text.contains(KEK),
            std::ptr::eq(text, &control),
            "clear key in {text:.200}"
        );
    }
}
