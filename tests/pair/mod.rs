//! Test harness for a pair of `cofre hsm` daemons on one PostgreSQL database: a fresh
//! database per test on the server of `COFRE_TEST_POSTGRES_URL` (dropped at the end),
//! or a private PostgreSQL instance of the test's own (its own data directory and
//! port, stopped and removed on drop) for tests that stop PostgreSQL.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use super::daemon::{self, Daemon};

/// Runs one SQL statement on `url`.
pub fn sql(url: &str, statement: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    });
}

/// A fresh database, dropped (with its connections) when this is dropped.
pub struct FreshDb {
    admin: String,
    name: String,
    /// Its URL (password included, as `COFRE_TEST_POSTGRES_URL` has it).
    pub url: String,
}

impl FreshDb {
    /// On the server of `COFRE_TEST_POSTGRES_URL`; `None` only for a run that opted out
    /// with `COFRE_SKIP_POSTGRES=1` (those tests are then `ignored`).
    pub fn new() -> Option<Self> {
        let admin = match std::env::var("COFRE_TEST_POSTGRES_URL") {
            Ok(u) => u,
            Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
            Err(_) => panic!(
                "COFRE_TEST_POSTGRES_URL is not set: run scripts/test, or opt out with \
                 COFRE_SKIP_POSTGRES=1"
            ),
        };
        Some(Self::on(&admin))
    }

    /// On the server of `admin`.
    pub fn on(admin: &str) -> Self {
        let name = format!(
            "cofre_pair_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        sql(admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Self {
            admin: admin.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Splits the password out of a URL: (URL without it, password).
fn without_password(url: &str) -> (String, Option<String>) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let Some((userinfo, host)) = rest.split_once('@') else {
        return (url.to_owned(), None);
    };
    match userinfo.split_once(':') {
        Some((user, pw)) => (format!("{scheme}://{user}@{host}"), Some(pw.to_owned())),
        None => (url.to_owned(), None),
    }
}

/// A keys-example copy configured for the shared store at `url` (its password, if any,
/// in `pg-password` beside `hsm.toml`).
pub fn pair_dir(name: &str, url: &str) -> PathBuf {
    let (url, password) = without_password(url);
    let mut lines = format!("state_dir = \"state\"\ncounters = \"{url}\"");
    if password.is_some() {
        lines.push_str("\ncounters_password_file = \"pg-password\"");
    }
    let dir = daemon::scratch_with(name, &[("state_dir = \"state\"", &lines)]);
    if let Some(p) = password {
        std::fs::write(dir.join("pg-password"), format!("{p}\n")).unwrap();
    }
    dir
}

/// Two daemons on one database. The first creates the store (its `counters-create`
/// audit line); the second gets the first's key store and audit log, as an operator
/// provisions a pair (docs/pair.md).
pub struct Pair {
    pub a: Daemon,
    pub b: Daemon,
}

impl Pair {
    pub fn start(name: &str, url: &str) -> Self {
        let dir_a = pair_dir(&format!("{name}-a"), url);
        let a = Daemon::start_in(dir_a.clone());
        let dir_b = pair_dir(&format!("{name}-b"), url);
        copy_ledger(&dir_a, &dir_b);
        let b = Daemon::start_in(dir_b);
        Self { a, b }
    }
}

/// Copies the key store and the audit log of one node to another.
pub fn copy_ledger(from: &Path, to: &Path) {
    for f in ["keys.json", "audit.log"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

/// The newest PostgreSQL server binaries (Debian's layout, as scripts/postgres-up).
fn pg_bin(tool: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e} (PostgreSQL server binaries)", root.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|v| v.parse::<u32>().ok())
        .collect();
    versions.sort_unstable();
    let v = versions.last().expect("a PostgreSQL version");
    root.join(v.to_string()).join("bin").join(tool)
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a PostgreSQL tool, as the `postgres` user when this runs as root (initdb and
/// the server refuse root).
fn pg(tool: &str, args: &[&str]) -> std::process::Output {
    let root = is_root();
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    };
    cmd.args(args).output().unwrap()
}

/// A private PostgreSQL instance: its own data directory and port, trust
/// authentication on loopback for the role `cofre`. Stopped and removed on drop.
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "cofre-pg-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.join("data");
        let out = pg(
            "initdb",
            &["-D", data.to_str().unwrap(), "-U", "cofre", "--auth=trust"],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = Self { dir, port };
        p.up();
        p
    }

    /// The URL of its `postgres` database (no password: trust).
    pub fn url(&self) -> String {
        format!("postgres://cofre@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.join("data").to_str().unwrap().to_owned()
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let out = pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    /// Stops the server (fast: open sessions are cut).
    pub fn down(&self) {
        let out = pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
