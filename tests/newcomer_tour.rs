//! What a newcomer reads is what runs:
//!
//! * the README's tour (the commands between `<!-- tour:begin -->` and `<!-- tour:end -->`,
//!   as written) runs against `cofre up` started as the README's start block says, on a
//!   fresh working copy of the real `keys-example/`, and each command ends as its comment
//!   says (`# -> TEXT`: exit 0 and TEXT in the output; `# exit N`: exit status N; no
//!   comment: exit 0); afterwards the tracked example set is byte for byte unchanged;
//! * the example bodies of `keys-example/requests/` are valid against the request schemas
//!   of the served OpenAPI document (`openapi.json`), at the method and path their README
//!   names;
//! * every command of `keys-example/README.md` parses and gives the KCV it states;
//!
//! (The module map and the links: `tests/newcomer_docs.rs`.)
//!
//! The only change to the tour's commands: `cofre` is the binary under test, and
//! `cofre client` / `cofre api call` get `--address` / `--url` for the test's free ports,
//! as the README says to do for `cofre up --hsm-listen/--api-listen`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cofre::api::openapi::Spec;
use sha2::{Digest, Sha256};

mod newcomer;

use newcomer::{between, read, root};

/// The lines of the ```sh blocks of `text`, continuation lines joined.
fn sh_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim_end();
        if t.starts_with("```") {
            inside = t == "```sh";
            continue;
        }
        if !inside || t.trim().is_empty() {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head.trim_start());
            pending.push(' ');
            continue;
        }
        pending.push_str(t.trim_start());
        out.push(std::mem::take(&mut pending));
    }
    assert!(pending.is_empty(), "a command ends with a continuation");
    out
}

/// A tour line: the command and what it must do.
#[derive(Debug)]
struct Step {
    command: String,
    exit: i32,
    expect: Option<String>,
}

fn step(line: &str) -> Step {
    let (command, comment) = match line.find(" # ") {
        Some(i) => (line[..i].trim(), Some(line[i + 3..].trim())),
        None => (line.trim(), None),
    };
    let (exit, expect) = match comment {
        Some(c) if c.starts_with("-> ") => (0, Some(c[3..].to_owned())),
        Some(c) if c.starts_with("exit ") => (c[5..].parse().unwrap(), None),
        Some(c) => panic!("tour comment {c:?}: use `# -> TEXT` or `# exit N`"),
        None => (0, None),
    };
    Step {
        command: command.to_owned(),
        exit,
        expect,
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// SHA-256 of every file of `dir` but `state/`, with its path.
fn tree_hash(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "state" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), &mut files);
        } else {
            files.push(e.path());
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    hex::encode(h.finalize())
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `cofre up`, stopped with SIGTERM when dropped.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.0.wait();
    }
}

#[test]
fn readme_tour_runs_as_written() {
    let readme = read("README.md");
    let start = sh_commands(between(&readme, "start"));
    assert_eq!(start.len(), 1, "{start:?}");
    let up_args: Vec<&str> = start[0]
        .strip_prefix("cargo run --release -- ")
        .unwrap_or_else(|| panic!("start block: {:?}", start[0]))
        .split_whitespace()
        .collect();
    assert_eq!(up_args.first(), Some(&"up"));
    let steps: Vec<Step> = sh_commands(between(&readme, "tour"))
        .iter()
        .map(|l| step(l))
        .collect();
    assert!(steps.len() >= 8, "{steps:?}");

    let example = root().join("keys-example");
    let before = tree_hash(&example);
    let work = std::env::temp_dir().join(format!("cofre-tour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let (hsm, metrics, api) = (free_port(), free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_cofre");
    let mut child = Command::new(bin)
        .current_dir(root())
        .args(&up_args)
        .args(["--fresh", "--work-dir"])
        .arg(&work)
        .args(["--hsm-listen", &hsm, "--metrics-listen", &metrics])
        .args(["--api-listen", &api])
        .env("COFRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let up = Up(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("api listening on"))
    {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("cofre up did not start: {seen:?}"));
        seen.push(line);
    }

    let mut script = String::from(
        "set -u\n\
         cofre() {\n\
           case \"$1\" in\n\
             client) shift; \"$COFRE_BIN\" client --address \"$TOUR_HSM\" \"$@\" ;;\n\
             api) if [ \"$2\" = call ]; then shift 2; \"$COFRE_BIN\" api call --url \"https://$TOUR_API\" \"$@\";\n\
                  else \"$COFRE_BIN\" \"$@\"; fi ;;\n\
             *) \"$COFRE_BIN\" \"$@\" ;;\n\
           esac\n\
         }\n",
    );
    for (n, s) in steps.iter().enumerate() {
        let assignment = s
            .command
            .split_once('=')
            .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let out = format!("\"$TOUR_OUT/{n}\"");
        if assignment {
            script.push_str(&format!("{} 2>{out}; rc=$?\n", s.command));
        } else {
            script.push_str(&format!("{} >{out} 2>&1; rc=$?\n", s.command));
        }
        let fail = format!(
            "{{ echo {} >&2; echo \"exit $rc\" >&2; cat {out} >&2; exit 1; }}",
            quote(&format!("tour step failed: {}", s.command))
        );
        script.push_str(&format!("[ $rc -eq {} ] || {fail}\n", s.exit));
        if let Some(text) = &s.expect {
            script.push_str(&format!("grep -qF -- {} {out} || {fail}\n", quote(text)));
        }
    }
    // Then every other example body that names a card, in its table's order, on the
    // tour's card: each must answer 2xx.
    let tour_text = between(&readme, "tour");
    let mut extra = 0;
    for (file, method, path) in request_table() {
        let body = read(&format!("keys-example/requests/{file}"));
        if tour_text.contains(&file) || !body.contains("\"cardNumber\"") {
            continue;
        }
        let n = steps.len() + extra;
        extra += 1;
        // A body that issues a card leaves `cardNumber` empty (the daemon draws one) and
        // names the tour's customer and account instead.
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut command =
            format!("cofre api call {method} {path} --body @keys-example/requests/{file}");
        for (field, var) in [
            ("cardNumber", "CARD"),
            ("customerNumber", "CUSTOMER"),
            ("postToAccount", "ACCOUNT"),
        ] {
            if json[field].as_str().is_some_and(|v| !v.is_empty()) {
                command.push_str(&format!(" --set {field}=${var}"));
            }
        }
        script.push_str(&format!(
            "{command} >\"$TOUR_OUT/{n}\" 2>&1 || {{ echo {} >&2; cat \"$TOUR_OUT/{n}\" >&2; exit 1; }}\n",
            quote(&format!("example body failed: {command}"))
        ));
    }
    assert!(extra >= 5, "example bodies run after the tour: {extra}");
    let outputs = work.join("tour-out");
    std::fs::create_dir_all(&outputs).unwrap();
    let run = Command::new("bash")
        .current_dir(root())
        .arg("-c")
        .arg(&script)
        .env("COFRE_BIN", bin)
        .env("TOUR_HSM", &hsm)
        .env("TOUR_API", &api)
        .env("TOUR_OUT", &outputs)
        // No bearer token kept in the user's runtime directory by a test.
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    // Direct credentials: the secret comes from a file and is never printed, whether the
    // facade accepts it or not.
    let api_call = |secret: &str| {
        let file = work.join("secret.txt");
        std::fs::write(&file, secret).unwrap();
        let out = Command::new(bin)
            .current_dir(root())
            .env_remove("XDG_RUNTIME_DIR")
            .args(["api", "call", "GET", "/openapi.json", "--url"])
            .arg(format!("https://{api}"))
            .args(["--client", "example-client", "--api-key", "example-api-key"])
            .arg("--secret-file")
            .arg(&file)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), all)
    };
    let (code, all) = api_call("example-secret-not-for-production");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.starts_with("HTTP 200") && all.contains("\"openapi\""),
        "{all}"
    );
    assert!(!all.contains("example-secret-not-for-production"));
    let (code, all) = api_call("wrong-secret-of-the-tour");
    assert_eq!(code, Some(64), "{all}");
    // Positive control: the captured output is the refusal, naming the client.
    assert!(
        all.contains("POST /token answered 401") && all.contains("example-client"),
        "{all}"
    );
    assert!(!all.contains("wrong-secret-of-the-tour"), "{all}");
    drop(up);
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        work.join("state/api.db").exists(),
        "the facade ran on the working copy"
    );
    assert_eq!(
        tree_hash(&example),
        before,
        "cofre up or the tour changed keys-example/"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The rows of `keys-example/requests/README.md`'s table: (file, method, path).
fn request_table() -> Vec<(String, String, String)> {
    read("keys-example/requests/README.md")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

#[test]
fn example_bodies_match_the_served_openapi_document() {
    let spec = Spec::parse(&read("openapi.json")).unwrap();
    let mut checked = BTreeSet::new();
    for (file, method, path) in request_table() {
        let body: serde_json::Value =
            serde_json::from_str(&read(&format!("keys-example/requests/{file}"))).unwrap();
        let schema = spec
            .request_schema(&path, &method.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("{method} {path}: no request schema"));
        let violations = spec.validate(schema, &body);
        assert!(violations.is_empty(), "{file}: {violations:?}");
        checked.insert(file);
    }
    let files: BTreeSet<String> = std::fs::read_dir(root().join("keys-example/requests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(checked, files, "every body is in the table, and only those");

    // Every operation that takes a JSON body has one in the table.
    let table = request_table();
    let operations = spec.operations_with_request_body();
    assert!(operations.len() >= table.len(), "{operations:?}");
    let missing = |rows: &[(String, String, String)]| -> Vec<String> {
        let listed: BTreeSet<(String, String)> = rows
            .iter()
            .map(|(_, method, path)| (path.clone(), method.to_ascii_lowercase()))
            .collect();
        operations
            .iter()
            .filter(|(path, method)| !listed.contains(&((*path).to_owned(), (*method).to_owned())))
            .map(|(path, method)| format!("{} {path}", method.to_ascii_uppercase()))
            .collect()
    };
    let none = missing(&table);
    assert!(
        none.is_empty(),
        "operations without an example body: {none:?}"
    );
    // Positive control: a table without its last row leaves that operation uncovered.
    let (_, method, path) = table.last().unwrap();
    assert_eq!(
        missing(&table[..table.len() - 1]),
        [format!("{method} {path}")]
    );

    // Positive control: the validator does refuse a broken body.
    let schema = spec.request_schema("/cards/activation", "put").unwrap();
    let broken = serde_json::json!({"organizationNumber": "not a number", "cardNumber": 5});
    assert!(!spec.validate(schema, &broken).is_empty());
}

#[test]
fn keys_example_commands_parse_and_give_the_stated_kcv() {
    let text = read("keys-example/README.md");
    let commands = sh_commands(&text);
    assert!(!commands.is_empty());
    for c in commands {
        let args: Vec<&str> = c
            .strip_prefix("cofre ")
            .unwrap_or_else(|| panic!("{c}"))
            .split_whitespace()
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
            .current_dir(root())
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if args.first() == Some(&"keys") && args.get(1) == Some(&"lmk-kcv") {
            assert!(String::from_utf8_lossy(&out.stdout).contains("35146C"));
            assert!(text.contains("LMK KCV: **35146C**"));
        }
    }
    // Positive control: the old, wrong flag does not parse.
    let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["keys", "lmk-kcv", "--component-file", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
