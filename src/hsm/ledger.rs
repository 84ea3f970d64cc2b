//! The key ledger a pair of daemons shares: the key store document (the MACed file of
//! TR-31 blocks, byte for byte as on disk: never anything clear) and the audit log, kept
//! together in the PostgreSQL database of the shared counter store
//! ([`super::ledger_pg`]). Every key change made through either daemon is written
//! there under a row lock, so the audit chain stays one chain; each daemon polls for a
//! newer generation (and looks at once on SIGHUP) and adopts it only after the checks of
//! a file load (store MAC, format, every block, the chain up to the store's head) and
//! only when its chain extends the one the daemon holds (no rollback, no fork). The
//! local `key_store` and `audit_log` files stay the one-node store, the seed of the
//! shared one, and a copy of the last generation adopted. Design: `docs/pair.md`.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::keyring::KeyRing;
use super::state::Shared;
use crate::keys::audit::{self, AuditEvent, AuditHead, AuditLine};
use crate::keys::store::write_atomic;
use crate::keys::{KeyStore, KeysError, Lmk, Operation};

/// How often each daemon looks for a newer generation.
pub const POLL: Duration = Duration::from_secs(2);

/// What can go wrong with the shared ledger. Messages never hold key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The database cannot be reached or a statement failed.
    #[error("the shared key ledger is unavailable: {0}")]
    Unavailable(String),
    /// A document failed the checks of a file load, or does not extend the chain held.
    #[error("the shared key ledger's document is refused: {0}")]
    Refused(String),
}

/// A verified key store and audit log, with the texts they were read from.
#[derive(Debug)]
pub struct Snapshot {
    /// The key store (blocks checked and unwrapped).
    pub store: KeyStore,
    /// Its text, as stored.
    pub store_text: String,
    /// The audit log's text, as stored.
    pub audit_text: String,
    /// The last line of the audit log.
    pub head: Option<AuditHead>,
}

/// Checks a key store document and audit log as a file load does: the store's MAC and
/// format, every block's MAC, the chain of the log, and the store's head on that chain.
pub fn verify(store_text: &str, audit_text: &str, lmk: &Lmk) -> Result<Snapshot, KeysError> {
    let store = KeyStore::from_text(store_text, lmk)?;
    let lines = audit::verified_text_lines(audit_text, lmk, store.audit_head())?;
    Ok(Snapshot {
        store,
        store_text: store_text.to_owned(),
        audit_text: audit_text.to_owned(),
        head: last_head(&lines),
    })
}

fn last_head(lines: &[AuditLine]) -> Option<AuditHead> {
    lines.last().map(|l| AuditHead {
        seq: l.seq,
        mac: l.mac.clone(),
    })
}

/// Whether the chain whose lines are `audit_text` contains `head` (a chain always
/// contains the empty one). Lines are compared by MAC, which covers every line before.
pub fn contains(audit_text: &str, head: Option<&AuditHead>) -> bool {
    let Some(head) = head else { return true };
    let Ok(n) = usize::try_from(head.seq) else {
        return false;
    };
    audit_text
        .lines()
        .nth(n.saturating_sub(1))
        .filter(|_| n > 0)
        .and_then(|raw| serde_json::from_str::<AuditLine>(raw).ok())
        .is_some_and(|l| {
            l.seq == head.seq && crate::crypto::ct_eq(l.mac.as_bytes(), head.mac.as_bytes())
        })
}

/// What a starting daemon does with its local files and the database's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The database holds none: the local files seed it.
    Seed,
    /// Both hold the same chain.
    Same,
    /// The database's chain extends the local one: use it (and refresh the files).
    Adopt,
    /// The local chain extends the database's (`cofre keys` run on this node's files
    /// while it was stopped): write the local files to the database.
    Push,
}

/// Decides how a starting daemon's local ledger and the shared one relate. Two chains
/// neither of which extends the other are refused: one would be lost.
pub fn reconcile(local: &Snapshot, shared: Option<&Snapshot>) -> Result<Start, LedgerError> {
    let Some(shared) = shared else {
        return Ok(Start::Seed);
    };
    if local.head == shared.head {
        Ok(Start::Same)
    } else if contains(&shared.audit_text, local.head.as_ref()) {
        Ok(Start::Adopt)
    } else if contains(&local.audit_text, shared.head.as_ref()) {
        Ok(Start::Push)
    } else {
        Err(LedgerError::Refused(format!(
            "the local audit log (line {}) and the shared one (line {}) have forked: \
             copy the key store and audit log of the node whose chain is kept",
            local.head.as_ref().map_or(0, |h| h.seq),
            shared.head.as_ref().map_or(0, |h| h.seq),
        )))
    }
}

/// The key cache for a store, refused if it lacks the keys the configuration names.
pub fn ring_for(shared: &Shared, store: &KeyStore) -> Result<KeyRing, String> {
    let ring = KeyRing::from_store(store).map_err(|e| e.to_string())?;
    let c = &shared.config;
    ring.active(&c.token_key, Operation::Tokenise)
        .map_err(|e| format!("token_key: {e}"))?;
    ring.active(&c.lookup_key, Operation::LookupToken)
        .map_err(|e| format!("lookup_key: {e}"))?;
    Ok(ring)
}

/// Writes the local copy of a generation (the files a restart or a one-node move reads).
pub fn write_local(shared: &Shared, store_text: &str, audit_text: &str) {
    let c = &shared.config;
    if let Err(e) = write_files(&c.key_store, &c.audit_log, store_text, audit_text) {
        tracing::warn!(error = %e, "could not refresh the local copy of the key ledger");
    }
}

/// Writes a generation to a key store file and an audit log file, the log first: a
/// store whose head is not in the log would not load.
pub fn write_files(
    key_store: &Path,
    audit_log: &Path,
    store_text: &str,
    audit_text: &str,
) -> Result<(), KeysError> {
    write_atomic(audit_log, audit_text.as_bytes())
        .and_then(|()| write_atomic(key_store, store_text.as_bytes()))
}

/// Appends `event` to the audit log text of a generation being built, whose last line
/// is `head`, and records the new head in `head` and in `store`.
pub fn append_line(
    lmk: &Lmk,
    store: &mut KeyStore,
    text: &mut String,
    head: &mut Option<AuditHead>,
    event: AuditEvent,
) -> Result<(), KeysError> {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let line = audit::next_line(lmk, head.as_ref(), event, time)?;
    let raw = serde_json::to_string(&line).map_err(|e| KeysError::Audit(e.to_string()))?;
    text.push_str(&raw);
    text.push('\n');
    let new_head = AuditHead {
        seq: line.seq,
        mac: line.mac,
    };
    store.set_audit_head(new_head.clone());
    *head = Some(new_head);
    Ok(())
}

/// Looks once for a newer generation and adopts it (the poll, and SIGHUP).
pub fn pull_once(shared: &Shared) {
    let Some(ledger) = &shared.ledger else { return };
    let mut store = shared.lock_store();
    let held = store.audit_head().cloned();
    let pulled = ledger.pull(&shared.lmk, held.as_ref());
    let answered = !matches!(pulled, Err(LedgerError::Unavailable(_)));
    let changed = ledger.reachable(answered);
    if changed && answered {
        tracing::info!("key ledger reachable again");
    }
    match pulled {
        Ok(None) => {}
        Ok(Some((generation, snapshot))) => match ring_for(shared, &snapshot.store) {
            Ok(ring) => {
                write_local(shared, &snapshot.store_text, &snapshot.audit_text);
                *store = snapshot.store;
                ledger.adopted(generation);
                shared.set_ring(ring);
                tracing::info!(generation, "adopted a new key store generation");
            }
            Err(e) => {
                ledger.refused(generation);
                tracing::error!(generation, error = %e, "shared key store generation refused; keeping the previous keys");
            }
        },
        Err(LedgerError::Refused(e)) => {
            tracing::error!(error = %e, "shared key store refused; keeping the previous keys");
        }
        Err(e @ LedgerError::Unavailable(_)) => {
            // Once per outage: the poll goes on every POLL.
            if changed {
                tracing::warn!(error = %e, "cannot look for key changes; keeping the current keys");
            }
        }
    }
}

/// Starts the thread that polls the ledger every [`POLL`]; a message on the returned
/// channel makes it look at once (SIGHUP). It ends with the daemon's state.
pub fn spawn_poller(shared: &Arc<Shared>) -> Option<std::sync::mpsc::Sender<()>> {
    shared.ledger.as_ref()?;
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("cofre-key-ledger".into())
        .spawn(move || {
            loop {
                match rx.recv_timeout(POLL) {
                    Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let Some(shared) = weak.upgrade() else { return };
                pull_once(&shared);
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the key ledger poller");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lmk() -> Lmk {
        use crate::keys::lmk::Component;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(20);
        Lmk::from_components(&[Component::random(&mut rng), Component::random(&mut rng)]).unwrap()
    }

    /// A chain of `n` lines and a store recording its head.
    fn snapshot(lmk: &Lmk, lines: &[&str]) -> Snapshot {
        let mut text = String::new();
        let mut head = None;
        for op in lines {
            let event = AuditEvent {
                who: "op".into(),
                op: (*op).into(),
                key_id: "*".into(),
                version: None,
                kcv: None,
                counter_store: None,
            };
            let line = audit::next_line(lmk, head.as_ref(), event, "t".into()).unwrap();
            text.push_str(&serde_json::to_string(&line).unwrap());
            text.push('\n');
            head = Some(AuditHead {
                seq: line.seq,
                mac: line.mac,
            });
        }
        let mut store = KeyStore::new(lmk);
        if let Some(h) = head {
            store.set_audit_head(h);
        }
        verify(&store.to_text(lmk).unwrap(), &text, lmk).unwrap()
    }

    #[test]
    fn start_decisions_follow_the_chains() {
        let lmk = lmk();
        let one = snapshot(&lmk, &["a"]);
        let two = snapshot(&lmk, &["a", "b"]);
        let fork = snapshot(&lmk, &["a", "c"]);
        assert_eq!(reconcile(&one, None), Ok(Start::Seed));
        assert_eq!(reconcile(&two, Some(&two)), Ok(Start::Same));
        assert_eq!(reconcile(&one, Some(&two)), Ok(Start::Adopt));
        assert_eq!(reconcile(&two, Some(&one)), Ok(Start::Push));
        assert!(matches!(
            reconcile(&two, Some(&fork)),
            Err(LedgerError::Refused(_))
        ));
        assert!(contains(&two.audit_text, None));
        assert!(!contains("", one.head.as_ref()));
        assert!(!contains("not json\n", one.head.as_ref()));
    }

    #[test]
    fn a_tampered_document_or_log_is_refused() {
        let lmk = lmk();
        let s = snapshot(&lmk, &["a", "b"]);
        let edited = s.store_text.replacen("\"format\"", "\"formaT\"", 1);
        assert!(verify(&edited, &s.audit_text, &lmk).is_err());
        let cut: String = s
            .audit_text
            .lines()
            .take(1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(verify(&s.store_text, &cut, &lmk).is_err());
        assert!(verify(&s.store_text, &s.audit_text, &lmk).is_ok());
    }
}
