//! The daemons the bench runs against when asked to: a `cofre hsm` process on a private
//! copy of the example set (`--spawn`), or the daemon's state loaded in this process
//! (`--in-process`). Each copy starts with an empty counter store of its own.

use std::path::{Path, PathBuf};

use crate::hsm::HsmConfig;
use crate::hsm::counters::identity;
use crate::keys::{KeyStore, LmkSource, audit};

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

/// A private copy of the example set in `dir` (replaced), without its state. If the
/// copied audit log binds a counter store (the example set was run in place), the copy
/// gets a fresh one, recorded in its own audit log under `operator`.
pub(crate) fn private_copy(keys: &Path, dir: &Path, operator: &str) -> Result<HsmConfig, String> {
    let _ = std::fs::remove_dir_all(dir);
    copy_dir(keys, dir).map_err(|e| format!("copying {}: {e}", keys.display()))?;
    let config = HsmConfig::load(&dir.join("hsm.toml"))?;
    let lmk = LmkSource::Components(config.lmk_components.clone())
        .load()
        .map_err(|e| e.to_string())?;
    let store = KeyStore::load(&config.key_store, &lmk).map_err(|e| e.to_string())?;
    let lines = audit::verified_lines(&config.audit_log, &lmk, store.audit_head())
        .map_err(|e| e.to_string())?;
    if identity::binding(&lines).is_some() {
        identity::reset_recorded(
            &config.state_dir,
            &config.key_store,
            &config.audit_log,
            &lmk,
            operator,
        )?;
    }
    Ok(config)
}

/// A PostgreSQL counter store for the spawned daemons (`--counters`).
#[derive(Debug)]
pub(super) struct SharedStore {
    /// The URL, without a password.
    pub(super) url: String,
    /// The file that holds its password.
    pub(super) password_file: Option<PathBuf>,
}

/// Points the copy in `dir` at `store`: the two settings go first in its hsm.toml (top
/// level keys come before the tables).
fn use_shared_store(dir: &Path, store: &SharedStore) -> Result<(), String> {
    let file = dir.join("hsm.toml");
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let mut head = format!("counters = {:?}\n", store.url);
    if let Some(p) = &store.password_file {
        let p = std::path::absolute(p).map_err(|e| e.to_string())?;
        head.push_str(&format!(
            "counters_password_file = {:?}\n",
            p.display().to_string()
        ));
    }
    std::fs::write(&file, head + &text).map_err(|e| e.to_string())
}

/// Gives the copy in `to` the key store and audit log of the copy in `from` (the pair's
/// one audit chain, with the first daemon's `counters-create`).
fn copy_ledger(from: &Path, to: &Path) -> Result<(), String> {
    let (a, b) = (
        HsmConfig::load(&from.join("hsm.toml"))?,
        HsmConfig::load(&to.join("hsm.toml"))?,
    );
    for (x, y) in [(a.key_store, b.key_store), (a.audit_log, b.audit_log)] {
        std::fs::copy(&x, &y).map_err(|e| format!("{}: {e}", x.display()))?;
    }
    Ok(())
}

/// A spawned daemon, stopped (SIGTERM) and its directory removed when dropped.
pub(super) struct Spawned {
    pub(super) child: std::process::Child,
    pub(super) dir: PathBuf,
    pub(super) addr: String,
    /// The payShield listener, when asked for, and the copy's configuration.
    pub(super) payshield: Option<(String, HsmConfig)>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `cofre hsm` number `index` on a private copy of `keys` on a free loopback
/// port, on the shared `store` if given (with the key store and audit log of the copy
/// in `ledger`: the pair's first daemon); with `payshield`, its payShield listener too
/// (a `[payshield]` section added to the copy).
pub(super) fn spawn_daemon(
    keys: &Path,
    store: Option<&SharedStore>,
    index: usize,
    ledger: Option<&Path>,
    payshield: bool,
) -> Result<Spawned, String> {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("cofre-bench-{}-{index}", std::process::id()));
    private_copy(keys, &dir, "cofre-bench")?;
    if let Some(s) = store {
        use_shared_store(&dir, s)?;
    }
    if let Some(from) = ledger {
        copy_ledger(from, &dir)?;
    }
    let config = HsmConfig::load(&dir.join("hsm.toml"))?;
    let mut command =
        std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
    command
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]);
    if payshield {
        let path = dir.join("hsm.toml");
        let mut text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        text.push_str("\n[payshield]\nlisten = \"127.0.0.1:0\"\n");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        command.args(["--payshield-listen", "127.0.0.1:0"]);
    }
    let mut child = command
        .env("COFRE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut after = |prefix: &str| {
        lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
    };
    let addr = after("listening on ");
    let ps = if payshield {
        after("payshield on ")
    } else {
        None
    };
    let (Some(addr), true) = (addr, ps.is_some() == payshield) else {
        let _ = child.kill();
        return Err("the spawned daemon did not start".into());
    };
    Ok(Spawned {
        child,
        dir,
        addr,
        payshield: ps.map(|a| (a, config)),
    })
}

/// Resident memory of a process, in MB.
pub(super) fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
