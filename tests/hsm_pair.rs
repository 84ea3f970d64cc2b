//! A pair of `cofre hsm` daemons sharing their try counters and dCVV2 state through one
//! PostgreSQL database (`counters = "postgres://..."`): wrong PINs alternated between
//! the two lock at exactly the limit; the pipelined attack sent to both at once
//! evaluates at most `limit` guesses; one daemon SIGKILLed mid-stream while the client
//! fails over to the other loses no count and lets no dCVV2 code be used twice; and
//! with PostgreSQL stopped (a private instance of the test's own) verifications answer
//! `store_unavailable`, then recover by themselves once it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod pair;

use cofre::protocol::Status;
use daemon::cards::{Card, attempts, by_id, count, dcvv2_attempts, exchange};
use daemon::{Daemon, Raw};
use pair::{FreshDb, Pair, PrivatePostgres};

/// The example configuration's PIN and dCVV2 limits.
const LIMIT: u32 = 3;

/// One PIN verification on `c`.
fn verify(c: &mut Raw, card: &Card, pin: &str) -> Status {
    by_id(exchange(c, &[card.verify_frame(1, pin)]))[0]
}

#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn wrong_pins_alternated_between_the_daemons_lock_at_exactly_the_limit() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-alternate", &db.url);
    let (mut a, mut b) = (p.a.connect("atm-switch-1"), p.b.connect("atm-switch-1"));
    let (mut host_a, mut host_b) = (p.a.connect("issuing-host-1"), p.b.connect("issuing-host-1"));
    for _ in 0..3 {
        let card = Card::fresh();
        let wrong = card.guesses(10, 99);
        let mut answers = Vec::new();
        for (i, pin) in wrong.iter().take(6).enumerate() {
            let c = if i % 2 == 0 { &mut a } else { &mut b };
            answers.push(verify(c, &card, pin));
        }
        let mut expected = vec![Status::VerificationFailed; LIMIT as usize];
        expected.extend([Status::PinLocked; 3]);
        assert_eq!(answers, expected);
        assert_eq!(attempts(&mut host_a, &card.pan), (LIMIT, true));
        assert_eq!(attempts(&mut host_b, &card.pan), (LIMIT, true));
        assert_eq!(verify(&mut a, &card, &card.pin), Status::PinLocked);
        assert_eq!(verify(&mut b, &card, &card.pin), Status::PinLocked);
    }
    // A success on one clears the failures the other counted; a reset on one lifts a
    // lock the other sees.
    let card = Card::fresh();
    let wrong = card.guesses(3, 99);
    assert_eq!(verify(&mut a, &card, &wrong[0]), Status::VerificationFailed);
    assert_eq!(verify(&mut b, &card, &card.pin), Status::Ok);
    assert_eq!(attempts(&mut host_a, &card.pan), (0, false));
    for pin in wrong.iter().take(LIMIT as usize) {
        assert_eq!(verify(&mut b, &card, pin), Status::VerificationFailed);
    }
    let r = host_a.call(cofre::protocol::Opcode::PinAttemptsReset, |w| {
        w.str(cofre::protocol::Tag::Pan, &card.pan);
    });
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(verify(&mut b, &card, &card.pin), Status::Ok);
}

/// Sends each batch of frames on a connection of its own to `addr`, all at once, and
/// returns every answer's status.
fn at_once(batches: Vec<(String, Vec<Vec<u8>>)>) -> Vec<Status> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(batches.len()));
    let threads: Vec<_> = batches
        .into_iter()
        .map(|(addr, frames)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr, "atm-switch-1").unwrap();
                barrier.wait();
                by_id(exchange(&mut c, &frames))
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// 8 connections to each daemon, 250 guesses each for one card (the right PIN after
/// each connection's first `LIMIT`), all at once; three cards in turn.
#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn the_pipelined_attack_on_both_daemons_at_once_evaluates_at_most_the_limit() {
    let Some(db) = FreshDb::new() else { return };
    let p = Pair::start("pair-pipelined", &db.url);
    for round in 0..3 {
        let card = Card::fresh();
        let batches = (0..16)
            .map(|t| {
                let addr = if t % 2 == 0 { &p.a.addr } else { &p.b.addr };
                let frames = card
                    .guesses(249, LIMIT as usize + t)
                    .iter()
                    .enumerate()
                    .map(|(id, pin)| card.verify_frame(id as u32, pin))
                    .collect();
                (addr.clone(), frames)
            })
            .collect();
        let all = at_once(batches);
        assert_eq!(all.len(), 16 * 250);
        assert_eq!(count(&all, Status::Ok), 0, "round {round}: PIN found");
        assert_eq!(
            count(&all, Status::VerificationFailed),
            LIMIT as usize,
            "round {round}: exactly the limit evaluated across both daemons"
        );
        assert_eq!(count(&all, Status::PinLocked), 16 * 250 - LIMIT as usize);
        for d in [&p.a, &p.b] {
            assert_eq!(
                attempts(&mut d.connect("issuing-host-1"), &card.pan),
                (LIMIT, true)
            );
        }
    }
}

/// The pipelined PIN attack and a replayed dCVV2 code go to daemon A, which is
/// SIGKILLed after a random number of answers; the client then sends everything again
/// to daemon B. Each round: every failure A answered is still counted on B, at most
/// `LIMIT` failures are answered in all, the PIN is never found, and the right dCVV2
/// code is accepted at most once across both. A is restarted for the next round.
#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn a_daemon_killed_mid_stream_loses_no_count_and_no_dcvv2_is_used_twice() {
    use rand::RngExt;
    let Some(db) = FreshDb::new() else { return };
    let Pair { mut a, b } = Pair::start("pair-failover", &db.url);
    a.keep_dir = true;
    let dir_a = a.dir.clone();
    let mut a = Some(a);
    let mut rng = rand::rng();
    for round in 0..6u64 {
        let d = a.take().unwrap_or_else(|| Daemon::start_in_keep(&dir_a));
        let card = Card::fresh();
        let counter = 5000 + round;
        let code = card.dcvv2_code(counter);
        let pins = card.guesses(49, LIMIT as usize);
        let pin_frames: Vec<Vec<u8>> = pins
            .iter()
            .enumerate()
            .map(|(id, pin)| card.verify_frame(id as u32, pin))
            .collect();
        let code_frames: Vec<Vec<u8>> = (0..20)
            .map(|id| card.dcvv2_frame(id, counter, 0, &code))
            .collect();
        let mut atm = d.connect("atm-switch-1");
        let mut host = d.connect("issuing-host-1");
        atm.send_bytes(&pin_frames.concat());
        host.send_bytes(&code_frames.concat());
        let mut on_a = Vec::new();
        for _ in 0..rng.random_range(0..=pin_frames.len()) {
            on_a.push(atm.read().unwrap().status());
        }
        d.signal(nix::sys::signal::Signal::SIGKILL);
        // Answers already on the wire were durable before they were sent.
        while let Some(r) = atm.read() {
            on_a.push(r.status());
        }
        let mut codes_on_a = Vec::new();
        while let Some(r) = host.read() {
            codes_on_a.push(r.status());
        }
        drop(d);
        let failed_on_a = count(&on_a, Status::VerificationFailed) as u32;
        // Failover: B sees every failure A answered.
        let mut host_b = b.connect("issuing-host-1");
        let (seen, locked) = attempts(&mut host_b, &card.pan);
        assert!(
            seen >= failed_on_a && seen <= LIMIT,
            "round {round}: B sees {seen}, A answered {failed_on_a}"
        );
        assert_eq!(locked, seen == LIMIT);
        let on_b = by_id(exchange(&mut b.connect("atm-switch-1"), &pin_frames));
        let codes_on_b = by_id(exchange(&mut host_b, &code_frames));
        for s in on_a.iter().chain(&on_b) {
            assert_ne!(*s, Status::Ok, "round {round}: the PIN was found");
        }
        let failed = failed_on_a + count(&on_b, Status::VerificationFailed) as u32;
        assert!(failed <= LIMIT, "round {round}: {failed} evaluated");
        assert_eq!(attempts(&mut host_b, &card.pan), (LIMIT, true));
        // Once at most (none answered `ok` if A made the use durable and died before
        // answering: B then answers `replayed`, the use is not lost).
        let used = count(&codes_on_a, Status::Ok) + count(&codes_on_b, Status::Ok);
        assert!(used <= 1, "round {round}: {codes_on_a:?} {codes_on_b:?}");
        assert!(
            count(&codes_on_b, Status::Replayed) >= codes_on_b.len() - 1,
            "round {round}: {codes_on_b:?}"
        );
        for s in codes_on_a.iter().chain(&codes_on_b) {
            assert!(
                matches!(*s, Status::Ok | Status::Replayed),
                "round {round}: {s:?}"
            );
        }
        assert_eq!(dcvv2_attempts(&mut host_b, &card.pan), (0, false));
    }
    let _ = std::fs::remove_dir_all(&dir_a);
}

/// PostgreSQL (a private instance) stopped under a running pair: verifications answer
/// `store_unavailable`, never `ok`; started again: both answer by themselves, and the
/// failure counted before the stop is still there.
#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn postgres_stopped_then_started_refuses_then_recovers_by_itself() {
    let server = PrivatePostgres::start();
    let db = FreshDb::on(&server.url());
    let p = Pair::start("pair-pg-restart", &db.url);
    let (mut a, mut b) = (p.a.connect("atm-switch-1"), p.b.connect("atm-switch-1"));
    let card = Card::fresh();
    let wrong = card.guesses(2, 99);
    assert_eq!(verify(&mut a, &card, &wrong[0]), Status::VerificationFailed);
    assert_eq!(verify(&mut b, &card, &card.pin), Status::Ok);
    assert_eq!(verify(&mut b, &card, &wrong[1]), Status::VerificationFailed);
    server.down();
    for c in [&mut a, &mut b] {
        // The first answer after the stop may take the failed commit; then refusals.
        for _ in 0..3 {
            assert_eq!(verify(c, &card, &card.pin), Status::StoreUnavailable);
            assert_eq!(verify(c, &card, &wrong[0]), Status::StoreUnavailable);
        }
    }
    server.up();
    for c in [&mut a, &mut b] {
        let mut answer = Status::StoreUnavailable;
        // Bounded: the reconnect back-off is at most 5 s.
        for _ in 0..300 {
            answer = verify(c, &card, &wrong[0]);
            if answer != Status::StoreUnavailable {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(answer, Status::VerificationFailed, "recovered by itself");
    }
    let mut host = p.a.connect("issuing-host-1");
    assert_eq!(
        attempts(&mut host, &card.pan),
        (LIMIT, true),
        "1 before the stop + 2 after"
    );
    assert!(p.a.log_text().contains("reachable again"));
    drop(p);
    drop(db);
}

/// A daemon pointed at another (empty) database refuses to start, exit 64, naming the
/// reset; `cofre keys counters-reset --counters` binds the new store in the audit log,
/// and the daemon starts on it.
#[test]
#[cfg_attr(
    skip_postgres,
    ignore = "COFRE_SKIP_POSTGRES=1: PostgreSQL skipped on request"
)]
fn another_database_is_refused_until_the_counters_are_reset() {
    let (Some(first), Some(second)) = (FreshDb::new(), FreshDb::new()) else {
        return;
    };
    let dir = pair::pair_dir("pair-reset", &first.url);
    drop(Daemon::start_in_keep(&dir));
    let toml = dir.join("hsm.toml");
    let url_of = |u: &str| u.rsplit_once('/').unwrap().1.to_owned();
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace(&url_of(&first.url), &url_of(&second.url)),
    )
    .unwrap();
    let cofre = || std::process::Command::new(env!("CARGO_BIN_EXE_cofre"));
    let refused = cofre()
        .args(["hsm", "--config"])
        .arg(&toml)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("counters-reset"), "{stderr}");
    // The URL as the configuration holds it (no password).
    let text = std::fs::read_to_string(&toml).unwrap();
    let line = text.lines().find(|l| l.starts_with("counters =")).unwrap();
    let url = line.split('"').nth(1).unwrap().to_owned();
    let mut reset = cofre();
    reset
        .current_dir(&dir)
        .args(["keys", "counters-reset", "--counters", &url]);
    if dir.join("pg-password").exists() {
        reset.args(["--counters-password-file", "pg-password"]);
    }
    let out = reset
        .args([
            "--yes",
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
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    assert!(audit.lines().last().unwrap().contains("counters-reset"));
    let d = Daemon::start_in(dir);
    let card = Card::fresh();
    let mut c = d.connect("atm-switch-1");
    assert_eq!(verify(&mut c, &card, &card.pin), Status::Ok);
}
