//! The payShield-compatible listener against a live daemon (real TLS, the example
//! certificates and roles): the golden frames of `protocol/vectors/payshield/` replayed
//! one by one and pipelined; malformed messages answered with error codes on a
//! connection that stays open; key blocks that fail their MAC or name a key cofre does
//! not hold; the role policy; read and idle timeouts; plain TCP only on loopback;
//! `cofre keys export --payshield`; `G0` on the published X9.24-1 block; and the
//! independent Python client (`tests/payshield_client.py`, standard library only). The
//! PIN-try limit through `EC`/`DC` is `tests/payshield_lockout.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
mod payshield_common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use daemon::{Daemon, scratch};
use payshield_common::{
    Ps, block, block_for_missing_key, check, cofre_kcv, vectors, with_payshield,
};

#[test]
fn golden_frames_replay_one_by_one_and_pipelined() {
    let d = Daemon::start_in(with_payshield("ps-golden", ""));
    let addr = d.payshield.clone().unwrap();
    let v = vectors();
    let mut c = Ps::tls(&addr, "issuing-host-1");
    for (request, expected, exact) in &v.pairs {
        check(request, expected, *exact, &c.call(request));
    }
    // The same frames in one write on a new connection: the same answers, in order.
    let mut c = Ps::tls(&addr, "issuing-host-1");
    let all: Vec<Vec<u8>> = v.pairs.iter().map(|p| p.0.as_bytes().to_vec()).collect();
    c.send_all(&all);
    for (request, expected, exact) in &v.pairs {
        check(request, expected, *exact, &c.read().unwrap());
    }
    // NC carries the example LMK's KCV, as `health` does.
    let nc = c.call("0000NC");
    let kcv = cofre_kcv(&d);
    assert_eq!(&nc[8..24], format!("{kcv:0<16}"), "{nc}");
    // No PAN, PIN block, CVV or key block in the daemon's debug log (the same search
    // finds each of them in the requests: the positive control).
    let secrets = [
        "4111111111111111",
        "2A3D408A1977DDE9",
        "3100E7D6AB527AA1",
        "2812201",
        &block("cvk")[40..],
    ];
    let requests: String = v.pairs.iter().map(|p| p.0.as_str()).collect();
    let log = d.log_text();
    for s in secrets {
        assert!(requests.contains(s), "positive control: {s}");
        assert!(!log.contains(s), "{s} in the daemon log");
    }
    // Metrics count payShield commands under the native operation.
    let m = d.metrics_text();
    assert!(
        m.lines()
            .any(|l| l.contains("operation=\"cvv.verify\"") && l.contains("verification_failed")),
        "{m}"
    );
}

#[test]
fn malformed_messages_are_answered_and_the_connection_stays_open() {
    let d = Daemon::start_in(with_payshield("ps-malformed", ""));
    let addr = d.payshield.clone().unwrap();
    let mut c = Ps::tls(&addr, "issuing-host-1");
    let cvk = block("cvk");
    let card = "4111111111111111;2812201";
    // Too short for a header and a command code: what there is of the header, ZZ, 15.
    assert_eq!(c.call(""), "0000ZZ15");
    assert_eq!(c.call("12"), "1200ZZ15");
    assert_eq!(c.call("1234N"), "1234ZZ15");
    // Unknown or unsupported commands.
    assert_eq!(c.call("0001ZA"), "0001ZB68");
    assert_eq!(c.call("0002CI"), "0002CJ68");
    assert_eq!(c.call("0002A0"), "0002A115");
    // Bad lengths: a key block whose length field runs past the message, one too short
    // to be a block, a PAN over 19 digits, trailing data.
    assert_eq!(c.call(&format!("0003CW{}", &cvk[..100])), "0003CX83");
    assert_eq!(c.call("0004CWSD0001"), "0004CX83");
    assert_eq!(
        c.call(&format!("0005CW{cvk}41111111111111111111;2812201")),
        "0005CX15"
    );
    assert_eq!(c.call(&format!("0006CW{cvk}{card}X")), "0006CX15");
    // Non-hex key material in a variant-scheme key, and in a key block.
    assert_eq!(c.call(&format!("0007CWUXYZ{card}")), "0007CX26");
    let mut bad = cvk.clone().into_bytes();
    bad[60] = b'Z';
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(c.call(&format!("0008CW{bad}{card}")), "0008CX83");
    // A block altered in its MAC or encrypted data: authentication failure.
    let mut altered = cvk.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
    let altered = String::from_utf8(altered).unwrap();
    assert_eq!(c.call(&format!("0009CW{altered}{card}")), "0009CXA4");
    // A block naming a key cofre does not hold.
    let gone = block_for_missing_key();
    assert_eq!(c.call(&format!("0010CW{gone}{card}")), "0010CX84");
    // Binary garbage as fields.
    c.send_all(&[b"0011CW\xff\x00\x01".to_vec()]);
    assert_eq!(c.read().unwrap(), "0011CX26");
    // And the connection still answers.
    assert_eq!(c.call(&format!("0012CW{cvk}{card}")), "0012CX00812");
    // The role policy: the ATM switch may not generate CVVs (17), may run NC.
    let mut atm = Ps::tls(&addr, "atm-switch-1");
    assert_eq!(atm.call(&format!("0013CW{cvk}{card}")), "0013CX17");
    assert!(atm.call("0014NC").starts_with("0014ND00"));
    // A length prefix over max_frame cannot be answered without reading it: closed.
    let mut big = Ps::tls(&addr, "issuing-host-1");
    big.0.write_all(&[0xFF, 0xFF]).unwrap();
    big.0.flush().unwrap();
    assert_eq!(big.read(), None);
    // The daemon never panicked.
    assert!(!d.log_text().contains("panicked"), "{}", d.log_text());
}

#[test]
fn plain_tcp_only_on_loopback() {
    let d = Daemon::start_in(with_payshield(
        "ps-plain",
        "plain = true\nplain_identity = \"issuing-host-1\"",
    ));
    let addr = d.payshield.clone().unwrap();
    let mut c = Ps::plain(&addr);
    assert!(c.call("0001NC").starts_with("0001ND00"));
    let cvk = block("cvk");
    assert_eq!(
        c.call(&format!("0002CW{cvk}4111111111111111;2812201")),
        "0002CX00812"
    );
    drop(d);
    // On a routable address the daemon refuses to start, naming the bound.
    for (listen, flag) in [
        ("0.0.0.0:1500", None),
        ("127.0.0.1:1500", Some("0.0.0.0:0")),
    ] {
        let dir = scratch("ps-plain-refused");
        let path = dir.join("hsm.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "\n[payshield]\nlisten = \"{listen}\"\nplain = true\nplain_identity = \"a\"\n"
        ));
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cofre"));
        cmd.args(["hsm", "--config"]).arg(&path);
        cmd.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        if let Some(f) = flag {
            cmd.args(["--payshield-listen", f]);
        }
        let out = cmd.output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("only on a loopback address"), "{err}");
    }
}

/// The native listener's limits: a message not complete within `read_timeout` of its
/// first byte closes the connection; so does an idle one after `idle_timeout`; another
/// connection is served meanwhile.
#[test]
fn read_and_idle_timeouts_close_connections() {
    let dir = with_payshield("ps-timeouts", "");
    let path = dir.join("hsm.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("read_timeout = \"30s\"", "read_timeout = \"300ms\"")
        .replace("idle_timeout = \"300s\"", "idle_timeout = \"1s\"");
    std::fs::write(&path, text).unwrap();
    let d = Daemon::start_in(dir);
    let addr = d.payshield.clone().unwrap();
    let mut trickle = Ps::tls(&addr, "issuing-host-1");
    assert!(trickle.call("0001NC").starts_with("0001ND00"));
    // Half a message, then nothing: closed without an answer.
    trickle.0.write_all(&[0, 6, b'0', b'0']).unwrap();
    trickle.0.flush().unwrap();
    let mut idle = Ps::tls(&addr, "issuing-host-1");
    assert!(idle.call("0002NC").starts_with("0002ND00"));
    assert_eq!(trickle.read(), None);
    // Idle after an answer: closed too.
    assert_eq!(idle.read(), None);
    assert!(
        Ps::tls(&addr, "issuing-host-1")
            .call("0003NC")
            .starts_with("0003ND00")
    );
}

/// `cofre keys export --payshield` on the daemon's key store: the block it prints is
/// accepted in a key field, and the export is in the audit log.
#[test]
fn keys_export_payshield_prints_a_block_the_listener_accepts() {
    let dir = with_payshield("ps-export", "");
    let export = |id: &str| {
        let lmk = dir.join("lmk");
        Command::new(env!("CARGO_BIN_EXE_cofre"))
            .args(["keys", "export", "--store"])
            .arg(dir.join("keys.json"))
            .arg("--lmk-component")
            .arg(lmk.join("component-1.txt"))
            .arg("--lmk-component")
            .arg(lmk.join("component-2.txt"))
            .args(["--operator", "test", "--payshield", id])
            .output()
            .unwrap()
    };
    let out = export("cvk.example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cvk = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(cvk.starts_with("SD"), "{cvk}");
    assert_ne!(cvk, block("cvk"), "random padding: a new block each time");
    let missing = export("cvk.missing");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unknown key"));
    let audit = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    assert!(audit.contains("export-payshield"), "{audit}");
    let d = Daemon::start_in(dir);
    let mut c = Ps::tls(&d.payshield.clone().unwrap(), "issuing-host-1");
    assert_eq!(
        c.call(&format!("0001CW{cvk}4111111111111111;2812201")),
        "0001CX00812"
    );
}

/// `G0`: the published ANSI X9.24-1:2009 Annex A block (BDK
/// 0123456789ABCDEFFEDCBA9876543210, KSN FFFF9876543210E00001, PIN 1234, PAN
/// 4012345678909: 1B9C1845EB993A7A) translated to format 0 under zpk.example; a
/// counter no terminal may send is refused (15, `ksn_refused`).
#[test]
fn g0_translates_a_published_dukpt_block_to_the_zpk() {
    let dir = with_payshield("ps-g0", "");
    let lmk = dir.join("lmk");
    let cofre = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
            .args(["keys"])
            .args(&args[..1])
            .arg("--store")
            .arg(dir.join("keys.json"))
            .arg("--lmk-component")
            .arg(lmk.join("component-1.txt"))
            .arg("--lmk-component")
            .arg(lmk.join("component-2.txt"))
            .args(["--operator", "test"])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // The BDK as two components: a random one and the BDK XOR it.
    let bdk = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let r: [u8; 16] = rand::random();
    let other: Vec<u8> = bdk.iter().zip(r).map(|(b, r)| b ^ r).collect();
    let (c1, c2) = (dir.join("bdk-1.txt"), dir.join("bdk-2.txt"));
    std::fs::write(&c1, format!("component = {}\n", hex::encode_upper(r))).unwrap();
    std::fs::write(&c2, format!("component = {}\n", hex::encode_upper(other))).unwrap();
    let (c1, c2) = (c1.to_str().unwrap(), c2.to_str().unwrap());
    cofre(&[
        "import",
        "--id",
        "bdk.x924",
        "--kind",
        "bdk",
        "--component-file",
        c1,
        "--component-file",
        c2,
        "--kcv",
        "08D7B4",
    ]);
    let bdk_block = cofre(&["export", "--payshield", "bdk.x924"]);
    // The X9.24-3-2017 AES-128 BDK, one component pair the same way.
    let aes: [u8; 16] = rand::random();
    let aes_other: Vec<u8> = hex::decode("FEDCBA9876543210F1F1F1F1F1F1F1F1")
        .unwrap()
        .iter()
        .zip(aes)
        .map(|(b, r)| b ^ r)
        .collect();
    let (a1, a2) = (dir.join("aes-bdk-1.txt"), dir.join("aes-bdk-2.txt"));
    std::fs::write(&a1, format!("component = {}\n", hex::encode_upper(aes))).unwrap();
    std::fs::write(
        &a2,
        format!("component = {}\n", hex::encode_upper(aes_other)),
    )
    .unwrap();
    cofre(&[
        "import",
        "--id",
        "bdk.aes",
        "--kind",
        "bdk",
        "--algorithm",
        "aes",
        "--component-file",
        a1.to_str().unwrap(),
        "--component-file",
        a2.to_str().unwrap(),
    ]);
    let aes_bdk_block = cofre(&["export", "--payshield", "bdk.aes"]);
    let d = Daemon::start_in(dir);
    let mut c = Ps::tls(&d.payshield.clone().unwrap(), "issuing-host-1");
    let zpk = block("zpk");
    let pan = "4012345678909";
    let expected = hex::encode_upper(daemon::iso0_block(pan, "1234"));
    assert_eq!(
        c.call(&format!(
            "0001G0{bdk_block}{zpk}605FFFF9876543210E000011B9C1845EB993A7A01401234567890"
        )),
        format!("0001G10004{expected}01")
    );
    // Counter 0: no terminal sends it.
    assert_eq!(
        c.call(&format!(
            "0002G0{bdk_block}{zpk}605FFFF9876543210E000001B9C1845EB993A7A01401234567890"
        )),
        "0002G115"
    );
    // The ZPK where the BDK goes: A6.
    assert_eq!(
        c.call(&format!(
            "0003G0{zpk}{zpk}605FFFF9876543210E000011B9C1845EB993A7A01401234567890"
        )),
        "0003G1A6"
    );
    // G0 is TDES DUKPT only (protocol/payshield.md): an AES BDK derives no TDES PIN key
    // from a 20H KSN (A6, the native wrong_key_usage), and a 24H AES KSN with its 32H
    // format 4 block does not fit G0's fixed fields: the KSN field takes 20 of the 24
    // characters, the PIN block field the next 16, and the format code lands on `65`,
    // which is no format code (23).
    assert_eq!(
        c.call(&format!(
            "0004G0{aes_bdk_block}{zpk}605FFFF9876543210E000011B9C1845EB993A7A01401234567890"
        )),
        "0004G1A6"
    );
    assert_eq!(
        c.call(&format!(
            "0005G0{aes_bdk_block}{zpk}605123456789012345600000001A912150391AB65A67E52883D81CE2D1501111111111111"
        )),
        "0005G123"
    );
}

#[test]
fn an_independent_client_from_the_host_command_documentation() {
    let d = Daemon::start_in(with_payshield("ps-python", ""));
    let addr = d.payshield.clone().unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let pki = daemon::example_dir().join("pki");
    let v = vectors();
    let keys: Vec<String> = v.keys.iter().map(|(n, b)| format!("{n}={b}")).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/payshield_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--host", host, "--port", port])
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("client-issuing-host-1.pem"))
        .arg("--key")
        .arg(pki.join("client-issuing-host-1-key.pem"))
        .args(keys)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("checks passed"), "{stdout}");
}
