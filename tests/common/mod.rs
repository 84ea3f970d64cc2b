//! Shared pieces of the integration tests: the bridge to the independent Python
//! implementation (`psec`) used by the differential tests.
//!
//! The interpreter is `$COFRE_PSEC_PYTHON`, else `.venv/bin/python` in the package root
//! (what `scripts/test` creates). When neither has `psec`, a differential test is skipped
//! with a loud message, unless `COFRE_REQUIRE_PSEC=1` (set by `scripts/test` and CI), in
//! which case it fails: CI can never pass without actually running the comparison.
//! Newer differential tests use [`oracle_python`], which fails on a missing oracle unless
//! the run opts out explicitly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Finds a Python interpreter that can `import psec`.
pub fn psec_python() -> Option<PathBuf> {
    python_with(&["psec"])
}

/// `$COFRE_PSEC_PYTHON`, else the package's `.venv/bin/python`, if it can import every
/// one of `modules`.
fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let import = format!("import {}", modules.join(", "));
    std::env::var_os("COFRE_PSEC_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
        ))
        .find(|python| {
            Command::new(python)
                .args(["-c", &import])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Runs `tests/oracle/<script>` once with every case as one JSON line on stdin and
/// returns its one JSON line of output per case. Returns `None` (test skipped) when psec
/// is not available and not required.
pub fn psec_batch(script: &str, cases: &[Value]) -> Option<Vec<Value>> {
    let Some(python) = psec_python() else {
        if std::env::var("COFRE_REQUIRE_PSEC").as_deref() == Ok("1") {
            panic!("COFRE_REQUIRE_PSEC=1 but no Python with psec found (run scripts/test)");
        }
        eprintln!("SKIPPED differential test {script}: no Python with psec (run scripts/test)");
        return None;
    };
    Some(run_oracle(&python, script, cases))
}

/// Finds the interpreter for a differential test whose oracle needs the Python `modules`
/// (the pinned `.venv` of `scripts/test` has them all). A missing oracle fails the test;
/// the only way past it is an explicit opt-out, `COFRE_SKIP_ORACLE=1` without
/// `COFRE_REQUIRE_PSEC=1`, which skips the comparison with a loud message (`None`).
pub fn oracle_python(modules: &[&str]) -> Option<PathBuf> {
    if let Some(python) = python_with(modules) {
        return Some(python);
    }
    let required = std::env::var("COFRE_REQUIRE_PSEC").as_deref() == Ok("1");
    let opted_out = std::env::var("COFRE_SKIP_ORACLE").as_deref() == Ok("1");
    if opted_out && !required {
        eprintln!("SKIPPED differential test: no Python with {modules:?} (COFRE_SKIP_ORACLE=1)");
        return None;
    }
    panic!(
        "no Python with {modules:?} for the differential test: run scripts/test (it installs \
         tests/oracle/requirements.txt into .venv), or set COFRE_SKIP_ORACLE=1 to skip it"
    );
}

/// Runs `tests/oracle/<script>` under `python` once, with every case as one JSON line on
/// stdin, and returns its one JSON line of output per case.
pub fn run_oracle(python: &std::path::Path, script: &str, cases: &[Value]) -> Vec<Value> {
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
