//! The try limits against an attacker with an ordinary client certificate: pipelined
//! guesses in one write, many connections guessing one card at once, a lock followed in
//! the same write by the right PIN, every dCVV2 code at once, and the pipelined attack
//! while the daemon is SIGKILLed and restarted. In every run: at most `limit` guesses
//! are evaluated (`ok` + `verification_failed`), the right PIN or code never answers
//! `ok` after the limit, and the card ends locked with its count at exactly the limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::protocol::Status;
use daemon::cards::{Card, attempts, by_id, count, dcvv2_attempts, exchange};
use daemon::{Daemon, Raw};

/// The example configuration's PIN and dCVV2 limits.
const LIMIT: u32 = 3;

/// Sends each batch of frames on a connection of its own as `identity`, all at once
/// (the connections are opened first, then released together), and returns every
/// answer's status, each batch in request-id order.
fn at_once(addr: &str, identity: &'static str, batches: Vec<Vec<Vec<u8>>>) -> Vec<Status> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(batches.len()));
    let threads: Vec<_> = batches
        .into_iter()
        .map(|frames| {
            let (addr, barrier) = (addr.to_owned(), barrier.clone());
            std::thread::spawn(move || {
                let mut c = Raw::connect(&addr, identity).unwrap();
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

/// Guesses for `cards` interleaved in one write from the ATM switch: each card gets 249
/// wrong PINs and its right one somewhere after the first `LIMIT`.
#[test]
fn one_write_of_250_guesses_per_card() {
    let d = Daemon::start("attack-one-write");
    let cards: Vec<Card> = (0..4).map(|_| Card::fresh()).collect();
    let mut atm = d.connect("atm-switch-1");
    let mut frames = Vec::new();
    let mut owner = Vec::new();
    let guesses: Vec<Vec<String>> = cards
        .iter()
        .enumerate()
        .map(|(i, c)| c.guesses(249, LIMIT as usize + 17 * i))
        .collect();
    for k in 0..250 {
        for (i, (c, g)) in cards.iter().zip(&guesses).enumerate() {
            let id = frames.len() as u32;
            frames.push(c.verify_frame(id, &g[k]));
            owner.push(i);
        }
    }
    // 1,000 requests: sent in four writes of 250 so the in-flight limit (256) holds.
    let mut answers = Vec::new();
    for chunk in frames.chunks(250) {
        answers.extend(exchange(&mut atm, chunk));
    }
    let statuses = by_id(answers);
    let mut host = d.connect("issuing-host-1");
    for (i, c) in cards.iter().enumerate() {
        let mine: Vec<Status> = statuses
            .iter()
            .zip(&owner)
            .filter(|(_, o)| **o == i)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(
            count(&mine, Status::Ok),
            0,
            "card {i}: the right PIN answered ok"
        );
        assert_eq!(count(&mine, Status::VerificationFailed), LIMIT as usize);
        assert_eq!(
            count(&mine, Status::PinLocked),
            250 - LIMIT as usize,
            "{mine:?}"
        );
        // The first LIMIT guesses (in arrival order) were the ones evaluated.
        assert!(
            mine[..LIMIT as usize]
                .iter()
                .all(|s| *s == Status::VerificationFailed)
        );
        assert_eq!(attempts(&mut host, &c.pan), (LIMIT, true));
    }
}

/// 16 connections, 250 guesses each, one card, all at once; three cards in turn.
#[test]
fn sixteen_connections_of_250_guesses_for_one_card() {
    let d = Daemon::start("attack-connections");
    for round in 0..3 {
        let card = Card::fresh();
        let batches = (0..16)
            .map(|t| {
                card.guesses(249, LIMIT as usize + t)
                    .iter()
                    .enumerate()
                    .map(|(id, p)| card.verify_frame(id as u32, p))
                    .collect()
            })
            .collect();
        let all = at_once(&d.addr, "atm-switch-1", batches);
        assert_eq!(all.len(), 16 * 250);
        assert_eq!(count(&all, Status::Ok), 0, "round {round}");
        assert_eq!(
            count(&all, Status::VerificationFailed),
            LIMIT as usize,
            "round {round}: exactly the limit evaluated across 16 connections"
        );
        assert_eq!(count(&all, Status::PinLocked), 16 * 250 - LIMIT as usize);
        assert_eq!(
            attempts(&mut d.connect("issuing-host-1"), &card.pan),
            (LIMIT, true)
        );
    }
}

/// A card with one failure gets, in one write, ten wrong PINs and then the right one:
/// two more failures lock it, the rest (the right PIN too) answer pin_locked, and the
/// count stays at the limit.
#[test]
fn a_lock_followed_in_the_same_write_by_the_right_pin() {
    let d = Daemon::start("attack-lock-then-right");
    let mut atm = d.connect("atm-switch-1");
    let mut host = d.connect("issuing-host-1");
    for _ in 0..3 {
        let card = Card::fresh();
        let wrong = card.guesses(11, 99);
        assert_eq!(
            by_id(exchange(&mut atm, &[card.verify_frame(0, &wrong[0])])),
            [Status::VerificationFailed]
        );
        let mut frames: Vec<Vec<u8>> = (1..=10)
            .map(|i| card.verify_frame(i as u32, &wrong[i]))
            .collect();
        frames.push(card.verify_frame(11, &card.pin));
        let statuses = by_id(exchange(&mut atm, &frames));
        let mut expected = vec![Status::VerificationFailed; 2];
        expected.extend([Status::PinLocked; 9]);
        assert_eq!(statuses, expected);
        assert_eq!(attempts(&mut host, &card.pan), (LIMIT, true));
        // And later, alone, the right PIN is still refused.
        assert_eq!(
            by_id(exchange(&mut atm, &[card.verify_frame(12, &card.pin)])),
            [Status::PinLocked]
        );
    }
}

/// Every three-digit dCVV2 code for one card at once, over four connections (250 each,
/// within the in-flight limit). Counter mode, window 0: exactly one code is right.
#[test]
fn all_1000_dcvv2_codes_at_once() {
    let d = Daemon::start("attack-dcvv2");
    for round in 0..3u64 {
        let card = Card::fresh();
        let counter = 1000 + round;
        let right: u32 = card.dcvv2_code(counter).parse().unwrap();
        // Rotate the codes so the right one comes after a few hundred others.
        let codes: Vec<String> = (0..1000)
            .map(|k| format!("{:03}", (right + 400 + k) % 1000))
            .collect();
        let batches = codes
            .chunks(250)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .map(|(id, code)| card.dcvv2_frame(id as u32, counter, 0, code))
                    .collect()
            })
            .collect();
        let all = at_once(&d.addr, "issuing-host-1", batches);
        assert_eq!(
            count(&all, Status::Ok),
            0,
            "round {round}: the right code found"
        );
        assert_eq!(count(&all, Status::VerificationFailed), LIMIT as usize);
        // Codes of neighbouring counters answer `expired` (not counted) if they come
        // before the lock; everything else is refused by the lock.
        let expired = count(&all, Status::Expired);
        assert!(expired <= 20, "{expired}");
        assert_eq!(
            count(&all, Status::PinLocked),
            1000 - LIMIT as usize - expired
        );
        let mut host = d.connect("issuing-host-1");
        assert_eq!(dcvv2_attempts(&mut host, &card.pan), (LIMIT, true));
        assert_eq!(
            attempts(&mut host, &card.pan),
            (0, false),
            "PIN tries untouched"
        );
    }
}

/// One dCVV2 code, the right one, presented 16 times at once on 16 connections (a
/// replayed capture): it is accepted exactly once, every other use is `replayed`.
#[test]
fn a_dcvv2_code_is_used_once_however_many_present_it_at_once() {
    let d = Daemon::start("attack-dcvv2-replay");
    for round in 0..3u64 {
        let card = Card::fresh();
        let counter = 2000 + round;
        let code = card.dcvv2_code(counter);
        let batches = (0..16)
            .map(|_| vec![card.dcvv2_frame(1, counter, 0, &code)])
            .collect();
        let all = at_once(&d.addr, "issuing-host-1", batches);
        assert_eq!(count(&all, Status::Ok), 1, "round {round}: {all:?}");
        assert_eq!(count(&all, Status::Replayed), 15, "round {round}: {all:?}");
    }
}

/// What has been answered for one card across the SIGKILL rounds.
struct Attacked {
    card: Card,
    pin_failures: u32,
    dcvv2_failures: u32,
}

/// Frames for `cards`, interleaved card after card, at most 250 (one write): request id
/// `k * 1000 + card index` for the k-th guess of a card.
fn interleaved(cards: &[Attacked], frame: impl Fn(&Card, u32, usize) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for k in 0..50 {
        for (i, a) in cards.iter().enumerate() {
            frames.push(frame(&a.card, (k * 1000 + i) as u32, k));
        }
    }
    frames.truncate(250);
    frames
}

/// The counter of every dCVV2 code in the SIGKILL test (window 0).
const COUNTER: u64 = 3000;

/// The pipelined attack, PIN and dCVV2 at once, while the daemon is SIGKILLed at random
/// moments and restarted. Each round attacks one fresh card and every card of the
/// earlier rounds: PIN guesses from the ATM switch, dCVV2 codes from the issuing host,
/// the right PIN or code after `LIMIT` wrong ones. Across all rounds and restarts: no
/// `ok`, at most `LIMIT` failures answered per card and kind, a count read after a
/// restart is never below what was answered nor above the limit, and at the end every
/// card is locked at exactly the limit for both. CI runs 20 rounds; more with
/// `COFRE_CRASH_KILLS=200 cargo test --release --test hsm_attack sigkill`.
#[test]
fn the_pipelined_attack_across_sigkill_and_restart() {
    use rand::RngExt;
    let rounds: usize = std::env::var("COFRE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = daemon::scratch("attack-sigkill");
    let mut rng = rand::rng();
    let mut cards: Vec<Attacked> = Vec::new();
    for round in 0..rounds {
        let d = Daemon::start_in_keep(&dir);
        let mut host = d.connect("issuing-host-1");
        for a in &cards {
            for ((count, locked), answered) in [
                (attempts(&mut host, &a.card.pan), a.pin_failures),
                (dcvv2_attempts(&mut host, &a.card.pan), a.dcvv2_failures),
            ] {
                assert!(
                    count >= answered && count <= LIMIT,
                    "round {round}: count {count}, answered {answered}"
                );
                assert_eq!(locked, count == LIMIT, "round {round}");
            }
        }
        cards.push(Attacked {
            card: Card::fresh(),
            pin_failures: 0,
            dcvv2_failures: 0,
        });
        let pins: Vec<Vec<String>> = cards
            .iter()
            .map(|a| a.card.guesses(49, LIMIT as usize))
            .collect();
        let codes: Vec<Vec<String>> = cards
            .iter()
            .map(|a| a.card.dcvv2_guesses(COUNTER, 49, LIMIT as usize))
            .collect();
        let pin_frames = interleaved(&cards, |c, id, k| {
            let i = (id % 1000) as usize;
            c.verify_frame(id, &pins[i][k])
        });
        let code_frames = interleaved(&cards, |c, id, k| {
            let i = (id % 1000) as usize;
            c.dcvv2_frame(id, COUNTER, 0, &codes[i][k])
        });
        let mut atm = d.connect("atm-switch-1");
        atm.send_bytes(&pin_frames.concat());
        host.send_bytes(&code_frames.concat());
        let read_before_kill = rng.random_range(0..=pin_frames.len());
        let mut pin_answers = Vec::new();
        for _ in 0..read_before_kill {
            let r = atm.read().unwrap();
            pin_answers.push((r.header.request_id, r.status()));
        }
        d.signal(nix::sys::signal::Signal::SIGKILL);
        // Answers already on the wire were durable before they were sent.
        while let Some(r) = atm.read() {
            pin_answers.push((r.header.request_id, r.status()));
        }
        let mut code_answers = Vec::new();
        while let Some(r) = host.read() {
            code_answers.push((r.header.request_id, r.status()));
        }
        for (answers, pin) in [(pin_answers, true), (code_answers, false)] {
            for (id, status) in answers {
                let a = &mut cards[(id % 1000) as usize];
                assert_ne!(status, Status::Ok, "round {round}: {} found", a.card.pan);
                assert_ne!(status, Status::Expired, "round {round}");
                let answered = if pin {
                    &mut a.pin_failures
                } else {
                    &mut a.dcvv2_failures
                };
                if status == Status::VerificationFailed {
                    *answered += 1;
                }
                assert!(
                    *answered <= LIMIT,
                    "round {round}: more than the limit evaluated"
                );
            }
        }
        drop(d);
    }
    // Last, uninterrupted: every card ends locked at exactly the limit.
    let d = Daemon::start_in(dir);
    let mut atm = d.connect("atm-switch-1");
    let mut host = d.connect("issuing-host-1");
    for a in &cards {
        let card = &a.card;
        let frames: Vec<Vec<u8>> = card
            .guesses(9, LIMIT as usize)
            .iter()
            .enumerate()
            .map(|(k, p)| card.verify_frame(k as u32, p))
            .collect();
        let statuses = by_id(exchange(&mut atm, &frames));
        assert_eq!(count(&statuses, Status::Ok), 0);
        let failed = count(&statuses, Status::VerificationFailed) as u32;
        assert!(
            a.pin_failures + failed <= LIMIT,
            "{} + {failed}",
            a.pin_failures
        );
        assert_eq!(attempts(&mut host, &card.pan), (LIMIT, true));
        let frames: Vec<Vec<u8>> = card
            .dcvv2_guesses(COUNTER, 9, LIMIT as usize)
            .iter()
            .enumerate()
            .map(|(k, c)| card.dcvv2_frame(k as u32, COUNTER, 0, c))
            .collect();
        let statuses = by_id(exchange(&mut host, &frames));
        assert_eq!(count(&statuses, Status::Ok), 0);
        let failed = count(&statuses, Status::VerificationFailed) as u32;
        assert!(a.dcvv2_failures + failed <= LIMIT);
        assert_eq!(dcvv2_attempts(&mut host, &card.pan), (LIMIT, true));
    }
}
