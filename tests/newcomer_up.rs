//! `cofre up`'s working copy: records persist from one run to the next, `--fresh` starts
//! again from the published set, a copy made from another version of the example set is
//! refused until `--fresh`, and a `--work-dir` that is not a working copy is never
//! deleted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cofre");

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cofre-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "state" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A running `cofre up`, stopped with SIGTERM when dropped.
struct Up {
    child: std::process::Child,
    api: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn up(dir: &Path, work: &Path, fresh: bool) -> Up {
    let (hsm, metrics, api) = (free_port(), free_port(), free_port());
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--dir"])
        .arg(dir)
        .arg("--work-dir")
        .arg(work)
        .args(["--hsm-listen", &hsm, "--metrics-listen", &metrics])
        .args(["--api-listen", &api])
        .env("COFRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if fresh {
        cmd.arg("--fresh");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let up = Up { child, api };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("cofre up did not start");
        if line.starts_with("api listening on") {
            return up;
        }
    }
}

/// Adds the example customer; the exit status and the output.
fn add_customer(dir: &Path, up: &Up) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("XDG_RUNTIME_DIR")
        .args(["api", "call", "POST", "/customer", "--config"])
        .arg(dir.join("api.toml"))
        .args(["--url", &format!("http://{}", up.api)])
        .args(["--body", "@keys-example/requests/customer.json"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn up_exit(dir: &Path, work: &Path, fresh: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["up", "--dir"])
        .arg(dir)
        .arg("--work-dir")
        .arg(work);
    if fresh {
        cmd.arg("--fresh");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn records_persist_until_fresh_and_a_stale_copy_is_refused() {
    let base = scratch("up-copy");
    let dir = base.join("example");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example"),
        &dir,
    );
    let work = base.join("work");

    let first = up(&dir, &work, false);
    let (code, out) = add_customer(&dir, &first);
    assert_eq!(code, Some(0), "{out}");
    drop(first);
    assert!(work.join("state/api.db").exists());
    assert!(
        !dir.join("state").exists(),
        "nothing written in the example set"
    );

    // The same working copy again: the customer is still there.
    let second = up(&dir, &work, false);
    let (code, out) = add_customer(&dir, &second);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("duplicate_document"), "{out}");
    drop(second);

    // The example set changes (a git pull): the old copy is refused, named, until --fresh.
    let policy = dir.join("policy.toml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("\n# changed upstream\n");
    std::fs::write(&policy, text).unwrap();
    let (code, err) = up_exit(&dir, &work, false);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--fresh"), "{err}");
    assert!(
        work.join("state/api.db").exists(),
        "the refused copy is kept"
    );

    // --fresh: no records any more.
    let third = up(&dir, &work, true);
    let (code, out) = add_customer(&dir, &third);
    assert_eq!(code, Some(0), "{out}");
    drop(third);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_work_dir_that_is_not_a_working_copy_is_never_deleted() {
    let base = scratch("up-foreign");
    let precious = base.join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    for fresh in [false, true] {
        let (code, err) = up_exit(&example, &base, fresh);
        assert_eq!(code, Some(64), "{err}");
        assert!(err.contains("not a working copy"), "{err}");
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    }
    // Inside the example set (other than its state/) is refused too.
    let (code, err) = up_exit(&example, &example.join("pki/copy"), false);
    assert_eq!(code, Some(64), "{err}");
    assert!(!example.join("pki/copy").exists());
    let _ = std::fs::remove_dir_all(&base);
}
