//! The daemon's edges over real TLS: certificates and roles, every frame violation in
//! protocol/README.md, limits, pipelining with out-of-order completion, key
//! administration, SIGHUP reload, graceful SIGTERM, and bad configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use std::io::{Read, Write};
use std::time::Duration;

use cofre::protocol::{self, Opcode, Status, Tag};
use daemon::{Daemon, Raw, scratch_with};

#[test]
fn certificates_and_roles() {
    let d = Daemon::start("roles");
    // A certificate from another CA fails the handshake.
    let other = cofre::keys::devpki::DevPki::generate("other CA", &["atm-switch-1"]).unwrap();
    let dir = d.dir.join("other");
    other.write(&dir).unwrap();
    let pem = |f: &str| dir.join(f);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_file_iter(d.dir.join("pki/ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let foreign = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots.clone())
    .with_client_auth_cert(
        rustls::pki_types::CertificateDer::pem_file_iter(pem("client-atm-switch-1.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect(),
        rustls::pki_types::PrivateKeyDer::from_pem_file(pem("client-atm-switch-1-key.pem"))
            .unwrap(),
    )
    .unwrap();
    let refused = Raw::connect_with(&d.addr, foreign)
        .and_then(|mut r| {
            r.send(Opcode::Health, 1, |_| {});
            r.read().ok_or(std::io::ErrorKind::ConnectionReset.into())
        })
        .is_err();
    assert!(refused, "a foreign client certificate must be refused");
    // No client certificate at all.
    let anonymous = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let refused = Raw::connect_with(&d.addr, anonymous)
        .and_then(|mut r| {
            r.send(Opcode::Health, 1, |_| {});
            r.read().ok_or(std::io::ErrorKind::ConnectionReset.into())
        })
        .is_err();
    assert!(refused, "no client certificate must be refused");

    // A valid certificate without a role; an operation outside the role; a key outside it.
    let r = d.connect("no-role-1").call(Opcode::Health, |_| {});
    assert_eq!(r.status(), Status::NotAuthorised);
    let mut atm = d.connect("atm-switch-1");
    let r = atm.call(Opcode::CvvGenerate, |w| {
        w.str(Tag::Pan, "4111111111111111");
    });
    assert_eq!(r.status(), Status::NotAuthorised);
    let r = atm.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, "4111111111111111")
            .str(Tag::Key, "cvk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &[0; 8])
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, "1234");
    });
    assert_eq!(r.status(), Status::NotAuthorised);
    assert_eq!(atm.call(Opcode::Health, |_| {}).status(), Status::Ok);
    let r = d
        .connect("security-officer-1")
        .call(Opcode::PinVerify, |_| {});
    assert_eq!(r.status(), Status::NotAuthorised);
    let r = d.connect("facade-1").call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, "4111111111111111");
    });
    assert_eq!(r.status(), Status::NotAuthorised);
}

#[test]
fn frame_violations() {
    let d = Daemon::start_in(scratch_with(
        "frames",
        &[("read_timeout = \"30s\"", "read_timeout = \"1s\"")],
    ));
    let mut c = d.connect("issuing-host-1");
    // Unknown opcode, bad version, wrong kind, malformed fields: answered, still open.
    let mut buf = Vec::new();
    protocol::encode_request(&mut buf, 0x7777, 5, |_| {}).unwrap();
    c.send_bytes(&buf);
    let r = c.read().unwrap();
    assert_eq!(
        (r.status(), r.header.request_id, r.header.opcode),
        (Status::UnknownOperation, 5, 0x7777)
    );
    let mut v2 = Vec::new();
    protocol::encode_request(&mut v2, Opcode::Health.code(), 6, |_| {}).unwrap();
    v2[4] = 2;
    c.send_bytes(&v2);
    assert_eq!(c.read().unwrap().status(), Status::UnsupportedVersion);
    let mut kind = v2.clone();
    kind[4] = 1;
    kind[5] = 2;
    c.send_bytes(&kind);
    let r = c.read().unwrap();
    assert_eq!(
        (r.status(), r.header.request_id),
        (Status::MalformedField, 6)
    );
    // Field overrunning the frame, unknown tag, repeated tag, wrong type, unused field.
    for (body, tag) in [
        (vec![0x01, 0, 9, b'4'], 0x01),
        (vec![0xEE, 0, 0], 0xEE),
        (vec![0x28, 0, 1, b'4', 0x28, 0, 1, b'4'], 0x28),
        (vec![0x29, 0, 2, 0, 16], 0x29),
        (
            vec![
                0x28, 0, 6, b'4', b'0', b'0', b'0', b'0', b'0', 0x07, 0, 1, 0,
            ],
            0x07,
        ),
        (vec![0x29, 0, 1, 16], 0x28),
    ] {
        let mut f = Vec::new();
        protocol::encode_request(&mut f, Opcode::PanGenerate.code(), 8, |_| {}).unwrap();
        f.extend_from_slice(&body);
        let n = (f.len() - 4) as u32;
        f[..4].copy_from_slice(&n.to_be_bytes());
        c.send_bytes(&f);
        let r = c.read().unwrap();
        assert_eq!(r.status(), Status::MalformedField, "{body:?}");
        assert_eq!(r.fields().u8(Tag::Field).unwrap(), Some(tag), "{body:?}");
    }
    assert_eq!(
        c.call(Opcode::Health, |_| {}).status(),
        Status::Ok,
        "still open"
    );

    // Oversized frame: id-0 error, then a clean close.
    let mut big = d.connect("issuing-host-1");
    big.send_bytes(&(1_000_000u32).to_be_bytes());
    let r = big.read().unwrap();
    assert_eq!(
        (r.status(), r.header.request_id),
        (Status::MalformedField, 0)
    );
    assert!(big.read().is_none(), "closed after an oversized frame");
    // Too short to hold a header: the same.
    let mut short = d.connect("issuing-host-1");
    short.send_bytes(&[0, 0, 0, 3, 1, 1, 0]);
    assert_eq!(short.read().unwrap().header.request_id, 0);
    assert!(short.read().is_none());
    // Truncated frame: the daemon closes after read_timeout (1 s here) without
    // answering: a clean TLS close, seen well before the client's own 20 s timeout.
    let mut cut = d.connect("issuing-host-1");
    cut.send_bytes(&buf[..buf.len() - 2]);
    let mut rest = Vec::new();
    assert_eq!(
        cut.tls.read_to_end(&mut rest).map(|_| rest.len()).ok(),
        Some(0)
    );
    // Garbage that is not TLS at all: closed, daemon unharmed.
    let mut raw = std::net::TcpStream::connect(&d.addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    drop(raw);
    assert_eq!(
        d.connect("issuing-host-1")
            .call(Opcode::Health, |_| {})
            .status(),
        Status::Ok
    );
}

#[test]
fn pipelining_limits_and_out_of_order() {
    let d = Daemon::start_in(scratch_with(
        "pipe",
        &[("max_in_flight = 256", "max_in_flight = 4")],
    ));
    let mut so = d.connect("security-officer-1");
    // One slow request (a key generation: audit line and store written with fsync, on
    // a blocking thread) and fast ones in one write: each answered once, matched by
    // id, in whatever order they complete (printed, not asserted: which finishes
    // first is the scheduler's business).
    let mut burst = Vec::new();
    protocol::encode_request(&mut burst, Opcode::KeyGenerate.code(), 1, |w| {
        w.str(Tag::Key, "zpk.pipelined").str(Tag::Kind, "zpk");
    })
    .unwrap();
    for id in 2..=3 {
        protocol::encode_request(&mut burst, Opcode::Health.code(), id, |_| {}).unwrap();
    }
    so.send_bytes(&burst);
    let order: Vec<u32> = (0..3)
        .map(|_| {
            let r = so.read().unwrap();
            assert_eq!(r.status(), Status::Ok);
            r.header.request_id
        })
        .collect();
    println!("answered in the order {order:?}");
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2, 3]);

    // More slow requests in one burst than max_in_flight (key generations: each writes
    // and syncs the audit log and the store, one at a time): the excess is refused with
    // overloaded, every request gets exactly one answer, the connection survives.
    let mut burst = Vec::new();
    for id in 100..120u32 {
        protocol::encode_request(&mut burst, Opcode::KeyGenerate.code(), id, |w| {
            w.str(Tag::Key, &format!("mac.burst{id}"))
                .str(Tag::Kind, "mac");
        })
        .unwrap();
    }
    so.send_bytes(&burst);
    let mut seen = Vec::new();
    let mut overloaded = 0;
    for _ in 100..120 {
        let r = so.read().unwrap();
        seen.push(r.header.request_id);
        match r.status() {
            Status::Ok => assert!(!r.str(Tag::Kcv).is_empty()),
            Status::Overloaded => overloaded += 1,
            s => panic!("{s}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (100..120).collect::<Vec<_>>());
    assert!(overloaded > 0, "the in-flight limit is enforced");
    assert_eq!(so.call(Opcode::Health, |_| {}).status(), Status::Ok);
}

#[test]
fn frames_split_anywhere_or_packed_together_are_all_answered() {
    let d = Daemon::start("split");
    let mut c = d.connect("issuing-host-1");
    // Three requests sent one byte per TLS record: reassembled across reads.
    let mut bytes = Vec::new();
    for id in 1..=3u32 {
        protocol::encode_request(&mut bytes, Opcode::CvvGenerate.code(), id, |w| {
            w.str(Tag::Pan, "4111111111111111")
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        })
        .unwrap();
    }
    for b in &bytes {
        c.send_bytes(std::slice::from_ref(b));
    }
    for id in 1..=3u32 {
        let r = c.read().unwrap();
        assert_eq!((r.header.request_id, r.status()), (id, Status::Ok));
        assert_eq!(r.str(Tag::Cvv).len(), 3);
    }
    // 200 requests in one write, the last one cut in two: each answered once, in order
    // (all are executed at once), the cut one when its rest arrives.
    let mut burst = Vec::new();
    for id in 10..210u32 {
        protocol::encode_request(&mut burst, Opcode::Health.code(), id, |_| {}).unwrap();
    }
    let cut = burst.len() - 3;
    c.send_bytes(&burst[..cut]);
    let ids: Vec<u32> = (10..209)
        .map(|_| c.read().unwrap().header.request_id)
        .collect();
    assert_eq!(ids, (10..209).collect::<Vec<_>>());
    c.send_bytes(&burst[cut..]);
    assert_eq!(c.read().unwrap().header.request_id, 209);
}

#[test]
fn key_administration_reload_and_graceful_stop() {
    let mut d = Daemon::start("admin");
    let mut so = d.connect("security-officer-1");
    let mut host = d.connect("issuing-host-1");
    let r = so.call(Opcode::KeyGenerate, |w| {
        w.str(Tag::Key, "cvk.new")
            .str(Tag::Kind, "cvk")
            .bool(Tag::Exportable, true);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let kcv1 = r.str(Tag::Kcv);
    let gen_cvv = |c: &mut Raw| {
        c.call(Opcode::CvvGenerate, |w| {
            w.str(Tag::Pan, "4111111111111111")
                .str(Tag::Key, "cvk.new")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "000");
        })
    };
    let before = gen_cvv(&mut host);
    assert_eq!(before.u32(Tag::KeyVersion), 1);
    // Rotate: generation moves to v2, the v1 CVV still verifies (verify-only).
    let r = so.call(Opcode::KeyRotate, |w| {
        w.str(Tag::Key, "cvk.new");
    });
    assert_eq!(r.u32(Tag::KeyVersion), 2);
    assert_eq!(gen_cvv(&mut host).u32(Tag::KeyVersion), 2);
    let v = host.call(Opcode::CvvVerify, |w| {
        w.str(Tag::Pan, "4111111111111111")
            .str(Tag::Key, "cvk.new")
            .str(Tag::Expiry, "2812")
            .str(Tag::ServiceCode, "000")
            .str(Tag::Cvv, &before.str(Tag::Cvv));
    });
    assert_eq!((v.status(), v.u32(Tag::KeyVersion)), (Status::Ok, 1));
    // Export under the AES KEK and import the block back under a new id.
    let r = so.call(Opcode::KeyExport, |w| {
        w.str(Tag::Key, "cvk.new")
            .str(Tag::Kek, "kek.example")
            .u32(Tag::KeyVersion, 1);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let block = r.str(Tag::KeyBlock);
    assert!(block.starts_with('D'));
    let r = so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, "cvk.imported")
            .str(Tag::Kek, "kek.example")
            .str(Tag::KeyBlock, &block);
    });
    assert_eq!((r.status(), r.str(Tag::Kcv)), (Status::Ok, kcv1.clone()));
    let mut tampered = block.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let r = so.call(Opcode::KeyImport, |w| {
        w.str(Tag::Key, "cvk.tampered")
            .str(Tag::Kek, "kek.example")
            .str(Tag::KeyBlock, std::str::from_utf8(&tampered).unwrap());
    });
    assert_eq!(r.status(), Status::KeyBlockRefused);
    let r = so.call(Opcode::KeyExport, |w| {
        w.str(Tag::Key, "token.example")
            .str(Tag::Kek, "kek.example");
    });
    assert_eq!(r.status(), Status::NotExportable);
    let r = so.call(Opcode::KeyRetire, |w| {
        w.str(Tag::Key, "cvk.new").u32(Tag::KeyVersion, 1);
    });
    assert_eq!(r.status(), Status::Ok);
    let listing = so.call(Opcode::KeyList, |_| {}).str(Tag::Listing);
    assert!(listing.contains("cvk.new v1 cvk tdes retired"), "{listing}");
    assert!(listing.contains("cvk.new v2 cvk tdes active"));
    // The audit log names the certificate and verifies.
    let audit = std::fs::read_to_string(d.dir.join("audit.log")).unwrap();
    assert!(audit.contains("cert:security-officer-1"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(&d.dir)
        .args([
            "keys",
            "audit-verify",
            "--store",
            "keys.json",
            "--lmk-component",
            "lmk/component-1.txt",
            "--lmk-component",
            "lmk/component-2.txt",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGHUP: a key added on disk by `cofre keys` appears without dropping connections.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(&d.dir)
        .args([
            "keys",
            "generate",
            "--store",
            "keys.json",
            "--lmk-component",
            "lmk/component-1.txt",
            "--lmk-component",
            "lmk/component-2.txt",
            "--id",
            "mac.offline",
            "--kind",
            "mac",
            "--algorithm",
            "hmac",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let mut seen = false;
    for _ in 0..100 {
        let r = host.call(Opcode::MacGenerate, |w| {
            w.str(Tag::Key, "mac.offline").bytes(Tag::Data, b"x");
        });
        if r.status() == Status::Ok {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen, "the reloaded key is served on the same connection");

    // SIGTERM with a request in flight. A health and a key generation go in one
    // write (one TLS record, so one read): once the health is answered, the daemon has
    // read the key generation too, whose fsyncs are then usually still running. It is
    // answered before the daemon closes and exits 0.
    let mut burst = Vec::new();
    protocol::encode_request(&mut burst, Opcode::Health.code(), 76, |_| {}).unwrap();
    protocol::encode_request(&mut burst, Opcode::KeyGenerate.code(), 77, |w| {
        w.str(Tag::Key, "mac.at-shutdown").str(Tag::Kind, "mac");
    })
    .unwrap();
    so.send_bytes(&burst);
    let first = so.read().unwrap();
    let status = d.stop();
    assert!(status.success(), "{status:?}");
    let mut answered = vec![(first.header.request_id, first.status())];
    while let Some(r) = so.read() {
        answered.push((r.header.request_id, r.status()));
    }
    answered.sort_unstable_by_key(|(id, _)| *id);
    assert_eq!(answered, [(76, Status::Ok), (77, Status::Ok)]);
    let listing = std::fs::read_to_string(d.dir.join("keys.json")).unwrap();
    assert!(
        listing.contains("mac.at-shutdown"),
        "the answered change is on disk"
    );
    let log = d.log_text();
    assert!(log.contains("shutting down"));
}

#[test]
fn bad_configuration_exits_64_before_binding() {
    for (from, to, says) in [
        ("max_in_flight = 256", "max_in_flight = 0", "max_in_flight"),
        ("keys.json", "missing.json", "missing.json"),
        ("policy.toml", "nope.toml", "nope.toml"),
        (
            "token_key = \"token.example\"",
            "token_key = \"cvk.example\"",
            "token_key",
        ),
        ("lmk/component-2.txt", "lmk/component-1.txt", "MAC"),
        (
            "pin_limit = 3",
            "pin_limit = 4000000000",
            "lockout.pin_limit = 4000000000 is out of bounds (1 to 20)",
        ),
        (
            "idle_timeout = \"300s\"",
            "idle_timeout = \"100000d\"",
            "limits.idle_timeout = \"100000d\" is out of bounds (1s to 1day)",
        ),
        (
            "max_connections = 1024",
            "max_connections = -1",
            "limits.max_connections = -1 is out of bounds (1 to 65536)",
        ),
    ] {
        let dir = scratch_with("badcfg", &[(from, to)]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
            .args(["hsm", "--config"])
            .arg(dir.join("hsm.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{from} -> {to}: {err}");
        assert!(err.contains(says), "{from} -> {to}: {err}");
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "nothing bound"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A metric's value in the daemon's text exposition.
fn metric(d: &Daemon, name: &str) -> f64 {
    d.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Beyond max_connections an authenticated connection completes its handshake and
/// waits, unread, for a slot (the daemon's gauge says so); once one closes it is
/// served.
#[test]
fn connection_limit_holds_new_connections_back() {
    let d = Daemon::start_in(scratch_with(
        "conns",
        &[("max_connections = 1024", "max_connections = 2")],
    ));
    let a = d.connect("issuing-host-1");
    let mut b = d.connect("issuing-host-1");
    assert_eq!(b.call(Opcode::Health, |_| {}).status(), Status::Ok);
    let mut third = d.connect("issuing-host-1");
    third.send(Opcode::Health, 7, |_| {});
    let mut waiting = 0.0;
    for _ in 0..200 {
        waiting = metric(&d, "cofre_connections_waiting");
        if waiting == 1.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(waiting, 1.0, "the third connection waits for a slot");
    assert_eq!(metric(&d, "cofre_connections_open"), 2.0);
    // The two open ones are served meanwhile.
    assert_eq!(b.call(Opcode::Health, |_| {}).status(), Status::Ok);
    drop(a);
    let r = third.read().unwrap();
    assert_eq!((r.header.request_id, r.status()), (7, Status::Ok));
    assert_eq!(metric(&d, "cofre_connections_waiting"), 0.0);
}

#[test]
fn systemd_readiness_is_sent_once_listening() {
    let dir = daemon::scratch("notify");
    let sock_path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Nobody reads the daemon's stdout: its "listening on" line meets a closed pipe,
    // which must not stop it.
    drop(child.stdout.take());
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lmk_from_the_systemd_credential() {
    let dir = scratch_with(
        "credential",
        &[(
            "lmk_components = [\"lmk/component-1.txt\", \"lmk/component-2.txt\"]",
            "",
        )],
    );
    let creds = dir.join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(&dir)
        .args([
            "keys",
            "lmk-combine",
            "--lmk-component",
            "lmk/component-1.txt",
            "--lmk-component",
            "lmk/component-2.txt",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(creds.join("cofre-lmk"), &out.stdout).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let line = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let addr = line.strip_prefix("listening on ").unwrap();
    let r = Raw::connect(addr, "issuing-host-1")
        .unwrap()
        .call(Opcode::Health, |_| {});
    assert_eq!(r.str(Tag::LmkKcv), "35146C");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}
