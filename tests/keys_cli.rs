//! `cofre keys` end to end, as a security team would run it: ceremony, store, every key
//! kind, rotation, TR-31 export to psec and import from psec, LMK rewrap, audit chain.
//! Every line the binary prints is collected and searched for the clear secrets the test
//! knows (LMK components, imported keys): none may appear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cofre::crypto::ClearKey;
use cofre::keys::KeyAlgorithm;
use cofre::keys::store::key_kcv;
use serde_json::json;

struct Session {
    dir: PathBuf,
    transcript: String,
}

impl Session {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cofre-keys-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            transcript: String::new(),
        }
    }

    fn path(&self, p: &str) -> String {
        self.dir.join(p).display().to_string()
    }

    fn run(&mut self, args: &[&str]) -> (bool, String) {
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

    fn ok(&mut self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "{args:?}: {text}");
        text
    }

    fn fails(&mut self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(!ok, "{args:?} should fail");
        text
    }

    /// `--store ... --lmk-component ...` for the given component files.
    fn store_args(&self, components: &[String]) -> Vec<String> {
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

fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    base.iter()
        .cloned()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn component_hex(path: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("component = "))
        .unwrap()
        .to_owned()
}

fn lmk_kcv(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("LMK kcv "))
        .unwrap()
        .trim()
        .to_owned()
}

fn kcv_of(list: &str, id: &str, version: u32) -> String {
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

fn write_component(dir: &Path, name: &str, hex_key: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("component = {hex_key}\n")).unwrap();
    p.display().to_string()
}

#[test]
fn a_security_team_day() {
    let mut s = Session::new("day");
    let out = s.ok(&["ceremony", "--components", "2", "--out-dir", &s.path("lmk")]);
    let kcv = lmk_kcv(&out);
    let comps = vec![s.path("lmk/component-1.txt"), s.path("lmk/component-2.txt")];
    let secrets: Vec<String> = comps.iter().map(|c| component_hex(c)).collect();
    let mode = std::fs::metadata(&comps[0]).unwrap();
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let kcv_args = vec![
        "lmk-kcv".to_owned(),
        "--lmk-component".into(),
        comps[0].clone(),
        "--lmk-component".into(),
        comps[1].clone(),
    ];
    assert_eq!(s.ok(&refs(&kcv_args)).trim(), kcv);

    let base = s.store_args(&comps);
    let cmd = |c: &str, extra: &[&str]| -> Vec<String> {
        std::iter::once(c.to_owned())
            .chain(with(&base, extra))
            .collect()
    };
    s.ok(&refs(&cmd("init", &[])));
    for (id, kind, alg) in [
        ("zpk.a", "zpk", "tdes"),
        ("tpk.a", "tpk", "aes"),
        ("pvk.visa.issuer1", "pvk", "tdes"),
        ("cvk.issuer1", "cvk", "tdes"),
        ("dcvv2.issuer1", "dcvv2", "hmac"),
        ("token.issuer1", "token", "aes"),
        ("lookup.issuer1", "lookup", "hmac"),
        ("mac.a", "mac", "aes"),
        ("transport.embosser", "transport", "tdes"),
    ] {
        let out = s.ok(&refs(&cmd(
            "generate",
            &["--id", id, "--kind", kind, "--algorithm", alg],
        )));
        assert!(
            out.starts_with(&format!("{id} v1 {kind} {alg} active")),
            "{out}"
        );
    }
    assert!(
        s.fails(&refs(&cmd(
            "generate",
            &["--id", "bad.cvk", "--kind", "cvk", "--algorithm", "aes"]
        )))
        .contains("cannot be aes")
    );

    // Rotation: v2 active, v1 verify-only; retire v1.
    s.ok(&refs(&cmd("rotate", &["--id", "cvk.issuer1"])));
    let list = s.ok(&refs(&cmd("list", &[])));
    assert!(
        list.contains("cvk.issuer1 v1 cvk tdes verify-only"),
        "{list}"
    );
    assert!(list.contains("cvk.issuer1 v2 cvk tdes active"), "{list}");
    assert!(list.starts_with(&format!("# LMK kcv {kcv}")));
    s.ok(&refs(&cmd(
        "retire",
        &["--id", "cvk.issuer1", "--version", "1"],
    )));

    // A KEK with a known clear value (two components), so psec can use it too.
    let kek_hex = "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210";
    let k1 = write_component(
        &s.dir,
        "kek-1.txt",
        &kek_hex.replace('0', "1").replace("EF", "E1"),
    );
    let k1_hex = component_hex(&k1);
    let k2_bytes: Vec<u8> = hex::decode(kek_hex)
        .unwrap()
        .iter()
        .zip(hex::decode(&k1_hex).unwrap())
        .map(|(a, b)| a ^ b)
        .collect();
    let k2 = write_component(&s.dir, "kek-2.txt", &hex::encode_upper(&k2_bytes));
    let kek_kcv = key_kcv(KeyAlgorithm::Aes, &ClearKey::from_hex(kek_hex).unwrap())
        .unwrap()
        .to_string();
    s.ok(&refs(&cmd(
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
    assert!(
        s.fails(&refs(&cmd(
            "import",
            &[
                "--id",
                "kek.bad",
                "--kind",
                "kek",
                "--algorithm",
                "aes",
                "--component-file",
                &k1,
                "--component-file",
                &k2,
                "--kcv",
                "000000"
            ]
        )))
        .contains("KCV")
    );

    // Export to psec: psec unwraps under the KEK and gets a key with the listed KCV.
    let block = s
        .ok(&refs(&cmd(
            "export",
            &["--id", "zpk.a", "--kek", "kek.partner"],
        )))
        .trim()
        .to_owned();
    assert!(block.starts_with('D'), "{block}");
    let psec_key = {
        let answer = common::psec_batch(
            "psec_core.py",
            &[json!({"op":"tr31_unwrap","kbpk":kek_hex,"block":block})],
        );
        answer.map(|a| a[0].clone())
    };
    let list = s.ok(&refs(&cmd("list", &[])));
    if let Some(k) = &psec_key {
        assert_eq!(k["usage"], "P0");
        let clear = ClearKey::from_hex(k["key"].as_str().unwrap()).unwrap();
        assert_eq!(
            key_kcv(KeyAlgorithm::Tdes, &clear).unwrap().to_string(),
            kcv_of(&list, "zpk.a", 1)
        );
    }
    assert!(
        s.fails(&refs(&cmd(
            "export",
            &["--id", "token.issuer1", "--kek", "kek.partner"]
        )))
        .contains("not exportable")
    );
    assert!(
        s.fails(&refs(&cmd(
            "export",
            &["--id", "zpk.a", "--kek", "cvk.issuer1"]
        )))
        .contains("wrong key usage")
    );

    // Import from psec: psec wraps a known CVK under the KEK, cofre imports it.
    let cvk_hex = "0123456789ABCDEFFEDCBA9876543210";
    if let Some(b) = common::psec_batch(
        "psec_core.py",
        &[json!({"op":"tr31_wrap","kbpk":kek_hex,"header":"D0000C0TC00E0000","key":cvk_hex})],
    ) {
        let out = s.ok(&refs(&cmd(
            "import",
            &[
                "--id",
                "cvk.from.partner",
                "--tr31",
                b[0].as_str().unwrap(),
                "--kek",
                "kek.partner",
            ],
        )));
        assert!(
            out.contains("cvk.from.partner v1 cvk tdes active kcv=08D7B4"),
            "{out}"
        );
    }

    // Audit chain intact; an edited line is found; the store notices cut lines.
    assert!(s.ok(&refs(&cmd("audit-verify", &[]))).contains("intact"));
    let audit = s.dir.join("audit.log");
    let original = std::fs::read_to_string(&audit).unwrap();
    std::fs::write(&audit, original.replacen("test-officer", "someone-else", 1)).unwrap();
    assert!(
        s.fails(&refs(&cmd("audit-verify", &[])))
            .contains("line 1 was modified")
    );
    let shorter: String = original.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&audit, shorter).unwrap();
    assert!(
        s.fails(&refs(&cmd("audit-verify", &[])))
            .contains("removed from the end")
    );
    std::fs::write(&audit, &original).unwrap();

    // A tampered store and a wrong LMK are refused with clear reasons.
    let store = s.dir.join("keys.json");
    let good = std::fs::read_to_string(&store).unwrap();
    std::fs::write(
        &store,
        good.replacen("verify-only", "active", 1)
            .replacen("\"retired\"", "\"active\"", 1),
    )
    .unwrap();
    assert!(
        s.fails(&refs(&cmd("list", &[])))
            .contains("MAC does not verify")
    );
    std::fs::write(&store, &good).unwrap();
    s.ok(&[
        "ceremony",
        "--components",
        "2",
        "--out-dir",
        &s.path("lmk2"),
    ]);
    let comps2 = vec![
        s.path("lmk2/component-1.txt"),
        s.path("lmk2/component-2.txt"),
    ];
    let secrets2: Vec<String> = comps2.iter().map(|c| component_hex(c)).collect();
    let wrong: Vec<String> = std::iter::once("list".to_owned())
        .chain(s.store_args(&comps2))
        .collect();
    let err = s.fails(&refs(&wrong));
    assert!(err.contains("LMK is wrong") && err.contains(&kcv), "{err}");

    // LMK rewrap: shows both KCVs, writes nothing without --yes, keeps every KCV.
    let mut rewrap = cmd("rewrap", &[]);
    for c in &comps2 {
        rewrap.extend(["--new-lmk-component".to_owned(), c.clone()]);
    }
    let before = s.ok(&refs(&cmd("list", &[])));
    let shown = s.fails(&refs(&rewrap));
    let new_kcv = s
        .ok(&refs(&[
            "lmk-kcv".to_owned(),
            "--lmk-component".into(),
            comps2[0].clone(),
            "--lmk-component".into(),
            comps2[1].clone(),
        ]))
        .trim()
        .to_owned();
    assert!(
        shown.contains(&kcv) && shown.contains(&new_kcv) && shown.contains("--yes"),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&store).unwrap(), good);
    rewrap.push("--yes".into());
    s.ok(&refs(&rewrap));
    let after = s.ok(&refs(&wrong));
    let strip = |l: &str| l.lines().skip(1).map(|x| x.to_owned()).collect::<Vec<_>>();
    assert_eq!(strip(&before), strip(&after));
    assert!(
        s.ok(&refs(
            &std::iter::once("audit-verify".to_owned())
                .chain(s.store_args(&comps2))
                .collect::<Vec<_>>()
        ))
        .contains("intact")
    );

    // Nothing the binary printed contains a clear secret the test knows.
    for secret in
        secrets
            .iter()
            .chain(&secrets2)
            .chain([&k1_hex, &kek_hex.to_owned(), &cvk_hex.to_owned()])
    {
        assert!(
            !s.transcript
                .to_ascii_uppercase()
                .contains(&secret.to_ascii_uppercase()[..16]),
            "a secret leaked into the output"
        );
    }
    std::fs::remove_dir_all(&s.dir).unwrap();
}
