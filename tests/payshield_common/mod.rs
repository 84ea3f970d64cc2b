//! The payShield tests' client and helpers: one connection (TLS or plain TCP), the
//! golden frames of `protocol/vectors/payshield/`, key blocks, and PIN guesses as `EC`
//! and `DC` commands.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::cards::Card;
use crate::daemon::{self, Daemon, client_config, scratch};
use cofre::crypto::ClearKey;
use cofre::keys::lmk::Purpose;
use cofre::keys::{KeyAlgorithm, KeyKind, LmkSource};
use rustls::pki_types::ServerName;

pub const VECTORS: &str = "protocol/vectors/payshield/commands.txt";

pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One payShield connection (TLS, or plain TCP).
pub struct Ps(pub Box<dyn Stream>);

impl Ps {
    pub fn tls(addr: &str, identity: &str) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let conn = rustls::ClientConnection::new(
            Arc::new(client_config(identity)),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        Ps(Box::new(rustls::StreamOwned::new(conn, tcp)))
    }

    pub fn plain(addr: &str) -> Self {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Ps(Box::new(tcp))
    }

    pub fn send_all(&mut self, messages: &[Vec<u8>]) {
        let mut out = Vec::new();
        for m in messages {
            out.extend_from_slice(&u16::try_from(m.len()).unwrap().to_be_bytes());
            out.extend_from_slice(m);
        }
        self.0.write_all(&out).unwrap();
        self.0.flush().unwrap();
    }

    /// One answer; `None` when the connection closed.
    pub fn read(&mut self) -> Option<String> {
        let mut prefix = [0u8; 2];
        self.0.read_exact(&mut prefix).ok()?;
        let mut m = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.0.read_exact(&mut m).ok()?;
        Some(String::from_utf8(m).unwrap())
    }

    pub fn call(&mut self, message: &str) -> String {
        self.send_all(&[message.as_bytes().to_vec()]);
        self.read().expect("an answer")
    }
}

/// A keys-example copy with a `[payshield]` section (`extra` lines added to it).
pub fn with_payshield(name: &str, extra: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let path = dir.join("hsm.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[payshield]\nlisten = \"127.0.0.1:1500\"\n{extra}\n"
    ));
    std::fs::write(&path, text).unwrap();
    dir
}

pub struct Vectors {
    pub keys: Vec<(String, String)>,
    /// (request, expected answer, exact?)
    pub pairs: Vec<(String, String, bool)>,
}

pub fn vectors() -> Vectors {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS)).unwrap();
    let mut keys = Vec::new();
    let mut pairs = Vec::new();
    let mut request: Option<String> = None;
    for line in text.lines() {
        if let Some(k) = line.strip_prefix("key ") {
            let (name, block) = k.split_once(' ').unwrap();
            keys.push((format!("{{{name}}}"), block.to_owned()));
        } else if let Some(r) = line.strip_prefix("> ") {
            assert!(request.is_none(), "two requests in a row: {line}");
            let mut r = r.to_owned();
            for (name, block) in &keys {
                r = r.replace(name, block);
            }
            request = Some(r);
        } else if let Some(a) = line.strip_prefix("<^ ") {
            pairs.push((request.take().unwrap(), a.to_owned(), false));
        } else if let Some(a) = line.strip_prefix("< ") {
            pairs.push((request.take().unwrap(), a.to_owned(), true));
        }
    }
    assert!(pairs.len() >= 30, "{} vectors", pairs.len());
    Vectors { keys, pairs }
}

pub fn block(name: &str) -> String {
    let v = vectors();
    v.keys
        .into_iter()
        .find(|(n, _)| n == &format!("{{{name}}}"))
        .unwrap()
        .1
}

pub fn check(request: &str, expected: &str, exact: bool, got: &str) {
    if exact {
        assert_eq!(got, expected, "answer to {request}");
    } else {
        assert!(
            got.starts_with(expected),
            "answer to {request}: {got} does not start with {expected}"
        );
    }
}

pub fn cofre_kcv(d: &Daemon) -> String {
    let mut c = d.connect("issuing-host-1");
    let r = c.call(cofre::protocol::Opcode::Health, |_| {});
    r.str(cofre::protocol::Tag::LmkKcv)
}

/// A key block under the example LMK naming a key cofre does not hold.
pub fn block_for_missing_key() -> String {
    let lmk_dir = daemon::example_dir().join("lmk");
    let lmk = LmkSource::Components(vec![
        lmk_dir.join("component-1.txt"),
        lmk_dir.join("component-2.txt"),
    ])
    .load()
    .unwrap();
    cofre::keys::payshield::wrap(
        &lmk.derive(Purpose::PayshieldKeyBlock),
        KeyKind::Cvk,
        KeyAlgorithm::Tdes,
        "cvk.gone",
        1,
        &ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap(),
        &mut rand::rng(),
    )
    .unwrap()
}

/// `EC` frames for each guess of `card`'s PIN (format 0 under zpk.example).
pub fn ec_frames(card: &Card, guesses: &[String]) -> Vec<Vec<u8>> {
    pvv_frames("EC", card, guesses)
}

/// `EC` (format 0 under zpk.example) or `DC` (under tpk.example) frames for each guess.
pub fn pvv_frames(command: &str, card: &Card, guesses: &[String]) -> Vec<Vec<u8>> {
    let (key, pvk) = match command {
        "EC" => (block("zpk"), block("pvk")),
        _ => (block("tpk"), block("pvk")),
    };
    let digits = &card.pan[card.pan.len() - 13..card.pan.len() - 1];
    guesses
        .iter()
        .enumerate()
        .map(|(i, pin)| {
            let b = if command == "EC" {
                daemon::iso0_block(&card.pan, pin)
            } else {
                tpk_block(&card.pan, pin)
            };
            let b = hex::encode_upper(b);
            format!(
                "{:04}{command}{key}{pvk}{b}01{digits}1{}",
                i % 10_000,
                card.pvv
            )
            .into_bytes()
        })
        .collect()
}

/// An ISO 9564 format 0 block under the example TPK (keys-example/README.md).
pub fn tpk_block(pan: &str, pin: &str) -> Vec<u8> {
    use cofre::crypto::pinblock::{Format, encipher};
    let tpk = hex::decode("89E88CF7931444F334BD7547FC3F380C").unwrap();
    let k = cofre::crypto::cipher::BlockCipher::tdes(&tpk).unwrap();
    encipher(
        Format::Iso0,
        &k,
        &cofre::crypto::Pin::new(pin).unwrap(),
        Some(&cofre::crypto::pan::Pan::new(pan).unwrap()),
        &mut rand::rng(),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

/// The card as the payShield listener names it (account number and a 0).
pub fn account_card(card: &Card) -> String {
    format!("{}0", &card.pan[card.pan.len() - 13..card.pan.len() - 1])
}
