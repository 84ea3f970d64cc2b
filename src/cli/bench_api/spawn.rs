//! The daemon and the facade the API benchmark drives: both started from a private copy
//! of the example set (`--keys`), on free loopback ports, on a fresh database (SQLite in
//! the copy, or a new database on the PostgreSQL server of `--api-database`), and
//! stopped (and the copy removed, the PostgreSQL database dropped) afterwards.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A started process and the address it printed.
#[derive(Debug)]
pub struct Started {
    child: Child,
    /// Its listening address.
    pub addr: String,
}

impl Started {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
    }
}

/// Both processes and their scratch state.
#[derive(Debug)]
pub struct System {
    /// The facade (dropped first).
    pub api: Started,
    /// The daemon.
    pub hsm: Started,
    /// The copy of the example set.
    pub dir: PathBuf,
    /// The database URL the facade uses.
    pub database: String,
    postgres_admin: Option<(String, String)>,
}

impl Drop for System {
    fn drop(&mut self) {
        // Stop the facade before its database goes.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.api.pid()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.api.child.wait();
        if let Some((admin, name)) = self.postgres_admin.take() {
            let _ = run_sql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == "state" {
            continue;
        }
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(name))?;
        } else {
            std::fs::copy(e.path(), to.join(name))?;
        }
    }
    Ok(())
}

fn start(args: &[&str], prefix: &str) -> Result<Started, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(args)
        .env("COFRE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = std::io::BufReader::new(stdout).lines().next();
    match line {
        Some(Ok(l)) if l.starts_with(prefix) => Ok(Started {
            addr: l[prefix.len()..].to_owned(),
            child,
        }),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("{} did not start", args.join(" ")))
        }
    }
}

fn run_sql(url: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .map_err(|e| e.to_string())?;
        pool.close().await;
        Ok(())
    })
}

/// Starts the daemon and the facade. `database`: `None` for SQLite in the copy, or a
/// PostgreSQL URL whose server gets a fresh database for the run.
pub fn start_system(keys: &Path, database: Option<&str>) -> Result<System, String> {
    let dir = std::env::temp_dir().join(format!("cofre-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(keys, &dir).map_err(|e| format!("copying {}: {e}", keys.display()))?;
    let (database, postgres_admin) = match database {
        None => (
            format!("sqlite://{}", dir.join("state/bench.db").display()),
            None,
        ),
        Some(url) if url.starts_with("postgres") => {
            let name = format!("cofre_bench_{}", std::process::id());
            run_sql(url, &format!("CREATE DATABASE {name}"))?;
            let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
            (format!("{base}/{name}"), Some((url.to_owned(), name)))
        }
        Some(other) => return Err(format!("--api-database {other}: a postgres:// URL")),
    };
    let hsm_config = dir.join("hsm.toml");
    let hsm = start(
        &[
            "hsm",
            "--config",
            &hsm_config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "listening on ",
    )?;
    let api_config = dir.join("api.toml");
    let api = start(
        &[
            "api",
            "run",
            "--config",
            &api_config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--hsm",
            &hsm.addr,
            "--database",
            &database,
        ],
        "api listening on http://",
    )?;
    Ok(System {
        api,
        hsm,
        dir,
        database,
        postgres_admin,
    })
}
