//! A `cofre keys` session for the key-management tests: a private directory, every
//! command run through the real binary, and a transcript of all it printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use cofre::crypto::ClearKey;
use cofre::keys::KeyAlgorithm;
use cofre::keys::store::key_kcv;

/// The clear value of the partner KEK (AES-256) both tests import from two components.
pub const PARTNER_KEK: &str = "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210";

pub struct Session {
    /// The session's private directory (under the system temp dir).
    pub dir: PathBuf,
    /// Everything the binary printed, stdout and stderr, for the secrecy greps.
    pub transcript: String,
}

impl Session {
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cofre-keys-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            transcript: String::new(),
        }
    }

    pub fn path(&self, p: &str) -> String {
        self.dir.join(p).display().to_string()
    }

    pub fn run(&mut self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
            .arg("keys")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        self.transcript.push_str(&stdout);
        self.transcript.push_str(&stderr);
        (
            out.status.success(),
            if out.status.success() { stdout } else { stderr },
        )
    }

    pub fn ok(&mut self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "{args:?}: {text}");
        text
    }

    pub fn fails(&mut self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(!ok, "{args:?} should fail");
        text
    }

    /// `--store ... --lmk-component ...` for the given component files.
    pub fn store_args(&self, components: &[String]) -> Vec<String> {
        let mut v = vec!["--store".to_owned(), self.path("keys.json")];
        for c in components {
            v.push("--lmk-component".into());
            v.push(c.clone());
        }
        v.push("--operator".into());
        v.push("test-officer".into());
        v
    }
}

pub fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    base.iter()
        .cloned()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub fn component_hex(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("component = "))
        .unwrap()
        .to_owned()
}

pub fn lmk_kcv(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("LMK kcv "))
        .unwrap()
        .trim()
        .to_owned()
}

pub fn kcv_of(list: &str, id: &str, version: u32) -> String {
    let prefix = format!("{id} v{version} ");
    let line = list
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{id} v{version} in {list}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("kcv="))
        .unwrap()
        .to_owned()
}

pub fn write_component(dir: &Path, name: &str, hex_key: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("component = {hex_key}\n")).unwrap();
    p.display().to_string()
}

/// Writes two components of [`PARTNER_KEK`]; returns their paths and the first one's hex.
pub fn partner_kek_components(dir: &Path) -> (String, String, String) {
    let k1 = write_component(
        dir,
        "kek-1.txt",
        &PARTNER_KEK.replace('0', "1").replace("EF", "E1"),
    );
    let k1_hex = component_hex(&k1);
    let k2_bytes: Vec<u8> = hex::decode(PARTNER_KEK)
        .unwrap()
        .iter()
        .zip(hex::decode(&k1_hex).unwrap())
        .map(|(a, b)| a ^ b)
        .collect();
    let k2 = write_component(dir, "kek-2.txt", &hex::encode_upper(&k2_bytes));
    (k1, k2, k1_hex)
}

/// The arguments of `cofre keys <command>` on the session's store (`base`), plus `extra`.
pub fn command(base: &[String], command: &str, extra: &[&str]) -> Vec<String> {
    std::iter::once(command.to_owned())
        .chain(with(base, extra))
        .collect()
}

/// Imports [`PARTNER_KEK`] as `kek.partner` (AES) from two component files with its KCV.
/// Returns the component files and the first component's hex (a secret the transcript
/// must not show).
pub fn import_partner_kek(s: &mut Session, base: &[String]) -> (String, String, String) {
    let (k1, k2, k1_hex) = partner_kek_components(&s.dir);
    let kek = ClearKey::from_hex(PARTNER_KEK).unwrap();
    let kek_kcv = key_kcv(KeyAlgorithm::Aes, &kek).unwrap().to_string();
    s.ok(&refs(&command(
        base,
        "import",
        &[
            "--id",
            "kek.partner",
            "--kind",
            "kek",
            "--algorithm",
            "aes",
            "--component-file",
            &k1,
            "--component-file",
            &k2,
            "--kcv",
            &kek_kcv,
        ],
    )));
    (k1, k2, k1_hex)
}
