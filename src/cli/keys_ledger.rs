//! `cofre keys` on a node of a pair: with `--config` naming the node's `hsm.toml`, and
//! its `counters` a PostgreSQL URL, a key change is made on the pair's shared key
//! ledger (docs/pair.md, "One key ledger") as a daemon's `key.*` administration makes
//! it: under the ledger row's lock, on its newest generation (checked as a file load,
//! and extending the chain of this node's files), with the audit line appended to that
//! generation's log, written as the next generation in the same transaction. Both
//! daemons then adopt it at their next poll (2 s), without a restart. The node's files
//! are rewritten with the new generation once it is committed.
//!
//! The checks, the row lock and the audit append are the daemon's own
//! ([`crate::hsm::ledger`], [`crate::hsm::ledger_pg`]): nothing here decides.

use std::path::Path;

use crate::hsm::config::{CounterBackend, HsmConfig};
use crate::hsm::ledger::{self, LedgerError};
use crate::hsm::ledger_pg::PgLedger;
use crate::keys::audit::AuditEvent;
use crate::keys::{KeyStore, KeysError, Lmk};

impl From<LedgerError> for KeysError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Unavailable(_) => KeysError::Io(e.to_string()),
            LedgerError::Refused(_) => KeysError::Invalid(e.to_string()),
        }
    }
}

/// The shared ledger of the node whose `hsm.toml` is `config`; `None` when its counters
/// are the one-node redb store (the files are then the whole key store).
pub fn of_node(config: &Path) -> Result<Option<PgLedger>, KeysError> {
    let c = HsmConfig::load(config).map_err(KeysError::Invalid)?;
    let CounterBackend::Postgres { url, password_file } = c.counters else {
        return Ok(None);
    };
    let password = crate::hsm::server::counters_password(password_file.as_deref())
        .map_err(KeysError::Invalid)?;
    let ledger = PgLedger::open(&url, password.as_deref().map(String::as_str))?;
    Ok(Some(ledger))
}

/// Makes one change on the ledger's newest generation: `change` edits the store and
/// names the audit event; the event is appended, the generation written, and then the
/// node's files (`key_store`, `audit_log`) rewritten with it. The files must hold a
/// chain the ledger's extends (this node's, not another's or an older one).
pub fn change<T>(
    ledger: &PgLedger,
    lmk: &Lmk,
    key_store: &Path,
    audit_log: &Path,
    change: impl FnOnce(&mut KeyStore) -> Result<(T, AuditEvent), KeysError>,
) -> Result<T, KeysError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| KeysError::Io(format!("{}: {e}", p.display())))
    };
    let local = ledger::verify(&read(key_store)?, &read(audit_log)?, lmk)?;
    let (value, store_text, audit_text) =
        ledger.change::<_, KeysError>(lmk, local.head.as_ref(), |fresh, _newer| {
            let mut store = fresh.store;
            let (value, event) = change(&mut store)?;
            let mut text = fresh.audit_text;
            let mut head = fresh.head;
            ledger::append_line(lmk, &mut store, &mut text, &mut head, event)?;
            let store_text = store.to_text(lmk)?;
            Ok(((value, store_text.clone(), text.clone()), store_text, text))
        })?;
    // Committed: the daemons adopt it from the ledger whatever happens to the files.
    if let Err(e) = ledger::write_files(key_store, audit_log, &store_text, &audit_text) {
        eprintln!(
            "warning: the change is in the shared key ledger, but this node's files were not \
             refreshed ({e}); its daemon rewrites them when it adopts the change"
        );
    }
    Ok(value)
}
