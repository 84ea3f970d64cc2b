//! Shared pieces of the integration tests: the bridge to the independent Python
//! implementations (`tests/oracle/`) that the differential tests compare against.
//!
//! The interpreter is `$COFRE_PSEC_PYTHON`, else `.venv/bin/python` in the package root
//! (what `scripts/test` creates from `tests/oracle/requirements.txt`); an oracle written
//! with the standard library only may also run under `python3` from `PATH`. A missing
//! oracle fails the test with a one-line reason naming `scripts/test`. The only way past
//! it is the explicit opt-out `COFRE_SKIP_ORACLE=1`: `build.rs` then sets
//! `cfg(skip_oracle)`, and every differential test carries
//! `#[cfg_attr(skip_oracle, ignore = "...")]`, so the run lists it as `ignored` with the
//! reason instead of passing it without a comparison.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub mod keys_session;

/// The interpreters tried, in order. `python3` from `PATH` only for oracles that import
/// nothing outside the standard library: a third-party module must come from the pinned
/// `.venv` (an unpinned `cryptography` refuses the double-length TDES keys payments use).
fn candidates(modules: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var_os("COFRE_PSEC_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    out.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    if modules.is_empty() {
        out.push(PathBuf::from("python3"));
    }
    out
}

/// The first candidate interpreter that can import every one of `modules`.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let import = if modules.is_empty() {
        "import sys".to_owned()
    } else {
        format!("import {}", modules.join(", "))
    };
    candidates(modules).into_iter().find(|python| {
        Command::new(python)
            .args(["-c", &import])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The interpreter for a differential test whose oracle imports `modules` (empty for a
/// standard-library oracle). A missing one fails the test: the run either installs the
/// oracles (`scripts/test`) or opts out with `COFRE_SKIP_ORACLE=1`, which makes the
/// differential tests `ignored` before they get here.
pub fn oracle_python(modules: &[&str]) -> PathBuf {
    python_with(modules).unwrap_or_else(|| {
        let wanted = match modules {
            [] => "no Python 3".to_owned(),
            _ => format!("no Python with {}", modules.join(", ")),
        };
        panic!(
            "{wanted} for this differential test: run scripts/test (it installs \
             tests/oracle/requirements.txt into .venv), or opt out with COFRE_SKIP_ORACLE=1 \
             (the test is then reported ignored)"
        )
    })
}

/// Runs `tests/oracle/<script>` (a psec oracle) once with every case as one JSON line on
/// stdin and returns its one JSON line of output per case.
pub fn psec_batch(script: &str, cases: &[Value]) -> Vec<Value> {
    run_oracle(&oracle_python(&["psec"]), script, cases)
}

/// Runs `tests/oracle/<script>` under `python` once, with every case as one JSON line on
/// stdin, and returns its one JSON line of output per case.
pub fn run_oracle(python: &Path, script: &str, cases: &[Value]) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle")
        .join(script);
    let mut child = Command::new(python)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start oracle");
    // Feed the cases from another thread: the oracle answers as it reads, and a writer
    // that waited for all input to be taken before reading would deadlock once the
    // output pipe fills.
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer thread").expect("write cases");
    assert!(out.status.success(), "oracle {script} failed");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle JSON"))
        .collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "oracle {script} answered every case"
    );
    lines
}

/// A deterministic, seeded generator for test inputs (not for keys in production).
pub fn test_rng(seed: u64) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(seed)
}
