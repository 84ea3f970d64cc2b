//! `cofre up`: the whole system on the INSECURE example keys, for a laptop: the daemon on
//! `hsm.toml` (127.0.0.1:7300, metrics on :7301) and the REST facade on `api.toml`
//! (https://127.0.0.1:8443, SQLite file `state/api.db`, created on first start). Prints
//! where each listens; Ctrl-C (or SIGTERM) stops both.
//!
//! Both run on a **working copy** of the example set, never on `keys-example/` itself: the
//! daemon's first start writes its counter store, an audit line and the key store's audit
//! head, and PIN tries count across runs. The copy is `keys-example/state/working-copy/`
//! (under the example set's ignored `state/` directory, or `--work-dir`), made on the first
//! run and kept between runs, so records and PIN tries persist like a real system's;
//! `--fresh` throws it away and starts from the published set again (empty records, no
//! PIN tries). A copy made from another version of the example set is refused (exit 64)
//! until `--fresh`: the files it was made from are hashed into `.example-set.sha256`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use sha2::{Digest, Sha256};

use super::api::{ApiRunArgs, run_server as run_api};
use super::hsm::{HsmArgs, run as run_hsm};

/// Arguments of `cofre up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The example set (its hsm.toml and api.toml are used).
    #[arg(long, default_value = "keys-example")]
    pub dir: PathBuf,
    /// Daemon address instead of hsm.toml's.
    #[arg(long)]
    pub hsm_listen: Option<SocketAddr>,
    /// Daemon metrics address instead of hsm.toml's.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Facade address instead of api.toml's.
    #[arg(long)]
    pub api_listen: Option<SocketAddr>,
    /// Start from the published example set: delete the working copy (records, PIN
    /// tries, counters) and make it again.
    #[arg(long)]
    pub fresh: bool,
    /// Where the working copy lives (default: `state/working-copy` inside --dir, which
    /// git ignores).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// The file in the working copy naming the example set it was made from.
const SOURCE_HASH_FILE: &str = ".example-set.sha256";

/// SHA-256 over the example set's files (relative path and content, sorted by path),
/// leaving out `state/`: what the working copy was made from.
fn hash_example_set(dir: &Path) -> std::io::Result<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            if dir == root && e.file_name() == "state" {
                continue;
            }
            if e.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        let content = std::fs::read(&f)?;
        h.update((content.len() as u64).to_be_bytes());
        h.update(&content);
    }
    Ok(hex::encode(h.finalize()))
}

/// Makes (or, with `fresh`, remakes) the working copy of `source` in `work`, or checks
/// that the existing one was made from this version of `source`. Returns what it did.
fn prepare_working_copy(source: &Path, work: &Path, fresh: bool) -> Result<&'static str, String> {
    let hash =
        hash_example_set(source).map_err(|e| format!("reading {}: {e}", source.display()))?;
    let marker = work.join(SOURCE_HASH_FILE);
    if !fresh && work.join("hsm.toml").exists() {
        let made_from = std::fs::read_to_string(&marker).unwrap_or_default();
        if made_from.trim() == hash {
            return Ok("reusing");
        }
        return Err(format!(
            "the working copy {} was not made from this version of {}; start with --fresh \
             (its records and PIN tries are lost)",
            work.display(),
            source.display()
        ));
    }
    if work.starts_with(source) && !work.starts_with(source.join("state")) {
        return Err(format!(
            "--work-dir {} must not be inside {} (other than its state/)",
            work.display(),
            source.display()
        ));
    }
    // The copy replaces the directory: never delete one that is not a working copy.
    let foreign = std::fs::read_dir(work)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
        && !marker.exists();
    if foreign {
        return Err(format!(
            "{} is not empty and is not a working copy made by cofre up; choose another --work-dir",
            work.display()
        ));
    }
    crate::cli::bench::spawn::private_copy(source, work, "cofre-up")?;
    std::fs::write(&marker, format!("{hash}\n"))
        .map_err(|e| format!("writing {}: {e}", marker.display()))?;
    Ok(if fresh { "fresh" } else { "new" })
}

/// Runs the system until Ctrl-C.
pub fn run(args: UpArgs) -> ExitCode {
    for f in [args.dir.join("hsm.toml"), args.dir.join("api.toml")] {
        if !f.exists() {
            eprintln!(
                "cofre up: {} not found; run from the repository root or pass --dir",
                f.display()
            );
            return ExitCode::from(64);
        }
    }
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| args.dir.join("state").join("working-copy"));
    match prepare_working_copy(&args.dir, &work, args.fresh) {
        Ok(how) => eprintln!(
            "cofre up: INSECURE example keys from {}, working copy {} ({how}; --fresh starts over)",
            args.dir.display(),
            work.display()
        ),
        Err(e) => {
            eprintln!("cofre up: {e}");
            return ExitCode::from(64);
        }
    }
    let hsm_config = work.join("hsm.toml");
    let api_config = work.join("api.toml");
    let hsm_addr = args.hsm_listen;
    let metrics = args.metrics_listen;
    let hsm = std::thread::spawn(move || {
        run_hsm(HsmArgs {
            config: hsm_config,
            listen: hsm_addr,
            metrics_listen: metrics,
            payshield_listen: None,
        })
    });
    let hsm_target = match hsm_addr {
        Some(a) => a.to_string(),
        None => match crate::hsm::HsmConfig::load(&work.join("hsm.toml")) {
            Ok(c) => c.listen.to_string(),
            Err(e) => {
                eprintln!("cofre up: {e}");
                return ExitCode::from(64);
            }
        },
    };
    eprintln!(
        "cofre up: REST facade: example API client `example-client`, api key `example-api-key`, \
         secret `example-secret-not-for-production` (keys-example/README.md); OpenAPI at /openapi.json"
    );
    let api = run_api(ApiRunArgs {
        config: api_config,
        listen: args.api_listen,
        database: None,
        hsm: Some(hsm_target),
        hsm_wait: 30,
        require_tls: false,
    });
    // The facade has stopped (a signal, or it could not start): stop the daemon too,
    // rather than leave it running without the process anyone is watching.
    if let Err(e) =
        nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM)
    {
        eprintln!("cofre up: cannot stop the daemon: {e}");
    }
    let hsm = hsm.join().unwrap_or(ExitCode::FAILURE);
    if api == ExitCode::SUCCESS { hsm } else { api }
}
