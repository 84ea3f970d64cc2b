//! PIN lockout and dCVV2 state in the live daemon: exact counting under concurrency
//! and group commit, lock -> refuse -> reset -> success, the brute-force guard (exact,
//! pipelined), dCVV2 one-time use, its lock at exactly its limit, expiry and static CVV2
//! refusal, damaged stores, and a full disk. The attacks on the limits, and SIGKILL
//! during them, are in `hsm_attack.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::protocol::{Opcode, Status, Tag};
use daemon::cards::{Card, attempts, by_id, dcvv2_attempts, exchange, pvv_of};
use daemon::{Daemon, Raw, scratch_with};

/// A card whose PIN is 1234. Cards under BIN 555555 have a limit of 5 in the example
/// config.
const CARD: &str = "4000001234567899";

fn verify(c: &mut Raw, pan: &str, pin: &str) -> Status {
    let pvv = pvv_of(pan, "1234");
    let b = daemon::iso0_block(pan, pin);
    c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &b)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    })
    .status()
}

/// pin.change of `pan` (PIN 1234 on file) from `old` to `new`.
fn change(c: &mut Raw, pan: &str, old: &str, new: &str) -> daemon::Resp {
    let pvv = pvv_of(pan, "1234");
    let (old, new) = (daemon::iso0_block(pan, old), daemon::iso0_block(pan, new));
    c.call(Opcode::PinChange, |w| {
        w.str(Tag::Pan, pan)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &old)
            .bytes(Tag::NewPinBlock, &new)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    })
}

#[test]
fn lock_refuse_reset_succeed() {
    let d = Daemon::start("lock");
    let mut c = d.connect("issuing-host-1");
    assert_eq!(verify(&mut c, CARD, "1234"), Status::Ok);
    assert_eq!(verify(&mut c, CARD, "0000"), Status::VerificationFailed);
    // A success resets the count.
    assert_eq!(verify(&mut c, CARD, "1234"), Status::Ok);
    assert_eq!(attempts(&mut c, CARD), (0, false));
    for _ in 0..3 {
        assert_eq!(verify(&mut c, CARD, "0000"), Status::VerificationFailed);
    }
    assert_eq!(attempts(&mut c, CARD), (3, true));
    // Locked: the correct PIN is refused without being looked at.
    assert_eq!(verify(&mut c, CARD, "1234"), Status::PinLocked);
    assert_eq!(verify(&mut c, CARD, "9999"), Status::PinLocked);
    assert_eq!(
        attempts(&mut c, CARD),
        (3, true),
        "locked refusals do not count"
    );
    // Nor is a locked card's pin.change looked at: the right old PIN with a weak new one
    // is answered pin_locked, and the new PIN is never judged (the weak-PIN counter has
    // not moved; the control below shows it moving once the card is unlocked).
    let r = change(&mut c, CARD, "1234", "1111");
    assert_eq!(r.status(), Status::PinLocked, "{}", r.message());
    let m = d.metrics_text();
    assert!(!m.contains("cofre_weak_pins_total{"), "{m}");
    // Reset by the issuing host, then the PIN works.
    let r = c.call(Opcode::PinAttemptsReset, |w| {
        w.str(Tag::Pan, CARD);
    });
    assert_eq!((r.status(), r.u32(Tag::Attempts)), (Status::Ok, 0));
    assert_eq!(verify(&mut c, CARD, "1234"), Status::Ok);
    let r = change(&mut c, CARD, "1234", "1111");
    assert_eq!(r.status(), Status::WeakPin, "{}", r.message());
    let m = d.metrics_text();
    assert!(
        m.contains("cofre_weak_pins_total{rule=\"repeated\"} 1"),
        "{m}"
    );
    // A BIN range with its own limit (555555: 5).
    let other = "5555554000000009";
    for _ in 0..4 {
        assert_eq!(verify(&mut c, other, "0000"), Status::VerificationFailed);
    }
    assert_eq!(attempts(&mut c, other), (4, false));
    assert_eq!(verify(&mut c, other, "0000"), Status::VerificationFailed);
    assert_eq!(attempts(&mut c, other), (5, true));
    // Generating a new PIN resets the counter too.
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Pan, other).str(Tag::Pvk, "pvk.example");
    });
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(attempts(&mut c, other), (0, false));
    // The counter store never holds the PAN.
    let raw = std::fs::read(d.dir.join("state/counters.redb")).unwrap();
    for pan in [CARD, other] {
        assert!(!raw.windows(pan.len()).any(|w| w == pan.as_bytes()));
    }
}

/// Exact counts under concurrency, below the limit: 16 connections each send one wrong
/// PIN for the same card (limit 20 for its BIN range here), and 32 connections each
/// pipeline 10 wrong PINs for 10 cards of their own. Every failure is counted exactly
/// once, and group commit carries them in fewer durable transactions than failures.
#[test]
fn concurrent_failures_are_counted_exactly_and_group_committed() {
    let d = Daemon::start_in(scratch_with(
        "concurrent",
        &[(
            "prefix = \"555555\"\nlimit = 5",
            "prefix = \"555555\"\nlimit = 20",
        )],
    ));
    let shared_card = "5555554000000009";
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let addr = d.addr.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr, "atm-switch-1").unwrap();
                verify(&mut c, shared_card, "0000")
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Status::VerificationFailed);
    }
    let mut c = d.connect("issuing-host-1");
    assert_eq!(attempts(&mut c, shared_card), (16, false));

    let threads: Vec<_> = (0..32)
        .map(|_| {
            let addr = d.addr.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr, "atm-switch-1").unwrap();
                let cards: Vec<Card> = (0..10).map(|_| Card::fresh()).collect();
                let frames: Vec<Vec<u8>> = cards
                    .iter()
                    .enumerate()
                    .map(|(i, card)| card.verify_frame(i as u32, &card.guesses(1, 9)[0]))
                    .collect();
                let statuses = by_id(exchange(&mut c, &frames));
                assert!(
                    statuses.iter().all(|s| *s == Status::VerificationFailed),
                    "{statuses:?}"
                );
                cards
            })
        })
        .collect();
    let cards: Vec<Card> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for card in &cards {
        assert_eq!(attempts(&mut c, &card.pan), (1, false));
    }
    let m = d.metrics_text();
    let value = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let (commits, changes) = (
        value("cofre_counter_commits_total "),
        value("cofre_counter_changes_total "),
    );
    println!("group commit: {changes} changes in {commits} transactions");
    assert_eq!(changes, 16 + 320);
    assert!(commits < changes, "{commits} commits for {changes} changes");
}

/// Waits, if needed, until the current minute has at least `margin` seconds left, so a
/// burst that takes well under that is counted by the guard in one minute. (The window
/// itself is tested with an injected clock in `src/hsm/guard.rs`.)
fn clear_of_a_minute_boundary(margin: u64) {
    let into_minute = now_unix() % 60;
    if into_minute + margin >= 60 {
        std::thread::sleep(std::time::Duration::from_secs(60 - into_minute));
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Guard at 5 failures per minute, refusing: one write of 30 wrong PINs for 30 fresh
/// cards and the right PIN of a 31st. Exactly 6 are evaluated (the sixth trips it);
/// every later one, the right PIN too, answers brute_force_guard, until the security
/// officer lowers it.
#[test]
fn brute_force_guard_refuses_until_the_security_officer_resets_it() {
    let d = Daemon::start_in(scratch_with(
        "guard",
        &[
            (
                "guard_failures_per_minute = 1000",
                "guard_failures_per_minute = 5",
            ),
            ("guard_refuse = false", "guard_refuse = true"),
        ],
    ));
    let mut c = d.connect("atm-switch-1");
    let cards: Vec<Card> = (0..31).map(|_| Card::fresh()).collect();
    let mut frames: Vec<Vec<u8>> = cards[..30]
        .iter()
        .enumerate()
        .map(|(i, card)| card.verify_frame(i as u32, &card.guesses(1, 9)[0]))
        .collect();
    frames.push(cards[30].verify_frame(30, &cards[30].pin));
    clear_of_a_minute_boundary(20);
    let statuses = by_id(exchange(&mut c, &frames));
    let mut expected = vec![Status::VerificationFailed; 6];
    expected.extend([Status::BruteForceGuard; 25]);
    assert_eq!(statuses, expected);
    assert!(d.metrics_text().contains("cofre_bruteforce_guard_alert 1"));
    let r = d.connect("issuing-host-1").call(Opcode::GuardReset, |_| {});
    assert_eq!(
        r.status(),
        Status::NotAuthorised,
        "only the security officer resets it"
    );
    let r = d
        .connect("security-officer-1")
        .call(Opcode::GuardReset, |_| {});
    assert_eq!(r.status(), Status::Ok);
    assert!(d.metrics_text().contains("cofre_bruteforce_guard_alert 0"));
    assert_eq!(
        by_id(exchange(
            &mut c,
            &[cards[30].verify_frame(31, &cards[30].pin)]
        )),
        [Status::Ok]
    );
}

#[test]
fn dcvv2_one_time_use_expiry_and_static_cvv2() {
    let d = Daemon::start("dcvv2");
    let mut c = d.connect("issuing-host-1");
    let cvv2 = c
        .call(Opcode::CvvGenerate, |w| {
            w.str(Tag::Pan, CARD)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        })
        .str(Tag::Cvv2);
    let static_cvv2 = |c: &mut Raw| {
        c.call(Opcode::CvvVerify, |w| {
            w.str(Tag::Pan, CARD)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, &cvv2);
        })
    };
    assert_eq!(static_cvv2(&mut c).status(), Status::Ok);
    assert_eq!(
        c.call(Opcode::Dcvv2Enable, |w| {
            w.str(Tag::Pan, CARD);
        })
        .status(),
        Status::Ok
    );
    let r = static_cvv2(&mut c);
    assert_eq!(r.status(), Status::VerificationFailed);
    assert_eq!(r.str(Tag::Reason), "dcvv2_active");

    // Time-step codes, the time given explicitly (the daemon's clock is not used).
    let step = |t: u64| cofre::crypto::dcvv2::time_step(t, 0, 300).unwrap();
    let card = Card {
        pan: CARD.into(),
        pin: String::new(),
        pvv: String::new(),
    };
    let verify_at = |c: &mut Raw, t: u64, code: &str| {
        c.call(Opcode::Dcvv2Verify, |w| {
            w.str(Tag::Pan, CARD)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::UnixTime, t)
                .str(Tag::Dcvv2, code);
        })
        .status()
    };
    let now = now_unix();
    let code = card.dcvv2_code(step(now));
    assert_eq!(verify_at(&mut c, now, &code), Status::Ok);
    assert_eq!(
        verify_at(&mut c, now, &code),
        Status::Replayed,
        "one successful use only"
    );
    // At a later step s, a code of 2 to 10 steps before s is outside the default window
    // (1 step each side) and inside the widest (10): `expired`, not counted. The step is
    // one whose code differs from every code inside the window.
    let s = step(now) + 100;
    let inside: Vec<String> = (s - 1..=s + 1).map(|k| card.dcvv2_code(k)).collect();
    let old = (2..=10u64)
        .map(|back| card.dcvv2_code(s - back))
        .find(|c| !inside.contains(c))
        .unwrap();
    assert_eq!(verify_at(&mut c, s * 300 + 10, &old), Status::Expired);
    assert_eq!(
        dcvv2_attempts(&mut c, CARD),
        (0, false),
        "expired is not counted"
    );
    assert_eq!(attempts(&mut c, CARD), (0, false), "PIN tries untouched");
    // Turning dCVV2 off restores static CVV2.
    assert_eq!(
        c.call(Opcode::Dcvv2Disable, |w| {
            w.str(Tag::Pan, CARD);
        })
        .status(),
        Status::Ok
    );
    assert_eq!(static_cvv2(&mut c).status(), Status::Ok);
}

/// dCVV2 locks at exactly `dcvv2_limit` (run with 3 and 5: a daemon locking at any
/// other count fails): counter mode, window 0, so exactly one code is right and every
/// other one is a failure. The lock is dCVV2's own, and dcvv2.enable lifts it.
#[test]
fn dcvv2_locks_at_exactly_its_limit() {
    for limit in [3u32, 5] {
        let d = Daemon::start_in(scratch_with(
            "dcvv2-limit",
            &[("dcvv2_limit = 3", &format!("dcvv2_limit = {limit}"))],
        ));
        let mut c = d.connect("issuing-host-1");
        let card = Card::fresh();
        let right = card.dcvv2_code(500);
        // Wrong codes that match no nearby counter step either: a code that happens to be
        // an earlier step's answers `expired`, not `verification_failed`.
        let n = limit as usize + 2;
        let mut wrong = card.dcvv2_guesses(500, n, n);
        assert_eq!(wrong.pop().as_ref(), Some(&right));
        let one = |c: &mut Raw, id: u32, code: &str| {
            by_id(exchange(c, &[card.dcvv2_frame(id, 500, 0, code)]))[0]
        };
        for (i, code) in wrong[..limit as usize - 1].iter().enumerate() {
            assert_eq!(one(&mut c, i as u32, code), Status::VerificationFailed);
            assert_eq!(dcvv2_attempts(&mut c, &card.pan), (i as u32 + 1, false));
        }
        let r = c.call(Opcode::Dcvv2Verify, |w| {
            w.str(Tag::Pan, &card.pan)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 500)
                .u8(Tag::Window, 0)
                .str(Tag::Dcvv2, &wrong[limit as usize - 1]);
        });
        assert_eq!(r.status(), Status::VerificationFailed);
        assert_eq!(
            r.message(),
            format!("dCVV2 does not verify; {limit} failed tries, dCVV2 now locked")
        );
        assert_eq!(dcvv2_attempts(&mut c, &card.pan), (limit, true));
        assert_eq!(
            one(&mut c, 90, &right),
            Status::PinLocked,
            "the right code too"
        );
        assert_eq!(one(&mut c, 91, &wrong[limit as usize]), Status::PinLocked);
        assert_eq!(dcvv2_attempts(&mut c, &card.pan), (limit, true));
        assert_eq!(
            attempts(&mut c, &card.pan),
            (0, false),
            "PIN tries untouched"
        );
        let r = c.call(Opcode::Dcvv2Enable, |w| {
            w.str(Tag::Pan, &card.pan);
        });
        assert_eq!(r.status(), Status::Ok);
        assert_eq!(one(&mut c, 92, &right), Status::Ok);
    }
}

#[test]
fn damaged_counter_stores_are_refused_at_start() {
    // A store from an unknown (older) format version.
    let dir = scratch_with("oldstore", &[]);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    {
        let db = redb::Database::create(dir.join("state/counters.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("format", 0u64).unwrap();
        }
        txn.commit().unwrap();
    }
    let out = start_fails(&dir);
    assert!(out.contains("format 0 is not supported"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
    // A truncated file.
    let dir = scratch_with("truncated", &[]);
    drop(Daemon::start_in_keep(&dir));
    let path = dir.join("state/counters.redb");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    let out = start_fails(&dir);
    assert!(out.contains("counters.redb"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn start_fails(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing was bound");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A full disk (simulated with RLIMIT_FSIZE at the store's current size): once a
/// commit fails, PIN verification is refused with store_unavailable, also for the right
/// PIN, so a full disk never becomes an uncounted guessing oracle.
#[test]
fn full_disk_refuses_pin_verification() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("prlimit (util-linux) is needed for this test");
    }
    let dir = scratch_with("fulldisk", &[]);
    drop(Daemon::start_in_keep(&dir));
    let size = std::fs::metadata(dir.join("state/counters.redb"))
        .unwrap()
        .len();
    let log = dir.join("daemon.log");
    let mut child = std::process::Command::new("prlimit")
        .arg(format!("--fsize={size}"))
        .arg(env!("CARGO_BIN_EXE_cofre"))
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let Some(Ok(first)) = lines.next() else {
        // Refusing to start on a store it cannot write is also a clear outcome.
        eprintln!("daemon refused to start under the file size limit");
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("counter store")
        );
        return;
    };
    let addr = first.strip_prefix("listening on ").unwrap().to_owned();
    let mut c = Raw::connect(&addr, "issuing-host-1").unwrap();
    let pvv = pvv_of(CARD, "1234");
    let mut unavailable = false;
    'outer: for round in 0..200u32 {
        let mut burst = Vec::new();
        for i in 0..200u32 {
            let body = format!("40000{:010}", round * 200 + i);
            let check = cofre::crypto::pan::luhn_check_digit(body.as_bytes()).unwrap();
            let pan = format!("{body}{check}");
            let b = daemon::iso0_block(&pan, "0000");
            cofre::protocol::encode_request(&mut burst, Opcode::PinVerify.code(), i, |w| {
                w.str(Tag::Pan, &pan)
                    .str(Tag::Key, "zpk.example")
                    .u8(Tag::Format, 0)
                    .bytes(Tag::PinBlock, &b)
                    .str(Tag::Pvk, "pvk.example")
                    .str(Tag::Pvv, &pvv);
            })
            .unwrap();
        }
        c.send_bytes(&burst);
        for _ in 0..200 {
            if c.read().unwrap().status() == Status::StoreUnavailable {
                unavailable = true;
                break 'outer;
            }
        }
    }
    assert!(unavailable, "the store never filled up");
    // Drain, then: even the right PIN is refused while the store cannot count.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut c = Raw::connect(&addr, "issuing-host-1").unwrap();
    assert_eq!(verify(&mut c, CARD, "1234"), Status::StoreUnavailable);
    // Refused before the PIN block is looked at, by the daemon's own check, not by the
    // store failing the attempt's write afterwards.
    let b = daemon::iso0_block(CARD, "1234");
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, CARD)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &b)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &pvv);
    });
    assert_eq!(
        (r.status(), r.message()),
        (
            Status::StoreUnavailable,
            "the counter store cannot record attempts; verification is refused".to_owned()
        )
    );
    assert_eq!(verify(&mut c, CARD, "0000"), Status::StoreUnavailable);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("counter store commit failed")
    );
    let _ = std::fs::remove_dir_all(dir);
}
