//! PIN lockout and dCVV2 state in the live daemon: exact counting under concurrency,
//! lock -> refuse -> reset -> success, the brute-force guard, dCVV2 one-time use,
//! expiry and static CVV2 refusal, crash safety under SIGKILL, and damaged stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::pan::Pan;
use cofre::crypto::{ClearKey, Pin, pvv};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::{Daemon, Raw, scratch_with};

const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// Cards under BIN 555555 have a limit of 5 in the example config; the crash and
/// concurrency tests raise it.
const CARD: &str = "4000001234567899";

fn block(pan: &str, pin: &str) -> Vec<u8> {
    daemon::iso0_block(pan, pin)
}

fn pvv_of(pan: &str, pin: &str) -> String {
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(ZPK).unwrap()).unwrap();
    pvv::visa_pvv(&pvk, 1, &Pin::new(pin).unwrap(), &Pan::new(pan).unwrap())
        .unwrap()
        .to_string()
}

fn verify(c: &mut Raw, pan: &str, pin: &str) -> Status {
    let pvv = pvv_of(pan, "1234");
    let b = block(pan, pin);
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

fn attempts(c: &mut Raw, pan: &str) -> (u32, bool) {
    let r = c.call(Opcode::PinAttempts, |w| {
        w.str(Tag::Pan, pan);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    (
        r.u32(Tag::Attempts),
        r.fields().bool(Tag::Locked).unwrap().unwrap(),
    )
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
    // Reset by the issuing host, then the PIN works.
    let r = c.call(Opcode::PinAttemptsReset, |w| {
        w.str(Tag::Pan, CARD);
    });
    assert_eq!((r.status(), r.u32(Tag::Attempts)), (Status::Ok, 0));
    assert_eq!(verify(&mut c, CARD, "1234"), Status::Ok);
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

#[test]
fn concurrent_failures_on_one_card_are_counted_exactly() {
    let d = Daemon::start_in(scratch_with(
        "concurrent",
        &[("pin_limit = 3", "pin_limit = 100000")],
    ));
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let addr = d.addr.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr, "issuing-host-1").unwrap();
                let b = block(CARD, "0000");
                let pvv = pvv_of(CARD, "1234");
                // Pipelined: 10 wrong PINs per connection in one write.
                let mut burst = Vec::new();
                for id in 0..10 {
                    cofre::protocol::encode_request(
                        &mut burst,
                        Opcode::PinVerify.code(),
                        id,
                        |w| {
                            w.str(Tag::Pan, CARD)
                                .str(Tag::Key, "zpk.example")
                                .u8(Tag::Format, 0)
                                .bytes(Tag::PinBlock, &b)
                                .str(Tag::Pvk, "pvk.example")
                                .str(Tag::Pvv, &pvv);
                        },
                    )
                    .unwrap();
                }
                c.send_bytes(&burst);
                (0..10)
                    .filter(|_| c.read().unwrap().status() == Status::VerificationFailed)
                    .count()
            })
        })
        .collect();
    let failed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(failed, 320);
    let mut c = d.connect("issuing-host-1");
    assert_eq!(attempts(&mut c, CARD), (320, false));
    // Group commit: the 320 durable failures took fewer transactions than failures.
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
    assert_eq!(changes, 320);
    assert!(commits < changes, "{commits} commits for {changes} changes");
}

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
    let mut c = d.connect("issuing-host-1");
    let cards = [
        "4000001234567899",
        "4000001234567881",
        "4000001234567873",
        "4000001234567865",
    ];
    let mut statuses = Vec::new();
    // 12 failures: even if a minute boundary falls inside the run, one side has 6 > 5.
    for card in cards.iter().cycle().take(12) {
        statuses.push(verify(&mut c, card, "0000"));
    }
    assert!(statuses.contains(&Status::BruteForceGuard), "{statuses:?}");
    assert!(d.metrics_text().contains("cofre_bruteforce_guard_alert 1"));
    assert_eq!(verify(&mut c, CARD, "1234"), Status::BruteForceGuard);
    let r = c.call(Opcode::GuardReset, |_| {});
    assert_eq!(
        r.status(),
        Status::NotAuthorised,
        "only the security officer resets it"
    );
    let r = d
        .connect("security-officer-1")
        .call(Opcode::GuardReset, |_| {});
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(verify(&mut c, CARD, "1234"), Status::Ok);
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

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let generate = |c: &mut Raw, t: u64| {
        c.call(Opcode::Dcvv2Generate, |w| {
            w.str(Tag::Pan, CARD)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::UnixTime, t);
        })
        .str(Tag::Dcvv2)
    };
    let verify_code = |c: &mut Raw, code: &str| {
        c.call(Opcode::Dcvv2Verify, |w| {
            w.str(Tag::Pan, CARD)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::Dcvv2, code);
        })
        .status()
    };
    let code = generate(&mut c, now);
    assert_eq!(verify_code(&mut c, &code), Status::Ok);
    assert_eq!(
        verify_code(&mut c, &code),
        Status::Replayed,
        "one successful use only"
    );
    // A code from an hour ago is expired (unless its digits happen to match a step
    // inside the window, one chance in a few hundred: retry with another hour).
    let mut expired_seen = false;
    for hours in 1..=3u64 {
        let old = generate(&mut c, now - hours * 3600 + 1800);
        let s = verify_code(&mut c, &old);
        if s == Status::Expired || s == Status::VerificationFailed {
            expired_seen = true;
            break;
        }
    }
    assert!(expired_seen);
    // Wrong codes lock dCVV2 after 3 failures (its own counter, not the PIN's).
    let wrong = format!("{:03}", (code.parse::<u32>().unwrap() + 500) % 1000);
    // (A wrong code may, one time in a few hundred, be the right one for a step inside
    // the window: keep trying until the lock shows, at most a few more times.)
    let mut last = Status::Ok;
    for _ in 0..8 {
        last = verify_code(&mut c, &wrong);
        if last == Status::PinLocked {
            break;
        }
    }
    assert_eq!(last, Status::PinLocked);
    let r = c.call(Opcode::Dcvv2State, |w| {
        w.str(Tag::Pan, CARD);
    });
    assert!(r.fields().bool(Tag::Locked).unwrap().unwrap());
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

/// Kills the daemon with SIGKILL at random points during a stream of wrong PINs,
/// restarts it, and checks that the count never goes backwards: every failure the
/// daemon answered was durable. CI runs 100 kills; more with
/// `COFRE_CRASH_KILLS=1000 cargo test --release --test hsm_lockout crash`.
#[test]
fn crash_safety_under_sigkill() {
    use rand::RngExt;
    let kills: usize = std::env::var("COFRE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = scratch_with("crash", &[("pin_limit = 3", "pin_limit = 100000000")]);
    let locked_card = "5555554000000009";
    let mut acknowledged = 0u32;
    let mut rng = rand::rng();
    // Lock one card (limit 5 for BIN 555555) before the kills start.
    {
        let d = Daemon::start_in_keep(&dir);
        let mut c = d.connect("issuing-host-1");
        for _ in 0..5 {
            verify(&mut c, locked_card, "0000");
        }
        assert_eq!(attempts(&mut c, locked_card), (5, true));
    }
    for round in 0..kills {
        let d = Daemon::start_in_keep(&dir);
        let mut c = d.connect("issuing-host-1");
        let (count, locked) = attempts(&mut c, CARD);
        assert!(
            count >= acknowledged,
            "round {round}: count went backwards: {count} < {acknowledged}"
        );
        acknowledged = count;
        assert!(!locked);
        assert_eq!(
            verify(&mut c, locked_card, "1234"),
            Status::PinLocked,
            "round {round}"
        );
        // Pipeline a burst of wrong PINs, read some answers, kill at a random moment.
        let b = block(CARD, "0000");
        let pvv = pvv_of(CARD, "1234");
        let mut burst = Vec::new();
        for id in 0..20 {
            cofre::protocol::encode_request(&mut burst, Opcode::PinVerify.code(), id, |w| {
                w.str(Tag::Pan, CARD)
                    .str(Tag::Key, "zpk.example")
                    .u8(Tag::Format, 0)
                    .bytes(Tag::PinBlock, &b)
                    .str(Tag::Pvk, "pvk.example")
                    .str(Tag::Pvv, &pvv);
            })
            .unwrap();
        }
        c.send_bytes(&burst);
        let read_before_kill = rng.random_range(0..=20);
        for _ in 0..read_before_kill {
            let r = c.read().unwrap();
            assert_eq!(r.status(), Status::VerificationFailed);
            acknowledged += 1;
        }
        d.signal(nix::sys::signal::Signal::SIGKILL);
        // Answers already on the wire were durable before they were sent.
        while let Some(r) = c.read() {
            if r.status() == Status::VerificationFailed {
                acknowledged += 1;
            }
        }
        drop(d);
    }
    let d = Daemon::start_in(dir);
    let mut c = d.connect("issuing-host-1");
    let (count, _) = attempts(&mut c, CARD);
    assert!(count >= acknowledged);
    assert_eq!(verify(&mut c, locked_card, "1234"), Status::PinLocked);
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
    let dir = scratch_with("fulldisk", &[("pin_limit = 3", "pin_limit = 100000000")]);
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
            let b = block(&pan, "0000");
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
