//! Test harness: a real `cofre hsm` process on 127.0.0.1:0 over a private copy of
//! `keys-example/`, and a raw blocking TLS connection that speaks frames byte by byte.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cards;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cofre::protocol::{self, Fields, FieldsWriter, Opcode, ResponseHeader, Status, Tag};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A private copy of keys-example.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cofre-test-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&example_dir(), &dir);
    dir
}

pub struct Daemon {
    pub keep_dir: bool,
    pub child: Child,
    pub addr: String,
    pub metrics: String,
    /// The payShield listener's address, when hsm.toml has a `[payshield]` section.
    pub payshield: Option<String>,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(name: &str) -> Self {
        Self::start_in(scratch(name))
    }

    /// Starts on `dir` (a keys-example copy, possibly with an edited hsm.toml).
    pub fn start_in(dir: PathBuf) -> Self {
        let log = dir.join("daemon.log");
        let with_payshield = std::fs::read_to_string(dir.join("hsm.toml"))
            .unwrap()
            .contains("[payshield]");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cofre"));
        command
            .args(["hsm", "--config"])
            .arg(dir.join("hsm.toml"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
        if with_payshield {
            command.args(["--payshield-listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .env("COFRE_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start cofre hsm");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || {
            lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "daemon exited: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                .unwrap()
        };
        let addr = next().strip_prefix("listening on ").unwrap().to_owned();
        let metrics = next().strip_prefix("metrics on ").unwrap().to_owned();
        let payshield =
            with_payshield.then(|| next().strip_prefix("payshield on ").unwrap().to_owned());
        Self {
            keep_dir: false,
            child,
            addr,
            metrics,
            payshield,
            dir,
            log,
        }
    }

    /// Starts on `dir` and leaves the directory in place when dropped.
    pub fn start_in_keep(dir: &Path) -> Self {
        let mut d = Self::start_in(dir.to_path_buf());
        d.keep_dir = true;
        d
    }

    pub fn connect(&self, identity: &str) -> Raw {
        Raw::connect(&self.addr, identity).unwrap()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.child.wait().unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics_text(&self) -> String {
        let mut s = TcpStream::connect(&self.metrics).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir && std::env::var_os("COFRE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A keys-example copy whose hsm.toml has `edits` applied (plain text replacements).
pub fn scratch_with(name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let dir = scratch(name);
    let path = dir.join("hsm.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "hsm.toml has no {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(&path, text).unwrap();
    dir
}

pub fn client_config(identity: &str) -> rustls::ClientConfig {
    let pki = example_dir().join("pki");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(pki.join(format!("client-{identity}.pem")))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(pki.join(format!("client-{identity}-key.pem"))).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap()
}

/// A raw TLS connection.
pub struct Raw {
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

/// A parsed response (owned).
#[derive(Debug, Clone)]
pub struct Resp {
    pub header: ResponseHeader,
    pub payload: Vec<u8>,
}

impl Resp {
    pub fn status(&self) -> Status {
        Status::from_code(self.header.status).unwrap()
    }
    pub fn fields(&self) -> Fields<'_> {
        protocol::decode_response(&self.payload).unwrap().1
    }
    pub fn str(&self, tag: Tag) -> String {
        self.fields()
            .str(tag)
            .unwrap()
            .unwrap_or_else(|| panic!("no {tag:?} in {self:?}"))
            .to_owned()
    }
    pub fn bytes(&self, tag: Tag) -> Vec<u8> {
        self.fields().bytes(tag).unwrap().unwrap().to_vec()
    }
    pub fn u32(&self, tag: Tag) -> u32 {
        self.fields().u32(tag).unwrap().unwrap()
    }
    pub fn message(&self) -> String {
        self.fields()
            .str(Tag::Message)
            .unwrap()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Raw {
    pub fn connect(addr: &str, identity: &str) -> std::io::Result<Self> {
        Self::connect_with(addr, client_config(identity))
    }

    pub fn connect_with(addr: &str, config: rustls::ClientConfig) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let conn = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Complete the handshake now so that refusals show up here.
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Self { tls })
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    pub fn send(&mut self, op: Opcode, id: u32, body: impl FnOnce(&mut FieldsWriter<'_>)) {
        let mut buf = Vec::new();
        protocol::encode_request(&mut buf, op.code(), id, body).unwrap();
        self.send_bytes(&buf);
    }

    /// Reads one response frame; `None` on a clean close.
    pub fn read(&mut self) -> Option<Resp> {
        let mut prefix = [0u8; 4];
        if self.tls.read_exact(&mut prefix).is_err() {
            return None;
        }
        let len = u32::from_be_bytes(prefix) as usize;
        let mut payload = vec![0u8; len];
        self.tls.read_exact(&mut payload).ok()?;
        let (header, _) = protocol::decode_response(&payload).unwrap();
        Some(Resp { header, payload })
    }

    pub fn call(&mut self, op: Opcode, body: impl FnOnce(&mut FieldsWriter<'_>)) -> Resp {
        let id = NEXT.fetch_add(1, Ordering::SeqCst) as u32 + 1000;
        self.send(op, id, body);
        let r = self.read().expect("a response");
        assert_eq!(r.header.request_id, id);
        assert_eq!(r.header.opcode, op.code());
        r
    }
}

/// An ISO 9564 format 0 PIN block under the example ZPK (`zpk.example`).
pub fn iso0_block(pan: &str, pin: &str) -> Vec<u8> {
    let zpk = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let k = cofre::crypto::cipher::BlockCipher::tdes(&zpk).unwrap();
    cofre::crypto::pinblock::encipher(
        cofre::crypto::pinblock::Format::Iso0,
        &k,
        &cofre::crypto::Pin::new(pin).unwrap(),
        Some(&cofre::crypto::pan::Pan::new(pan).unwrap()),
        &mut rand::rng(),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}
