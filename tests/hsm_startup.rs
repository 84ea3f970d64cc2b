//! What the daemon checks before it binds: the audit log's chain against the head the
//! key store records, and that the counter store is the one the audit log binds (a
//! deleted or replaced store stops it until `cofre keys counters-reset`); and a counter
//! record that fails its MAC, which locks its card, is counted and is logged without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use std::path::Path;
use std::process::{Command, Output};

use cofre::crypto::ClearKey;
use cofre::crypto::pan::Pan;
use cofre::hsm::counters::CardId;
use cofre::keys::lmk::{Lmk, Purpose};
use cofre::keys::{LmkSource, audit};
use cofre::protocol::Status;
use daemon::cards::{Card, attempts, by_id, exchange};
use daemon::{Daemon, scratch};

/// Runs `cofre hsm` on `dir`, expecting it to refuse: (exit code, stderr).
fn start_fails(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "nothing was bound");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cofre keys <args>` on the example store in `dir`.
fn keys(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(dir)
        .arg("keys")
        .args(args)
        .args([
            "--store",
            "keys.json",
            "--lmk-component",
            "lmk/component-1.txt",
            "--lmk-component",
            "lmk/component-2.txt",
            "--operator",
            "officer-ana",
        ])
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What a case does to the audit log's lines (`None`: removes the file).
type Edit = fn(&[String]) -> Option<String>;

/// The last line cut, the last 5 cut, an empty log, no log: each stops the daemon with
/// exit 64 and the one line `cofre keys audit-verify` reports for it.
#[test]
fn a_cut_empty_or_missing_audit_log_stops_the_daemon() {
    let intact = scratch("audit-intact");
    let shipped = lines(&intact).len();
    // The first start records the counter store in one more line.
    drop(Daemon::start_in_keep(&intact));
    assert_eq!(lines(&intact).len(), shipped + 1);
    assert!(lines(&intact)[shipped].contains("\"op\":\"counters-create\""));
    let verify = keys(&intact, &["audit-verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    let cases: [(&str, Edit); 4] = [
        ("last line deleted", |l| {
            Some(l[..l.len() - 1].join("\n") + "\n")
        }),
        ("last 5 lines deleted", |l| {
            Some(l[..l.len() - 5].join("\n") + "\n")
        }),
        ("empty", |_| Some(String::new())),
        ("missing", |_| None),
    ];
    for (what, edit) in cases {
        let dir = scratch("audit-cut");
        std::fs::remove_dir_all(&dir).unwrap();
        daemon::copy_dir(&intact, &dir);
        match edit(&lines(&intact)) {
            Some(t) => std::fs::write(dir.join("audit.log"), t).unwrap(),
            None => std::fs::remove_file(dir.join("audit.log")).unwrap(),
        }
        let (code, err) = start_fails(&dir);
        assert_eq!(code, Some(64), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
        let verify = keys(&dir, &["audit-verify"]);
        assert!(!verify.status.success(), "{what}");
        let reason = text(&verify.stderr);
        let reason = reason.trim().rsplit_once("audit log: ").unwrap().1;
        assert!(
            err.contains(reason),
            "{what}: daemon {err:?}, audit-verify {reason:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(intact);
}

#[test]
fn a_deleted_or_replaced_counter_store_stops_the_daemon_until_it_is_reset() {
    let dir = scratch("counters-bound");
    let card = Card::fresh();
    {
        let d = Daemon::start_in_keep(&dir);
        let wrong = card.guesses(3, 99);
        let frames: Vec<Vec<u8>> = (0..3)
            .map(|i| card.verify_frame(i, &wrong[i as usize]))
            .collect();
        exchange(&mut d.connect("atm-switch-1"), &frames);
        assert_eq!(
            attempts(&mut d.connect("issuing-host-1"), &card.pan),
            (3, true)
        );
    }
    let store = dir.join("state/counters.redb");
    let saved = std::fs::read(&store).unwrap();
    // Deleted.
    std::fs::remove_file(&store).unwrap();
    let (code, err) = start_fails(&dir);
    assert_eq!(code, Some(64), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("is missing") && err.contains("cofre keys counters-reset"),
        "{err}"
    );
    // Replaced by another daemon's (fresh) store.
    let other = scratch("counters-other");
    drop(Daemon::start_in_keep(&other));
    std::fs::copy(other.join("state/counters.redb"), &store).unwrap();
    let (code, err) = start_fails(&dir);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("was replaced"), "{err}");
    // The bound store put back: the card is still locked.
    std::fs::write(&store, &saved).unwrap();
    {
        let d = Daemon::start_in_keep(&dir);
        assert_eq!(
            attempts(&mut d.connect("issuing-host-1"), &card.pan),
            (3, true)
        );
        // No reset while the daemon holds the store.
        let busy = keys(&dir, &["counters-reset", "--state-dir", "state", "--yes"]);
        assert!(!busy.status.success());
        assert!(
            text(&busy.stderr).contains("running daemon"),
            "{}",
            text(&busy.stderr)
        );
    }
    // Replaced again; the security officer resets: one audit line, then it starts.
    std::fs::copy(other.join("state/counters.redb"), &store).unwrap();
    let before = lines(&dir).len();
    let dry = keys(&dir, &["counters-reset", "--state-dir", "state"]);
    assert!(!dry.status.success() && text(&dry.stderr).contains("--yes"));
    assert_eq!(lines(&dir).len(), before, "nothing written without --yes");
    let reset = keys(&dir, &["counters-reset", "--state-dir", "state", "--yes"]);
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let log = lines(&dir);
    assert_eq!(log.len(), before + 1);
    let line: audit::AuditLine = serde_json::from_str(&log[before]).unwrap();
    assert_eq!(
        (line.event.op.as_str(), line.event.who.as_str()),
        ("counters-reset", "officer-ana")
    );
    assert!(text(&reset.stdout).contains(line.event.counter_store.as_deref().unwrap()));
    assert!(keys(&dir, &["audit-verify"]).status.success());
    let kept = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("counters.redb.replaced-")
        })
        .count();
    assert_eq!(kept, 1, "the replaced file is kept");
    let d = Daemon::start_in_keep(&dir);
    assert_eq!(
        attempts(&mut d.connect("issuing-host-1"), &card.pan),
        (0, false)
    );
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(other);
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

/// Whether `needle` occurs in `haystack`, as text or as lower- or upper-case hex.
fn leaks(haystack: &str, needle: &[u8]) -> bool {
    let as_text = String::from_utf8_lossy(needle);
    haystack.contains(as_text.as_ref())
        || haystack.contains(&hex::encode(needle))
        || haystack.contains(&hex::encode_upper(needle))
}

#[test]
fn a_record_that_fails_its_mac_locks_the_card_and_is_logged_without_it() {
    let dir = scratch("counters-mac");
    let card = Card::fresh();
    {
        let d = Daemon::start_in_keep(&dir);
        let wrong = card.guesses(1, 99);
        let s = by_id(exchange(
            &mut d.connect("atm-switch-1"),
            &[card.verify_frame(0, &wrong[0])],
        ));
        assert_eq!(s, [Status::VerificationFailed]);
    }
    // An offline edit: the card's record set back to "no failures" (its MAC no longer
    // verifies). The card's name in the store is computed here from the example LMK.
    let card_key: ClearKey = example_lmk().derive(Purpose::CardCounterKey);
    let id = CardId::new(&card_key, &Pan::new(&card.pan).unwrap());
    {
        use redb::ReadableTable;
        let db = redb::Database::open(dir.join("state/counters.redb")).unwrap();
        let table = redb::TableDefinition::<&[u8], &[u8]>::new("cards");
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            let mut value = t.get(&id.as_bytes()[..]).unwrap().unwrap().value().to_vec();
            value[..4].copy_from_slice(&0u32.to_be_bytes());
            t.insert(&id.as_bytes()[..], &value[..]).unwrap();
        }
        txn.commit().unwrap();
    }
    let d = Daemon::start_in_keep(&dir);
    let mut atm = d.connect("atm-switch-1");
    let s = by_id(exchange(&mut atm, &[card.verify_frame(1, &card.pin)]));
    assert_eq!(
        s,
        [Status::PinLocked],
        "a record failing its MAC is a locked card"
    );
    assert!(
        d.metrics_text()
            .contains("cofre_counter_record_mac_failures_total 1"),
        "{}",
        d.metrics_text()
    );
    // Logged, without the card: not its PAN, not its name in the store.
    let log = d.log_text();
    assert!(log.contains("failed its MAC"), "{log}");
    assert!(
        leaks(&format!("x{}x", card.pan), card.pan.as_bytes()),
        "positive control"
    );
    assert!(
        leaks(&hex::encode(id.as_bytes()), id.as_bytes()),
        "positive control"
    );
    assert!(!leaks(&log, card.pan.as_bytes()));
    assert!(!leaks(&log, id.as_bytes()));
    assert!(!leaks(&log, &id.as_bytes()[..8]));
    // The issuer's reset writes a sealed record again.
    let r = d
        .connect("issuing-host-1")
        .call(cofre::protocol::Opcode::PinAttemptsReset, |w| {
            w.str(cofre::protocol::Tag::Pan, &card.pan);
        });
    assert_eq!(r.status(), Status::Ok);
    let s = by_id(exchange(&mut atm, &[card.verify_frame(2, &card.pin)]));
    assert_eq!(s, [Status::Ok]);
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// A shared counter store that does not answer at start (PostgreSQL not up yet) is not a
/// bad configuration: exit 69, which the unit's `Restart=on-failure` retries (it
/// prevents only 64), and one line saying so; a refused URL stays exit 64.
#[test]
fn an_unreachable_counter_store_at_start_exits_69_not_64() {
    // Port 1 on loopback: nothing listens there, the connection is refused.
    let dir = daemon::scratch_with(
        "counters-unreachable",
        &[(
            "state_dir = \"state\"",
            "state_dir = \"state\"\ncounters = \"postgres://cofre@127.0.0.1:1/cofre\"\ncounters_password_file = \"pg-password\"",
        )],
    );
    std::fs::write(dir.join("pg-password"), "not-a-real-password\n").unwrap();
    let (code, err) = start_fails(&dir);
    assert_eq!(code, Some(69), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not reachable"), "{err}");
    assert!(!err.contains("not-a-real-password"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    // The control: a URL carrying its password is the configuration's fault.
    let dir = daemon::scratch_with(
        "counters-bad-url",
        &[(
            "state_dir = \"state\"",
            "state_dir = \"state\"\ncounters = \"postgres://cofre:secret@127.0.0.1:1/cofre\"",
        )],
    );
    let (code, err) = start_fails(&dir);
    assert_eq!(code, Some(64), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
