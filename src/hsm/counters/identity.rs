//! The counter store's identity, bound to the audit log, so that a deleted or replaced
//! store is found at start instead of silently giving every card fresh tries.
//!
//! A store is created with 16 random bytes of identity (sealed under the counter MAC
//! key). Its creation, the daemon's first start (`counters-create`), or a security
//! officer's reset (`cofre keys counters-reset`, `counters-reset`) appends an audit line
//! naming that identity; the audit log's chain and the key store's record of its head
//! make that line impossible to edit or drop. At every start the store on disk must be
//! the one the latest such line names: a missing store, another store, one written under
//! another LMK, or one the log never recorded, stops the daemon (exit 64) until the
//! counters are reset, which writes its own audit line.
//!
//! What it does not catch: a store rolled back to an older copy of itself (no trusted
//! monotonic counter exists to compare with), or one record deleted from the file by an
//! offline edit (that card's tries start again). Each record's MAC catches edits.

use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use super::record::{Seal, StoreId};
use super::{CounterError, META, RECORDS};
use crate::keys::audit::AuditLine;

/// The store file in the state directory.
pub const FILE: &str = "counters.redb";
/// The store layout this code reads and writes (1 had unsealed records).
pub const FORMAT: u64 = 2;
/// The audit operation of a store created at the daemon's first start.
pub const CREATED: &str = "counters-create";
/// The audit operation of a security officer's reset.
pub const RESET: &str = "counters-reset";

const IDENTITY: TableDefinition<&str, &[u8]> = TableDefinition::new("identity");

/// The store the audit log binds: the latest `counters-create` or `counters-reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The bound store's identity.
    pub id: StoreId,
    /// The audit line that bound it.
    pub seq: u64,
}

/// The audit event that binds store `id` (`op` is [`CREATED`] or [`RESET`]).
pub fn audit_event(op: &str, who: &str, id: StoreId) -> crate::keys::audit::AuditEvent {
    crate::keys::audit::AuditEvent {
        who: who.to_owned(),
        op: op.to_owned(),
        key_id: "*".to_owned(),
        version: None,
        kcv: None,
        counter_store: Some(id.to_hex()),
    }
}

/// Finds the binding in a verified audit log (`None`: no store recorded yet).
pub fn binding(lines: &[AuditLine]) -> Option<Binding> {
    lines.iter().rev().find_map(|l| {
        let bound = l.event.op == CREATED || l.event.op == RESET;
        let id = l
            .event
            .counter_store
            .as_deref()
            .and_then(StoreId::from_hex)?;
        bound.then_some(Binding { id, seq: l.seq })
    })
}

/// How opening the file failed.
pub(super) enum OpenFailure {
    /// Another process (a running daemon) holds the store.
    InUse,
    /// Anything else, described.
    Other(String),
}

/// Opens the database. redb asserts on some damaged files (a file cut shorter than its
/// header says) instead of returning an error; such a panic is caught here and reported
/// as a damaged file, so a bad store is a clear startup error, never a crash.
pub(super) fn open_file(path: &Path) -> Result<Database, OpenFailure> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Database::open(path));
    std::panic::set_hook(previous);
    match result {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(OpenFailure::InUse),
        Ok(Err(e)) => Err(OpenFailure::Other(e.to_string())),
        Err(_) => Err(OpenFailure::Other(
            "the file is damaged (truncated or overwritten); restore it from backup".into(),
        )),
    }
}

fn fail(path: &Path) -> impl Fn(String) -> CounterError + '_ {
    move |reason| CounterError::Open {
        path: path.display().to_string(),
        reason,
    }
}

/// Creates an empty store at `path` (replacing a leftover file) with a fresh identity.
fn create_file(path: &Path, seal: &Seal, now: u64) -> Result<StoreId, CounterError> {
    let err = fail(path);
    let _ = std::fs::remove_file(path);
    let db = Database::create(path).map_err(|e| err(e.to_string()))?;
    let id = StoreId::random(&mut rand::rng());
    let mut txn = db.begin_write().map_err(|e| err(e.to_string()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| err(e.to_string()))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
        meta.insert("format", FORMAT)
            .map_err(|e| err(e.to_string()))?;
        let mut identity = txn.open_table(IDENTITY).map_err(|e| err(e.to_string()))?;
        identity
            .insert("store", &seal.seal_identity(id, now)[..])
            .map_err(|e| err(e.to_string()))?;
        txn.open_table(RECORDS).map_err(|e| err(e.to_string()))?;
    }
    txn.commit().map_err(|e| err(e.to_string()))?;
    Ok(id)
}

/// Moves a freshly created file into place durably.
fn install(new: &Path, path: &Path) -> Result<(), CounterError> {
    let err = fail(path);
    std::fs::rename(new, path).map_err(|e| err(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

fn new_path(path: &Path) -> PathBuf {
    path.with_extension("redb.new")
}

/// Reads the format and identity of an open store.
fn identity_of(db: &Database, seal: &Seal, path: &Path) -> Result<StoreId, CounterError> {
    let err = fail(path);
    let txn = db.begin_read().map_err(|e| err(e.to_string()))?;
    let format = match txn.open_table(META) {
        Ok(meta) => meta
            .get("format")
            .map_err(|e| err(e.to_string()))?
            .map(|g| g.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(err(e.to_string())),
    };
    match format {
        Some(FORMAT) => {}
        None => return Err(err("not a cofre counter store (no format record)".into())),
        Some(1) => {
            return Err(CounterError::Identity(format!(
                "counter store {} is format 1, from an earlier version without sealed records: \
                 reset the counters with `cofre keys counters-reset`",
                path.display()
            )));
        }
        Some(other) => {
            return Err(err(format!(
                "format {other} is not supported by this version (expects {FORMAT}); upgrade or restore"
            )));
        }
    }
    let table = txn.open_table(IDENTITY).map_err(|e| err(e.to_string()))?;
    let sealed = table
        .get("store")
        .map_err(|e| err(e.to_string()))?
        .map(|g| g.value().to_vec())
        .unwrap_or_default();
    seal.open_identity(&sealed)
        .map(|(id, _)| id)
        .ok_or_else(|| {
            CounterError::Identity(format!(
                "counter store {}: its identity does not verify under this LMK (written under \
             another LMK, or edited): reset the counters with `cofre keys counters-reset`",
                path.display()
            ))
        })
}

/// Opens the daemon's store in `dir`, checked against the audit log's `binding`. With
/// no store and no binding (a first start) a store is created, and `record` must write
/// its audit line (`counters-create`) before the store is put in place.
pub fn open_bound(
    dir: &Path,
    seal: &Seal,
    binding: Option<Binding>,
    now: u64,
    record: impl FnOnce(StoreId) -> Result<(), String>,
) -> Result<(Database, StoreId), CounterError> {
    let path = dir.join(FILE);
    let err = fail(&path);
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut created = None;
    if !path.exists() {
        if let Some(b) = binding {
            return Err(CounterError::Identity(format!(
                "counter store {} is missing, but the audit log (line {}) binds store {}: \
                 restore it, or reset the counters with `cofre keys counters-reset`",
                path.display(),
                b.seq,
                b.id
            )));
        }
        let new = new_path(&path);
        let id = create_file(&new, seal, now)?;
        record(id).map_err(&err)?;
        install(&new, &path)?;
        created = Some(id);
    }
    let db = match open_file(&path) {
        Ok(db) => db,
        Err(OpenFailure::InUse) => {
            return Err(err(
                "in use by another process (is a daemon running?)".into()
            ));
        }
        Err(OpenFailure::Other(reason)) => return Err(err(reason)),
    };
    let id = identity_of(&db, seal, &path)?;
    match (created, binding) {
        (Some(made), _) if made == id => {}
        (None, Some(b)) if b.id == id => {}
        (Some(made), _) => {
            return Err(err(format!(
                "the store just created reads as {id}, not {made}"
            )));
        }
        (None, Some(b)) => {
            return Err(CounterError::Identity(format!(
                "counter store {} is store {id}, but the audit log (line {}) binds store {}: \
                 it was replaced; restore the bound store, or reset the counters with \
                 `cofre keys counters-reset`",
                path.display(),
                b.seq,
                b.id
            )));
        }
        (None, None) => {
            return Err(CounterError::Identity(format!(
                "counter store {} ({id}) is not recorded in the audit log (a store from \
                 elsewhere, or one kept across an LMK rewrap): reset the counters with \
                 `cofre keys counters-reset`",
                path.display()
            )));
        }
    }
    Ok((db, id))
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The new store's identity.
    pub id: StoreId,
    /// Where the previous store file was moved (kept for inquiry), if there was one.
    pub previous: Option<PathBuf>,
}

/// Replaces the store in `dir` by an empty one with a new identity (`cofre keys
/// counters-reset`). Refused while a daemon holds the store. `record` writes the audit
/// line (`counters-reset`) before the new store is put in place; the old file, if any,
/// is kept beside it as `counters.redb.replaced-<unix time>`.
pub fn reset(
    dir: &Path,
    seal: &Seal,
    now: u64,
    record: impl FnOnce(StoreId) -> Result<(), String>,
) -> Result<Reset, CounterError> {
    let path = dir.join(FILE);
    let err = fail(&path);
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut previous = None;
    if path.exists() {
        // A damaged store may be reset; one a daemon holds may not.
        if let Err(OpenFailure::InUse) = open_file(&path) {
            return Err(err(
                "in use by a running daemon: stop it before resetting the counters".into(),
            ));
        }
        let kept = path.with_extension(format!("redb.replaced-{now}"));
        std::fs::rename(&path, &kept).map_err(|e| err(e.to_string()))?;
        previous = Some(kept);
    }
    let new = new_path(&path);
    let id = create_file(&new, seal, now)?;
    record(id).map_err(err)?;
    install(&new, &path)?;
    Ok(Reset { id, previous })
}

/// The whole reset as `cofre keys counters-reset` does it, for the daemon whose key
/// store and audit log are given: the key store and the audit chain are checked, the
/// store in `state_dir` is replaced ([`reset`]) and the reset is recorded (audit line by
/// `who`, then the key store with the new head).
pub fn reset_recorded(
    state_dir: &Path,
    key_store: &Path,
    audit_log: &Path,
    lmk: &crate::keys::Lmk,
    who: &str,
) -> Result<Reset, String> {
    use crate::keys::{KeyStore, audit};
    let mut store = KeyStore::load(key_store, lmk).map_err(|e| e.to_string())?;
    audit::verify(audit_log, lmk, store.audit_head()).map_err(|e| e.to_string())?;
    let seal = Seal::new(&lmk.derive(crate::keys::lmk::Purpose::CounterRecordMac))
        .ok_or("no counter MAC key")?;
    let now = std::time::SystemTime::now();
    let unix = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    reset(state_dir, &seal, unix, |id| {
        let event = audit_event(RESET, who, id);
        let time = humantime::format_rfc3339_seconds(now).to_string();
        let head = audit::append(audit_log, lmk, event, time).map_err(|e| e.to_string())?;
        store.set_audit_head(head);
        store.save(key_store, lmk).map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::crypto::ClearKey;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cofre-identity-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn seal(k: u8) -> Seal {
        Seal::new(&ClearKey::from_bytes(&[k; 32]).unwrap()).unwrap()
    }

    fn message(r: Result<(Database, StoreId), CounterError>) -> String {
        match r {
            Ok(_) => panic!("opened"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn first_start_creates_and_records_then_only_the_bound_store_opens() {
        let d = dir("bound");
        let mut recorded = None;
        let (db, id) = open_bound(&d, &seal(1), None, 5, |id| {
            recorded = Some(id);
            Ok(())
        })
        .unwrap();
        assert_eq!(recorded, Some(id));
        drop(db);
        let bound = Some(Binding { id, seq: 12 });
        let never = |_| -> Result<(), String> { panic!("no second creation") };
        assert_eq!(open_bound(&d, &seal(1), bound, 6, never).unwrap().1, id);
        // Unbound (a store the log never recorded), another LMK, another store.
        assert!(message(open_bound(&d, &seal(1), None, 6, never)).contains("not recorded"));
        assert!(message(open_bound(&d, &seal(2), bound, 6, never)).contains("another LMK"));
        let other = Some(Binding {
            id: StoreId([9; 16]),
            seq: 13,
        });
        let m = message(open_bound(&d, &seal(1), other, 6, never));
        assert!(m.contains("replaced") && m.contains("line 13"), "{m}");
        // Deleted: refused, naming the reset command.
        std::fs::remove_file(d.join(FILE)).unwrap();
        let m = message(open_bound(&d, &seal(1), bound, 6, never));
        assert!(m.contains("missing") && m.contains("counters-reset"), "{m}");
        // A reset makes a new store, keeps the old file, and records the new identity.
        let mut reset_to = None;
        let r = reset(&d, &seal(1), 7, |id| {
            reset_to = Some(id);
            Ok(())
        })
        .unwrap();
        assert_eq!(Some(r.id), reset_to);
        assert_ne!(r.id, id);
        assert_eq!(r.previous, None, "nothing to keep: the store was deleted");
        let bound = Some(Binding { id: r.id, seq: 14 });
        let (db, _) = open_bound(&d, &seal(1), bound, 8, never).unwrap();
        // Not while a daemon holds it.
        assert!(reset(&d, &seal(1), 9, |_| Ok(())).is_err());
        drop(db);
        let r2 = reset(&d, &seal(1), 9, |_| Ok(())).unwrap();
        assert_eq!(r2.previous, Some(d.join("counters.redb.replaced-9")));
        assert!(d.join("counters.redb.replaced-9").exists());
        // A creation whose audit line cannot be written leaves no store in place.
        let d2 = dir("norecord");
        let m = message(open_bound(&d2, &seal(1), None, 5, |_| {
            Err("disk full".into())
        }));
        assert!(m.contains("disk full"));
        assert!(!d2.join(FILE).exists());
        let _ = std::fs::remove_dir_all(d);
        let _ = std::fs::remove_dir_all(d2);
    }

    fn line(seq: u64, op: &str, store: Option<String>) -> AuditLine {
        AuditLine {
            seq,
            time: "2026-11-29T00:00:00Z".into(),
            event: crate::keys::audit::AuditEvent {
                who: "officer".into(),
                op: op.into(),
                key_id: "*".into(),
                version: None,
                kcv: None,
                counter_store: store,
            },
            prev: String::new(),
            mac: String::new(),
        }
    }

    /// The binding is the latest `counters-create` or `counters-reset` line naming a
    /// store: other lines (even one that names a store) and unreadable identities are
    /// passed over, and a log with none binds nothing.
    #[test]
    fn the_binding_is_the_latest_create_or_reset_line() {
        let (a, b) = (StoreId([0xA; 16]), StoreId([0xB; 16]));
        let created = line(1, CREATED, Some(a.to_hex()));
        assert_eq!(
            binding(std::slice::from_ref(&created)),
            Some(Binding { id: a, seq: 1 })
        );
        let lines = [
            created.clone(),
            line(2, "generate", None),
            line(3, RESET, Some(b.to_hex())),
            line(4, "rotate", None),
        ];
        assert_eq!(binding(&lines), Some(Binding { id: b, seq: 3 }));
        let lines = [
            created.clone(),
            line(2, "rewrap", Some(b.to_hex())),
            line(3, RESET, Some("not hex".into())),
            line(4, RESET, None),
        ];
        assert_eq!(binding(&lines), Some(Binding { id: a, seq: 1 }));
        assert_eq!(binding(&[line(1, "generate", None)]), None);
        assert_eq!(binding(&[]), None);
    }

    /// The audit event of a creation or a reset names the store and the whole key
    /// store (`*`), and nothing else.
    #[test]
    fn the_audit_event_names_the_store() {
        let id = StoreId([0xC; 16]);
        let e = audit_event(RESET, "officer", id);
        assert_eq!(
            (e.who.as_str(), e.op.as_str(), e.key_id.as_str()),
            ("officer", RESET, "*")
        );
        assert_eq!((e.version, e.kcv), (None, None));
        assert_eq!(e.counter_store, Some(id.to_hex()));
    }

    /// A first start checks that the file it put in place is the store it recorded: a
    /// file swapped in while the audit line was written is refused, not adopted.
    #[test]
    fn a_store_swapped_during_its_creation_is_refused() {
        let d = dir("swapped");
        let path = d.join(FILE);
        let m = message(open_bound(&d, &seal(1), None, 5, |_| {
            create_file(&new_path(&path), &seal(1), 5)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
        assert!(m.contains("the store just created reads as"), "{m}");
        let _ = std::fs::remove_dir_all(d);
    }
}
