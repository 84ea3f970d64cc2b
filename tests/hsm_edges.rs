//! The daemon's edges against unauthenticated and misbehaving peers: idle and half-sent
//! handshakes, accept errors at the open-files limit, the metrics listener's cap,
//! clients that never read, client certificates without clientAuth, TLS resumption,
//! and a frame trickled in byte by byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cofre::protocol::{self, Opcode, Status};
use daemon::{Daemon, Raw, client_config, scratch_with};

/// A metric's value in the daemon's text exposition (`name` includes any labels).
fn metric(d: &Daemon, name: &str) -> f64 {
    let text = d.metrics_text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls `cond` every 50 ms, at most `tries` times (explicit synchronisation on the
/// daemon's own counters, not a sleep standing in for it).
fn wait_for(what: &str, tries: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..tries {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened: {what}");
}

/// Raises this process's open-files limit to its hard limit (the flood below needs
/// more than the usual 1,024).
fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// The first flight of a real client: a TLS 1.3 ClientHello.
fn client_hello() -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        Arc::new(client_config("atm-switch-1")),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// 1,100 idle TCP connections from one address and 1,100 half-sent ClientHellos from
/// another, each held open, with a 60 s handshake timeout: a client from a third
/// address still gets its answer while every attacker handshake is still held.
///
/// Issue 14 asked for the answer "within 1 s". What that second stood for is that the
/// client is not kept waiting for the attackers' handshakes to end (before the fix it
/// waited for their timeout, 20-30 s). That is asserted exactly, without a clock: when
/// the answer is in, the 128 attacker handshakes the per-source cap lets in are all
/// still in progress and none has ended (no handshake failure or timeout counted), so
/// the client got in beside them, not after them. A wall-clock bound would instead
/// measure the machine's load (this suite runs on two shared cores) and could fail on a
/// correct daemon or pass on a broken one with a short handshake timeout. The time
/// taken is printed for the reader, not asserted. (The one clock left is the 60 s
/// handshake timeout, the configuration's maximum: the flood and the answer must fit in
/// it, which they do with a wide margin even on a loaded machine.)
#[test]
fn idle_and_half_sent_handshakes_do_not_keep_a_client_out() {
    raise_nofile();
    let d = Daemon::start_in(scratch_with(
        "handshake-flood",
        &[("handshake_timeout = \"5s\"", "handshake_timeout = \"60s\"")],
    ));
    let target: SocketAddr = d.addr.parse().unwrap();
    let hello = client_hello();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held = rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        let mut held = Vec::new();
        for (source, half) in [("127.0.0.2", false), ("127.0.0.3", true)] {
            for _ in 0..1100 {
                let s = tokio::net::TcpSocket::new_v4().unwrap();
                s.bind(format!("{source}:0").parse().unwrap()).unwrap();
                let mut c = s.connect(target).await.unwrap();
                if half {
                    // Refused ones may already be closed: a failed write is fine.
                    let _ = c.write_all(&hello[..hello.len() / 2]).await;
                }
                held.push(c);
            }
        }
        held
    });
    // Every attacker connection has been accepted and either holds one of the 64
    // handshake places of its address or was closed at once.
    wait_for("2,200 attacker connections processed", 600, || {
        metric(&d, "cofre_connections_refused_total{reason=\"per_source\"}") >= 2200.0 - 128.0
    });
    assert_eq!(metric(&d, "cofre_handshakes_in_progress"), 128.0);
    assert_eq!(metric(&d, "cofre_tls_handshake_failures_total"), 0.0);
    let started = Instant::now();
    let r = Raw::connect(&d.addr, "atm-switch-1")
        .unwrap()
        .call(Opcode::Health, |_| {});
    let took = started.elapsed();
    assert_eq!(r.status(), Status::Ok);
    println!("answered in {took:?} with 2,200 attacker connections open");
    // The answer came while all 128 attacker handshakes were held and none had ended
    // (timed out or failed): the client was not let in by outwaiting them.
    assert_eq!(
        metric(&d, "cofre_handshakes_in_progress"),
        128.0,
        "the attackers' handshakes are still held"
    );
    assert_eq!(
        metric(&d, "cofre_tls_handshake_failures_total"),
        0.0,
        "no attacker handshake ended before the client's answer"
    );
    drop(held);
}

/// At the open-files limit accept fails with EMFILE: the listener backs off (a handful
/// of errors a second, not a spinning core) and serves again once files are free.
#[test]
fn accept_errors_back_off_at_the_open_files_limit() {
    let d = Daemon::start_in(scratch_with(
        "emfile",
        &[("handshake_timeout = \"5s\"", "handshake_timeout = \"2s\"")],
    ));
    let pid = d.child.id();
    let open_now = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open_now + 4;
    let status = std::process::Command::new("prlimit")
        .args([format!("--pid={pid}"), format!("--nofile={limit}:{limit}")])
        .status()
        .expect("prlimit (util-linux) is needed for this test");
    assert!(status.success());
    // Idle connections take the few free files; the rest wait in the backlog while
    // accept fails. Some metrics scrapes too.
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&d.addr).unwrap())
        .collect();
    idle.extend((0..3).map(|_| TcpStream::connect(&d.metrics).unwrap()));
    std::thread::sleep(Duration::from_millis(1500));
    drop(idle);
    // Once the handshakes time out (2 s), files are free again: scrapes and clients
    // are served.
    let mut scraped = String::new();
    wait_for("the metrics listener serves again", 200, || {
        let Ok(mut s) = TcpStream::connect(&d.metrics) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        scraped.clear();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").is_ok()
            && s.read_to_string(&mut scraped).is_ok()
            && scraped.contains("cofre_accept_errors_total")
    });
    let errors = |listener: &str| -> f64 {
        let name = format!("cofre_accept_errors_total{{listener=\"{listener}\"}} ");
        scraped
            .lines()
            .find_map(|l| l.strip_prefix(&name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (protocol_errors, metrics_errors) = (errors("protocol"), errors("metrics"));
    println!("accept errors over ~2 s: protocol {protocol_errors}, metrics {metrics_errors}");
    // Backing off (10 ms doubling to 1 s) allows about 10 in 2-3 s, a few dozen when a
    // loaded machine stretches the wait above (23 seen at load 14); retrying at once
    // makes hundreds of thousands. The bound is far from both.
    assert!(protocol_errors >= 1.0, "the limit was reached");
    assert!(protocol_errors <= 200.0, "{protocol_errors}");
    assert!(metrics_errors <= 200.0, "{metrics_errors}");
    wait_for("clients are served again", 200, || {
        Raw::connect(&d.addr, "atm-switch-1")
            .map(|mut c| c.call(Opcode::Health, |_| {}).status() == Status::Ok)
            .unwrap_or(false)
    });
}

/// At most 16 metrics connections at once: beyond, closed at once.
#[test]
fn the_metrics_listener_has_a_connection_cap() {
    let d = Daemon::start("metrics-cap");
    let mut conns: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&d.metrics).unwrap())
        .collect();
    // The held ones wait 5 s for a request; the refused ones see the close at once.
    let closed = conns
        .iter_mut()
        .map(|c| {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            matches!(c.read(&mut [0u8; 1]), Ok(0))
        })
        .filter(|closed| *closed)
        .count();
    assert!(closed >= 24, "{closed} of 40 closed at once");
    drop(conns);
    wait_for("a scrape is served", 200, || {
        std::panic::catch_unwind(|| d.metrics_text())
            .is_ok_and(|t| t.contains("cofre_connections_open"))
    });
}

/// VmRSS of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Per connection the daemon holds at most its answer budget (64 KiB), its input
/// buffer (16 KiB + one frame) and TLS buffers (16 KiB) besides its TLS state: 200
/// connections that pipeline requests and never read stay within 200 x 256 KiB.
#[test]
fn two_hundred_connections_that_never_read_stay_within_their_budget() {
    let d = Daemon::start("noread");
    let pid = d.child.id();
    // One connection first, so the runtime's first-use allocations are not counted.
    d.connect("issuing-host-1").call(Opcode::Health, |_| {});
    let before = rss(pid);
    let mut chunk = Vec::new();
    for id in 0..1000u32 {
        protocol::encode_request(&mut chunk, Opcode::Health.code(), id, |_| {}).unwrap();
    }
    let chunk = Arc::new(chunk);
    // Connected one after the other (at most 64 handshakes may run at once from one
    // address), then all pumping at once.
    let conns: Vec<Raw> = (0..200).map(|_| d.connect("issuing-host-1")).collect();
    let threads: Vec<_> = conns
        .into_iter()
        .map(|c| {
            let chunk = Arc::clone(&chunk);
            std::thread::spawn(move || {
                let (mut tls, mut sock) = (c.tls.conn, c.tls.sock);
                sock.set_write_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                // Requests pour in and nothing is read: once the answers fill the
                // socket and the budget, the daemon stops reading and these writes stall.
                let mut sent = 0usize;
                loop {
                    tls.writer().write_all(&chunk).unwrap();
                    while tls.wants_write() {
                        if tls.write_tls(&mut sock).is_err() {
                            return (sent, tls, sock);
                        }
                    }
                    sent += chunk.len();
                    assert!(sent < 256 << 20, "the daemon kept reading {sent} bytes");
                }
            })
        })
        .collect();
    let held: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let grown = rss(pid).saturating_sub(before);
    println!(
        "200 non-reading connections: daemon RSS grew by {} KiB ({} KiB each)",
        grown / 1024,
        grown / 1024 / 200
    );
    assert!(grown < 200 * 256 * 1024, "grew by {grown} bytes");
    // Other clients are served meanwhile.
    assert_eq!(
        d.connect("issuing-host-1")
            .call(Opcode::Health, |_| {})
            .status(),
        Status::Ok
    );
    drop(held);
}

/// A frame sent one byte every 200 ms: each read comes well within the 1 s read
/// timeout, but the frame does not, so the daemon closes the connection long before
/// the frame is complete (and never answers it).
#[test]
fn a_frame_trickled_in_is_cut_at_the_read_timeout() {
    let d = Daemon::start_in(scratch_with(
        "trickle",
        &[("read_timeout = \"30s\"", "read_timeout = \"1s\"")],
    ));
    let mut frame = Vec::new();
    protocol::encode_request(&mut frame, Opcode::Health.code(), 9, |_| {}).unwrap();
    frame.extend_from_slice(&[0u8; 40]);
    let n = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&n.to_be_bytes());
    let c = d.connect("issuing-host-1");
    let (mut tls, mut sock) = (c.tls.conn, c.tls.sock);
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut sent = 0;
    let closed = loop {
        if sent == frame.len() {
            break false;
        }
        tls.writer().write_all(&frame[sent..=sent]).unwrap();
        if tls.write_tls(&mut sock).is_err() {
            break true;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
        match tls.read_tls(&mut sock) {
            Ok(0) => break true,
            Ok(_) => {
                let state = tls.process_new_packets().unwrap();
                assert_eq!(
                    state.plaintext_bytes_to_read(),
                    0,
                    "answered an incomplete frame"
                );
                if state.peer_has_closed() {
                    break true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => {}
        }
    };
    assert!(
        closed,
        "the daemon waited for the whole frame ({sent} bytes)"
    );
    assert!(
        sent < frame.len() / 2,
        "closed only after {sent} of {} bytes",
        frame.len()
    );
}

/// A CA of the test's own, and a client certificate for `cn` under it with or without
/// the clientAuth extended key usage: (CA PEM, client config trusting the example
/// server).
fn own_ca_client(cn: &str, client_auth: bool) -> (String, rustls::ClientConfig) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if client_auth {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let cert = p.signed_by(&key, &ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    let example_ca = daemon::example_dir().join("pki/ca.pem");
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(example_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    (ca.pem(), config)
}

/// Whether a health call on a fresh connection with `config` is answered `ok`.
fn served(addr: &str, config: rustls::ClientConfig) -> bool {
    Raw::connect_with(addr, config)
        .ok()
        .and_then(|mut r| {
            r.send(Opcode::Health, 1, |_| {});
            r.read()
        })
        .is_some_and(|r| r.status() == Status::Ok)
}

/// A certificate from the trusted CA, with a role's name, but without the clientAuth
/// extended key usage is refused at the handshake; the same with clientAuth is served.
#[test]
fn a_client_certificate_without_client_auth_is_refused() {
    for client_auth in [false, true] {
        let (ca, config) = own_ca_client("issuing-host-1", client_auth);
        let dir = scratch_with("eku", &[]);
        std::fs::write(dir.join("pki/own-ca.pem"), ca).unwrap();
        let text = std::fs::read_to_string(dir.join("hsm.toml")).unwrap();
        std::fs::write(
            dir.join("hsm.toml"),
            text.replace("ca = \"pki/ca.pem\"", "ca = \"pki/own-ca.pem\""),
        )
        .unwrap();
        let d = Daemon::start_in(dir);
        assert_eq!(
            served(&d.addr, config),
            client_auth,
            "clientAuth {client_auth}"
        );
        if client_auth {
            assert_eq!(metric(&d, "cofre_tls_handshake_failures_total"), 0.0);
        } else {
            wait_for("the refusal is counted", 200, || {
                metric(&d, "cofre_tls_handshake_failures_total") == 1.0
            });
        }
    }
}

/// A client that offers to resume (rustls' default session cache) always gets a full
/// handshake: the daemon keeps no sessions and sends no tickets. The positive control
/// shows the same client does resume against a server that allows it.
#[test]
fn tls_sessions_are_never_resumed() {
    let client = client_config("issuing-host-1");
    let kind = |addr: &str| {
        let mut c = Raw::connect_with(addr, client.clone()).unwrap();
        assert_eq!(c.call(Opcode::Health, |_| {}).status(), Status::Ok);
        c.tls.conn.handshake_kind()
    };
    let d = Daemon::start("resumption");
    for _ in 0..3 {
        assert_eq!(kind(&d.addr), Some(rustls::HandshakeKind::Full));
    }
    // Control: a stock rustls server (resumption on by default) with the same
    // certificates, answering one health frame per connection.
    let server = {
        use rustls::pki_types::pem::PemObject;
        let pki = daemon::example_dir().join("pki");
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let certs: Vec<_> =
            rustls::pki_types::CertificateDer::pem_file_iter(pki.join("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_file(pki.join("server-key.pem")).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
        )
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let control = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let conn = rustls::ServerConnection::new(Arc::clone(&server)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock.unwrap());
            let mut request = [0u8; 12];
            if tls.read_exact(&mut request).is_err() {
                continue;
            }
            let id = u32::from_be_bytes(request[8..12].try_into().unwrap());
            let mut answer = Vec::new();
            protocol::encode_response_with(&mut answer, Opcode::Health.code(), id, |_| Status::Ok)
                .unwrap();
            let _ = tls.write_all(&answer);
            let _ = tls.flush();
        }
    });
    kind(&control);
    assert_eq!(kind(&control), Some(rustls::HandshakeKind::Resumed));
}
