//! `cofre keys`: what a security team runs. The LMK comes from component files or a
//! systemd credential file, never from an argument or the environment; working-key
//! components come from files too, so no clear key appears in a process list or a shell
//! history. Every change to the store appends an audit line first, then saves the store
//! with the new audit head.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};

use crate::crypto::ClearKey;
use crate::crypto::kcv::Kcv;
use crate::keys::Tr31Import;
use crate::keys::audit::{self, AuditEvent};
use crate::keys::devpki::DevPki;
use crate::keys::lmk::{self, Lmk, LmkSource};
use crate::keys::store::{KeyRecord, KeyStore, NewKey, write_atomic};
use crate::keys::{KeyAlgorithm, KeyKind, KeysError};

/// Where the LMK comes from.
#[derive(Debug, Args)]
pub struct LmkArgs {
    /// An LMK component file (repeat for each component, at least 2).
    #[arg(long = "lmk-component", value_name = "FILE")]
    components: Vec<PathBuf>,
    /// A file holding the combined LMK (default: $CREDENTIALS_DIRECTORY/cofre-lmk).
    #[arg(
        long = "lmk-credential",
        value_name = "FILE",
        conflicts_with = "components"
    )]
    credential: Option<PathBuf>,
}

impl LmkArgs {
    /// The configured source.
    pub fn source(&self) -> Result<LmkSource, KeysError> {
        if let Some(c) = &self.credential {
            return Ok(LmkSource::Credential(c.clone()));
        }
        if !self.components.is_empty() {
            return Ok(LmkSource::Components(self.components.clone()));
        }
        LmkSource::from_credentials_directory()
            .ok_or_else(|| KeysError::Lmk("no LMK: give --lmk-component files or --lmk-credential, or run under systemd with the cofre-lmk credential".into()))
    }

    fn load(&self) -> Result<Lmk, KeysError> {
        let lmk = self.source()?.load()?;
        if !lmk.is_locked_in_memory() {
            eprintln!("warning: could not lock the LMK in memory (raise LimitMEMLOCK); continuing");
        }
        Ok(lmk)
    }
}

/// Store, LMK and operator, shared by every store command.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The key store file.
    #[arg(long, value_name = "FILE")]
    store: PathBuf,
    #[command(flatten)]
    lmk: LmkArgs,
    /// The audit log (default: audit.log beside the store).
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Who is acting, for the audit log (default: $USER).
    #[arg(long)]
    operator: Option<String>,
    /// The node's `hsm.toml`. When its `counters` is a PostgreSQL URL (a pair), key
    /// changes are made on the pair's shared key ledger, which both daemons adopt
    /// within their poll, and the files above are rewritten with the result.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl StoreArgs {
    fn audit_path(&self) -> PathBuf {
        self.audit.clone().unwrap_or_else(|| {
            self.store
                .parent()
                .unwrap_or(Path::new("."))
                .join("audit.log")
        })
    }

    fn operator(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into())
    }

    /// The shared key ledger when `--config` names a node of a pair.
    fn shared_ledger(&self) -> Result<Option<crate::hsm::ledger_pg::PgLedger>, KeysError> {
        match &self.config {
            Some(config) => super::keys_ledger::of_node(config),
            None => Ok(None),
        }
    }

    /// Refuses a command that has no meaning on a pair's shared ledger.
    fn not_on_a_pair(&self, what: &str) -> Result<(), KeysError> {
        if self.shared_ledger()?.is_some() {
            return Err(KeysError::Invalid(format!(
                "{what} is not done on a node of a pair: {}",
                match what {
                    "init" => "the shared key ledger is seeded by the first daemon's start",
                    _ => "stop both daemons and follow docs/pair.md",
                }
            )));
        }
        Ok(())
    }
}

/// One key change: `f` edits the store and returns the record it made or touched,
/// which the audit line `op` names. Made on the files (audit line first, then the
/// store), or, with `--config` naming a node of a pair, on the shared key ledger
/// (`keys_ledger`).
fn change_keys<T>(
    args: &StoreArgs,
    op: &str,
    f: impl FnOnce(&Lmk, &mut KeyStore) -> Result<(T, KeyRecord), KeysError>,
) -> Result<T, KeysError> {
    let event = |r: &KeyRecord| AuditEvent {
        who: args.operator(),
        op: op.into(),
        key_id: r.id.clone(),
        version: Some(r.version),
        kcv: Some(r.kcv.clone()),
        counter_store: None,
    };
    if let Some(ledger) = args.shared_ledger()? {
        let lmk = args.lmk.load()?;
        return super::keys_ledger::change(&ledger, &lmk, &args.store, &args.audit_path(), |s| {
            let (value, record) = f(&lmk, s)?;
            Ok((value, event(&record)))
        });
    }
    let (lmk, mut s) = open(args)?;
    let (value, record) = f(&lmk, &mut s)?;
    commit_event(args, &lmk, &mut s, event(&record))?;
    Ok(value)
}

/// `cofre keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate LMK components for a ceremony; prints each component's KCV and the LMK KCV.
    Ceremony {
        /// Number of components (custodians), at least 2.
        #[arg(long, default_value_t = 3)]
        components: usize,
        /// Write component-N.txt files here (mode 0600), one per custodian.
        #[arg(long, value_name = "DIR", required_unless_present = "print")]
        out_dir: Option<PathBuf>,
        /// Print the components instead (once; for a ceremony room with no disk).
        #[arg(long)]
        print: bool,
    },
    /// Recompute the LMK KCV from its components (or credential) to check them.
    LmkKcv {
        #[command(flatten)]
        lmk: LmkArgs,
    },
    /// Print the combined LMK (64 hex characters) for `systemd-creds encrypt`. Refuses
    /// to write to a terminal: pipe it straight into the credential encryption.
    LmkCombine {
        #[command(flatten)]
        lmk: LmkArgs,
    },
    /// Create an empty key store under the LMK.
    Init {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Generate a random key.
    Generate {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        key: KeySpec,
    },
    /// Import a key from clear component files, or from a TR-31 block under a KEK.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id.
        #[arg(long)]
        id: String,
        /// Key kind (required for components; for TR-31 taken from the block if omitted).
        #[arg(long)]
        kind: Option<KeyKind>,
        /// Algorithm for components (default: the kind's first).
        #[arg(long)]
        algorithm: Option<KeyAlgorithm>,
        /// A clear component file (`component = <hex>`, optional `kcv = <hex>`); repeat.
        #[arg(long = "component-file", value_name = "FILE", conflicts_with = "tr31")]
        component_files: Vec<PathBuf>,
        /// Expected KCV of the combined key.
        #[arg(long)]
        kcv: Option<Kcv>,
        /// Mark the key exportable (default: the kind's default).
        #[arg(long)]
        exportable: Option<bool>,
        /// A TR-31 key block.
        #[arg(long, requires = "kek")]
        tr31: Option<String>,
        /// The KEK id the block is wrapped under.
        #[arg(long)]
        kek: Option<String>,
    },
    /// Export a key as a TR-31 block under a KEK (B for a TDES KEK, D for AES), or with
    /// `--payshield ID` as the key block under the LMK (`S...`) that a switch puts in
    /// the key fields of payShield host commands (protocol/payshield.md).
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id.
        #[arg(
            long,
            required_unless_present = "payshield",
            conflicts_with = "payshield"
        )]
        id: Option<String>,
        /// Version (default: the active one).
        #[arg(long)]
        version: Option<u32>,
        /// KEK id.
        #[arg(
            long,
            required_unless_present = "payshield",
            conflicts_with = "payshield"
        )]
        kek: Option<String>,
        /// Print this key as a payShield key block under the LMK instead.
        #[arg(long, value_name = "ID")]
        payshield: Option<String>,
    },
    /// List ids, versions, status and KCVs (never key material).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// New version becomes active; the previous one verifies only.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id.
        #[arg(long)]
        id: String,
    },
    /// Set the shortest MAC a MAC key's verification accepts, on every version of the
    /// key (ISO 8583 retail MACs carry 4 bytes); `full` restores the algorithm's full
    /// length, the default. Audited.
    MacMinLength {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id (a MAC key).
        #[arg(long)]
        id: String,
        /// Bytes (4 up to the MAC's full length), or `full`.
        #[arg(long, value_name = "BYTES|full")]
        min: String,
    },
    /// Retire a version: it no longer generates or verifies.
    Retire {
        #[command(flatten)]
        store: StoreArgs,
        /// Key id.
        #[arg(long)]
        id: String,
        /// Version.
        #[arg(long)]
        version: u32,
    },
    /// Re-wrap every key under a new LMK. Shows both LMK KCVs; writes only with --yes.
    Rewrap {
        #[command(flatten)]
        store: StoreArgs,
        /// A component file of the new LMK (repeat).
        #[arg(long = "new-lmk-component", value_name = "FILE")]
        new_components: Vec<PathBuf>,
        /// A file with the new combined LMK.
        #[arg(
            long = "new-lmk-credential",
            value_name = "FILE",
            conflicts_with = "new_components"
        )]
        new_credential: Option<PathBuf>,
        /// Write, after the KCVs were checked.
        #[arg(long)]
        yes: bool,
    },
    /// Verify the audit log chain (and that no line was cut from its end).
    AuditVerify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the daemon's counter store (PIN and dCVV2 tries) by an empty one with a new
    /// identity, recorded in the audit log: what lets the daemon start again after its
    /// store was deleted, replaced or damaged, or after an LMK rewrap. Every card's tries
    /// start from zero. Stop the daemon first; without --yes nothing is written.
    CountersReset {
        #[command(flatten)]
        store: StoreArgs,
        /// The daemon's `state_dir` (where `counters.redb` lives).
        #[arg(long, value_name = "DIR", required_unless_present = "counters")]
        state_dir: Option<PathBuf>,
        /// Instead: the pair's PostgreSQL counter store (`postgres://user@host/db`, no
        /// password in it), emptied with a new identity. Stop every daemon first.
        #[arg(long, value_name = "URL", conflicts_with = "state_dir")]
        counters: Option<String>,
        /// The password of --counters, in a file (default: none).
        #[arg(long, value_name = "FILE", requires = "counters")]
        counters_password_file: Option<PathBuf>,
        /// Write (after reading what it does).
        #[arg(long)]
        yes: bool,
    },
    /// Write an INSECURE development PKI: CA, daemon server certificate, client certificates.
    DevPki {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A client certificate Common Name (repeat).
        #[arg(long = "client")]
        clients: Vec<String>,
        /// Add a server certificate `<NAME>.pem` (Common Name `cofre-<NAME>`) signed by
        /// the CA already in `--out`, changing nothing else (the REST facade's: `api`).
        #[arg(long = "add-server", value_name = "NAME", conflicts_with = "clients")]
        add_server: Option<String>,
    },
}

/// The development CA's name (its certificates' issuer).
const DEV_CA_NAME: &str = "cofre development CA (INSECURE)";

/// What to generate.
#[derive(Debug, Args)]
pub struct KeySpec {
    /// Key id, e.g. pvk.visa.issuer1.
    #[arg(long)]
    id: String,
    /// Key kind.
    #[arg(long)]
    kind: KeyKind,
    /// Algorithm (default: the kind's first).
    #[arg(long)]
    algorithm: Option<KeyAlgorithm>,
    /// Length in bytes (default: the kind's default).
    #[arg(long)]
    length: Option<usize>,
    /// Exportable under a KEK (default: the kind's default).
    #[arg(long)]
    exportable: Option<bool>,
}

fn show(r: &KeyRecord) -> String {
    r.summary()
}

/// Applies a change: audit line first (durable), then the store with the new head.
fn commit(
    args: &StoreArgs,
    lmk: &Lmk,
    store: &mut KeyStore,
    op: &str,
    record: Option<&KeyRecord>,
    key_id: &str,
) -> Result<(), KeysError> {
    let event = AuditEvent {
        who: args.operator(),
        op: op.into(),
        key_id: key_id.into(),
        version: record.map(|r| r.version),
        kcv: record.map(|r| r.kcv.clone()),
        counter_store: None,
    };
    commit_event(args, lmk, store, event)
}

/// Appends `event` (fsynced), then saves the store with the new head.
fn commit_event(
    args: &StoreArgs,
    lmk: &Lmk,
    store: &mut KeyStore,
    event: AuditEvent,
) -> Result<(), KeysError> {
    let head = audit::append(
        &args.audit_path(),
        lmk,
        event,
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    )?;
    store.set_audit_head(head);
    store.save(&args.store, lmk)
}

fn open(args: &StoreArgs) -> Result<(Lmk, KeyStore), KeysError> {
    let lmk = args.lmk.load()?;
    let store = KeyStore::load(&args.store, &lmk)?;
    Ok((lmk, store))
}

/// Runs one `keys` command; returns the lines to print.
pub fn run(cmd: KeysCommand) -> Result<String, KeysError> {
    let mut rng = rand::rng();
    match cmd {
        KeysCommand::Ceremony {
            components,
            out_dir,
            print,
        } => {
            let (parts, kcv) = lmk::ceremony(components, &mut rng)?;
            let mut out = Vec::new();
            for (i, c) in parts.iter().enumerate() {
                let text = c.to_file_text(i + 1, components);
                match &out_dir {
                    Some(dir) if !print => {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| KeysError::Io(format!("{}: {e}", dir.display())))?;
                        let path = dir.join(format!("component-{}.txt", i + 1));
                        write_private(&path, text.as_bytes())?;
                        out.push(format!(
                            "component {} of {components}: kcv {} -> {}",
                            i + 1,
                            c.kcv(),
                            path.display()
                        ));
                    }
                    _ => out.push((*text).to_string()),
                }
            }
            out.push(format!("LMK kcv {kcv}"));
            Ok(out.join("\n"))
        }
        KeysCommand::LmkKcv { lmk } => Ok(lmk.load()?.kcv().to_string()),
        KeysCommand::LmkCombine { lmk } => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(KeysError::Lmk(
                    "refusing to print the LMK on a terminal; pipe it into systemd-creds encrypt"
                        .into(),
                ));
            }
            let lmk = lmk.load()?;
            eprintln!(
                "LMK kcv {} (combined; for the systemd credential)",
                lmk.kcv()
            );
            Ok(lmk.to_credential_text().to_string())
        }
        KeysCommand::Init { store } => {
            if store.store.exists() {
                return Err(KeysError::Invalid(format!(
                    "{} already exists",
                    store.store.display()
                )));
            }
            store.not_on_a_pair("init")?;
            let lmk = store.lmk.load()?;
            let mut s = KeyStore::new(&lmk);
            commit(&store, &lmk, &mut s, "init", None, "*")?;
            Ok(format!(
                "created {} under LMK kcv {}",
                store.store.display(),
                lmk.kcv()
            ))
        }
        KeysCommand::Generate { store, key } => {
            let spec = NewKey {
                id: key.id,
                kind: key.kind,
                algorithm: key.algorithm,
                length: key.length,
                exportable: key.exportable,
            };
            change_keys(&store, "generate", |lmk, s| {
                let r = s.generate(lmk, &spec, SystemTime::now(), &mut rng)?;
                Ok((show(&r), r))
            })
        }
        KeysCommand::Import {
            store,
            id,
            kind,
            algorithm,
            component_files,
            kcv,
            exportable,
            tr31,
            kek,
        } => {
            if let (Some(block), Some(kek)) = (tr31, kek) {
                return change_keys(&store, "import", |lmk, s| {
                    let r = s.import_tr31(
                        lmk,
                        &Tr31Import {
                            id: &id,
                            kind,
                            kek_id: &kek,
                            block: &block,
                        },
                        SystemTime::now(),
                        &mut rng,
                    )?;
                    Ok((show(&r), r))
                });
            }
            let kind = kind.ok_or_else(|| {
                KeysError::Invalid("--kind is required with --component-file".into())
            })?;
            match component_files.len() {
                0 => {
                    return Err(KeysError::Invalid(
                        "give --component-file (2 or more for split knowledge)".into(),
                    ));
                }
                1 => eprintln!("warning: single-component import: no split knowledge"),
                _ => {}
            }
            let parts = component_files
                .iter()
                .map(|p| read_component(p))
                .collect::<Result<Vec<_>, _>>()?;
            let spec = NewKey {
                id: id.clone(),
                kind,
                algorithm,
                length: None,
                exportable,
            };
            change_keys(&store, "import", |lmk, s| {
                let r =
                    s.import_components(lmk, &spec, &parts, kcv, SystemTime::now(), &mut rng)?;
                Ok((show(&r), r))
            })
        }
        KeysCommand::Export {
            store,
            id,
            version,
            kek,
            payshield,
        } => {
            if let Some(id) = payshield {
                return change_keys(&store, "export-payshield", |lmk, s| {
                    s.payshield_block(lmk, &id, version, &mut rng)
                });
            }
            let (Some(id), Some(kek)) = (id, kek) else {
                return Err(KeysError::Invalid("export needs --id and --kek".into()));
            };
            change_keys(&store, "export", |_, s| {
                s.export_tr31(&id, version, &kek, &mut rng)
            })
        }
        KeysCommand::List { store } => {
            let (_, s) = open(&store)?;
            let mut lines = vec![format!("# LMK kcv {}", s.lmk_kcv())];
            lines.extend(s.list().into_iter().map(show));
            Ok(lines.join("\n"))
        }
        KeysCommand::Rotate { store, id } => change_keys(&store, "rotate", |lmk, s| {
            let r = s.rotate(lmk, &id, SystemTime::now(), &mut rng)?;
            Ok((show(&r), r))
        }),
        KeysCommand::MacMinLength { store, id, min } => {
            let min = match min.as_str() {
                "full" => None,
                n => Some(n.parse::<u8>().map_err(|_| {
                    KeysError::Invalid(format!("--min {n:?}: give a number of bytes or full"))
                })?),
            };
            change_keys(&store, "mac-min-length", |_, s| {
                let r = s.set_mac_min_length(&id, min)?;
                Ok((show(&r), r))
            })
        }
        KeysCommand::Retire { store, id, version } => change_keys(&store, "retire", |_, s| {
            let r = s.retire(&id, version)?;
            Ok((show(&r), r))
        }),
        KeysCommand::Rewrap {
            store,
            new_components,
            new_credential,
            yes,
        } => {
            store.not_on_a_pair("rewrap")?;
            let (old, s) = open(&store)?;
            let new_source = match new_credential {
                Some(c) => LmkSource::Credential(c),
                None => LmkSource::Components(new_components),
            };
            let new = new_source.load()?;
            let summary = format!(
                "current LMK kcv {}\nnew LMK kcv     {}\nkeys to re-wrap {}",
                old.kcv(),
                new.kcv(),
                s.list().len()
            );
            if !yes {
                return Err(KeysError::Invalid(format!(
                    "{summary}\nnothing written: check both KCVs, then re-run with --yes"
                )));
            }
            let backup = store
                .store
                .with_extension(format!("pre-rewrap-{}", old.kcv()));
            std::fs::copy(&store.store, &backup)
                .map_err(|e| KeysError::Io(format!("{}: {e}", backup.display())))?;
            let mut rewrapped = s.rewrap(&new, &mut rng)?;
            // The audit chain moves to the new LMK's key: the rewrap line is the last one
            // under the old LMK, and a new chain starts under the new one.
            let event = AuditEvent {
                who: store.operator(),
                op: "rewrap".into(),
                key_id: "*".into(),
                version: None,
                kcv: Some(new.kcv().to_string()),
                counter_store: None,
            };
            audit::append(
                &store.audit_path(),
                &old,
                event,
                humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            )?;
            let audit_path = store.audit_path();
            let archived = audit_path.with_extension(format!("log.lmk-{}", old.kcv()));
            std::fs::rename(&audit_path, &archived)
                .map_err(|e| KeysError::Io(format!("{}: {e}", archived.display())))?;
            commit(&store, &new, &mut rewrapped, "rewrap", None, "*")?;
            Ok(format!(
                "{summary}\nre-wrapped; previous store kept as {}; previous audit log archived as {}\n\
                 the daemon's counter store was sealed under the previous LMK: reset it with \
                 `cofre keys counters-reset` before the daemon starts under the new one",
                backup.display(),
                archived.display()
            ))
        }
        KeysCommand::DevPki {
            out,
            add_server: Some(name),
            ..
        } => {
            crate::keys::devpki::add_server(&out, DEV_CA_NAME, &name)?;
            Ok(format!(
                "wrote the INSECURE server certificate {name}.pem to {}",
                out.display()
            ))
        }
        KeysCommand::DevPki { out, clients, .. } => {
            let names: Vec<&str> = clients.iter().map(String::as_str).collect();
            DevPki::generate(DEV_CA_NAME, &names)?.write(&out)?;
            Ok(format!(
                "wrote an INSECURE development PKI to {}",
                out.display()
            ))
        }
        KeysCommand::AuditVerify { store } => {
            let (lmk, s) = open(&store)?;
            let n = audit::verify(&store.audit_path(), &lmk, s.audit_head())?;
            Ok(format!("audit log intact: {n} lines"))
        }
        KeysCommand::CountersReset {
            store,
            state_dir,
            counters: Some(url),
            counters_password_file,
            yes,
        } => {
            let _ = state_dir;
            counters_reset_postgres(&store, &url, counters_password_file, yes)
        }
        KeysCommand::CountersReset {
            store,
            state_dir: Some(state_dir),
            yes,
            ..
        } => counters_reset(&store, &state_dir, yes),
        KeysCommand::CountersReset { .. } => Err(KeysError::Invalid(
            "counters-reset needs --state-dir or --counters".into(),
        )),
    }
}

fn counters_reset_postgres(
    args: &StoreArgs,
    url: &str,
    password_file: Option<PathBuf>,
    yes: bool,
) -> Result<String, KeysError> {
    use crate::hsm::config::{CounterBackend, counter_backend};
    use crate::hsm::counters::{PgCounters, PgTarget};
    let (lmk, s) = open(args)?;
    audit::verify(&args.audit_path(), &lmk, s.audit_head())?;
    let CounterBackend::Postgres { url, password_file } =
        counter_backend(Some(url.to_owned()), password_file).map_err(KeysError::Invalid)?
    else {
        return Err(KeysError::Invalid(
            "--counters must be a postgres:// URL".into(),
        ));
    };
    if !yes {
        return Err(KeysError::Invalid(format!(
            "this empties the pair's counter store at {url}: every card's PIN and dCVV2 tries \
             start again from zero. Nothing written: stop every daemon of the pair, then \
             re-run with --yes"
        )));
    }
    let target = PgTarget {
        url: url.clone(),
        password: crate::hsm::server::counters_password(password_file.as_deref())
            .map_err(KeysError::Invalid)?,
    };
    let id = PgCounters::reset_recorded(
        &target,
        &args.store,
        &args.audit_path(),
        &lmk,
        &args.operator(),
    )
    .map_err(KeysError::Io)?;
    Ok(format!(
        "counter store at {url} reset: new store {id} recorded in the audit log; copy the \
         key store and audit log to the other node before starting it"
    ))
}

fn counters_reset(args: &StoreArgs, state_dir: &Path, yes: bool) -> Result<String, KeysError> {
    use crate::hsm::counters::identity;
    let (lmk, s) = open(args)?;
    // The reset is recorded on an intact chain only.
    audit::verify(&args.audit_path(), &lmk, s.audit_head())?;
    let file = state_dir.join(identity::FILE);
    if !yes {
        return Err(KeysError::Invalid(format!(
            "this replaces the counter store {} by an empty one: every card's PIN and dCVV2 \
             tries start again from zero (the old file is kept beside it). Nothing written: \
             stop the daemon, then re-run with --yes",
            file.display()
        )));
    }
    let reset = identity::reset_recorded(
        state_dir,
        &args.store,
        &args.audit_path(),
        &lmk,
        &args.operator(),
    )
    .map_err(KeysError::Io)?;
    let kept = reset.previous.map_or_else(
        || "there was no previous store".to_owned(),
        |p| format!("the previous store is kept as {}", p.display()),
    );
    Ok(format!(
        "counter store {} reset: new store {} recorded in the audit log; {kept}",
        file.display(),
        reset.id
    ))
}

fn read_component(path: &Path) -> Result<(ClearKey, Option<Kcv>), KeysError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| KeysError::Io(format!("{}: {e}", path.display())))?,
    );
    let mut key = None;
    let mut kcv = None;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("component", v)) => key = Some(ClearKey::from_hex(v)?),
            Some(("kcv", v)) => kcv = Some(v.parse()?),
            _ => {
                return Err(KeysError::Invalid(format!(
                    "{}: unexpected line",
                    path.display()
                )));
            }
        }
    }
    Ok((
        key.ok_or_else(|| KeysError::Invalid(format!("{}: no component line", path.display())))?,
        kcv,
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    // write_atomic creates the file with mode 0600 from the start.
    write_atomic(path, bytes)
}
