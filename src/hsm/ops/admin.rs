//! Key administration over the protocol (security-officer role): list, generate,
//! import, export, rotate, retire. Requests are parsed (and every field checked) like
//! any other, into owned values, because they run on a blocking thread: each change is
//! recorded in the audit log (with the caller's certificate identity) and written to
//! the key store atomically before the response is sent; then the key cache is rebuilt.

use std::time::SystemTime;

use crate::keys::audit::{self, AuditEvent};
use crate::keys::store::{KeyRecord, NewKey, check_id, mac_length};
use crate::keys::{KeyAlgorithm, KeyKind, KeyStore, KeysError, Tr31Import};
use crate::protocol::{Fields, FieldsWriter, Status, Tag};

use super::super::keyring::KeyRing;
use super::super::ledger;
use super::super::state::Shared;
use super::{OpError, OpResult, fields};

/// A key administration request, owned (it runs off the connection's task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// key.list.
    List,
    /// key.generate.
    Generate {
        /// New key id.
        id: String,
        /// Kind.
        kind: KeyKind,
        /// Algorithm (the kind's first when not given).
        algorithm: KeyAlgorithm,
        /// Length in bytes (the kind's default for the algorithm when not given).
        length: usize,
        /// Exportability (the kind's default when not given).
        exportable: Option<bool>,
        /// MAC keys: the shortest MAC verification accepts.
        mac_min_length: Option<u8>,
    },
    /// key.import.
    Import {
        /// New key id.
        id: String,
        /// Kind, or taken from the block's header.
        kind: Option<KeyKind>,
        /// KEK id.
        kek: String,
        /// The TR-31 block.
        block: String,
        /// MAC keys: the shortest MAC verification accepts.
        mac_min_length: Option<u8>,
    },
    /// key.export.
    Export {
        /// Key id.
        id: String,
        /// KEK id.
        kek: String,
        /// Version (the active one when not given).
        version: Option<u32>,
    },
    /// key.rotate.
    Rotate {
        /// Key id.
        id: String,
    },
    /// key.retire.
    Retire {
        /// Key id.
        id: String,
        /// Version.
        version: u32,
    },
}

/// The tags of each administrative request.
pub mod tags {
    use crate::protocol::Tag;
    /// key.list.
    pub const LIST: &[Tag] = &[];
    /// key.generate.
    pub const GENERATE: &[Tag] = &[
        Tag::Key,
        Tag::Kind,
        Tag::Algorithm,
        Tag::KeyLength,
        Tag::Exportable,
        Tag::MacMinLength,
    ];
    /// key.import.
    pub const IMPORT: &[Tag] = &[
        Tag::Key,
        Tag::Kind,
        Tag::Kek,
        Tag::KeyBlock,
        Tag::MacMinLength,
    ];
    /// key.export.
    pub const EXPORT: &[Tag] = &[Tag::Key, Tag::Kek, Tag::KeyVersion];
    /// key.rotate.
    pub const ROTATE: &[Tag] = &[Tag::Key];
    /// key.retire.
    pub const RETIRE: &[Tag] = &[Tag::Key, Tag::KeyVersion];
}

fn new_id(f: &Fields<'_>) -> Result<String, OpError> {
    let id = fields::key_id(f, Tag::Key)?;
    check_id(id).map_err(|e| OpError::from(e).at(Tag::Key))?;
    Ok(id.to_owned())
}

fn kind(f: &Fields<'_>) -> Result<Option<KeyKind>, OpError> {
    f.str(Tag::Kind)?
        .map(|k| {
            k.parse()
                .map_err(|e: KeysError| OpError::field(Tag::Kind, e.to_string()))
        })
        .transpose()
}

fn mac_min_length(
    f: &Fields<'_>,
    kind: Option<KeyKind>,
    alg: Option<KeyAlgorithm>,
) -> Result<Option<u8>, OpError> {
    let Some(n) = f.u8(Tag::MacMinLength)? else {
        return Ok(None);
    };
    let refuse = |why: String| OpError::field(Tag::MacMinLength, why);
    if kind.is_some_and(|k| k != KeyKind::Mac) {
        return Err(refuse("mac_min_length is for MAC keys".into()));
    }
    let full = alg.map_or(32, mac_length);
    if !(4..=full).contains(&n) {
        return Err(refuse(format!("mac_min_length must be 4 to {full} bytes")));
    }
    Ok(Some(n))
}

impl AdminRequest {
    /// key.list.
    pub fn list(_: &Fields<'_>) -> Result<Self, OpError> {
        Ok(AdminRequest::List)
    }

    /// key.generate: the id's syntax, the kind, and an algorithm and length the kind
    /// allows (defaults: the kind's first algorithm, the algorithm's first length).
    pub fn generate(f: &Fields<'_>) -> Result<Self, OpError> {
        let id = new_id(f)?;
        let kind = fields::required(kind(f)?, Tag::Kind)?;
        let algorithm = match f.str(Tag::Algorithm)? {
            Some(a) => a
                .parse::<KeyAlgorithm>()
                .map_err(|e| OpError::field(Tag::Algorithm, e.to_string()))?,
            None => kind.allowed_algorithms()[0],
        };
        if !kind.allowed_algorithms().contains(&algorithm) {
            return Err(OpError::field(
                Tag::Algorithm,
                format!("a {kind} key cannot be {algorithm}"),
            ));
        }
        let lengths = kind.allowed_lengths(algorithm);
        let length = match f.u8(Tag::KeyLength)? {
            Some(n) => usize::from(n),
            None => lengths[0],
        };
        if !lengths.contains(&length) {
            return Err(OpError::field(
                Tag::KeyLength,
                format!("a {algorithm} {kind} key is {lengths:?} bytes"),
            ));
        }
        Ok(AdminRequest::Generate {
            mac_min_length: mac_min_length(f, Some(kind), Some(algorithm))?,
            id,
            kind,
            algorithm,
            length,
            exportable: f.bool(Tag::Exportable)?,
        })
    }

    /// key.import.
    pub fn import(f: &Fields<'_>) -> Result<Self, OpError> {
        let id = new_id(f)?;
        let kind = kind(f)?;
        Ok(AdminRequest::Import {
            id,
            kek: fields::key_id(f, Tag::Kek)?.to_owned(),
            block: fields::required(f.str(Tag::KeyBlock)?, Tag::KeyBlock)?.to_owned(),
            mac_min_length: mac_min_length(f, kind, None)?,
            kind,
        })
    }

    /// key.export.
    pub fn export(f: &Fields<'_>) -> Result<Self, OpError> {
        Ok(AdminRequest::Export {
            id: fields::key_id(f, Tag::Key)?.to_owned(),
            kek: fields::key_id(f, Tag::Kek)?.to_owned(),
            version: f.u32(Tag::KeyVersion)?,
        })
    }

    /// key.rotate.
    pub fn rotate(f: &Fields<'_>) -> Result<Self, OpError> {
        Ok(AdminRequest::Rotate {
            id: fields::key_id(f, Tag::Key)?.to_owned(),
        })
    }

    /// key.retire.
    pub fn retire(f: &Fields<'_>) -> Result<Self, OpError> {
        Ok(AdminRequest::Retire {
            id: fields::key_id(f, Tag::Key)?.to_owned(),
            version: fields::required(f.u32(Tag::KeyVersion)?, Tag::KeyVersion)?,
        })
    }
}

/// Executes an administrative request for `identity`. With a shared key ledger
/// (`docs/pair.md`) a change is made on its newest generation, under its row lock,
/// and answered only once the ledger has it.
pub fn execute(
    shared: &Shared,
    identity: &str,
    r: &AdminRequest,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let mut store = shared.lock_store();
    if let AdminRequest::List = r {
        let lines: Vec<String> = store.list().iter().map(|r| r.summary()).collect();
        out.str(Tag::Listing, &lines.join("\n"));
        return Ok(());
    }
    // Keep the current store text so a failed write leaves memory as it was.
    let before = store.to_text(&shared.lmk)?;
    let result = match &shared.ledger {
        None => change(shared, &mut store, identity, r, &mut Audit::File),
        Some(ledger) => {
            let held = store.audit_head().cloned();
            let lmk = &shared.lmk;
            ledger
                .change(lmk, held.as_ref(), |fresh, newer| {
                    if newer {
                        *store = fresh.store;
                    }
                    let mut audit = Audit::Text {
                        text: fresh.audit_text,
                        head: fresh.head,
                    };
                    let done = change(shared, &mut store, identity, r, &mut audit)?;
                    let Audit::Text { text, .. } = audit else {
                        return Err(OpError::new(Status::Internal, "audit text lost"));
                    };
                    let store_text = store.to_text(lmk)?;
                    Ok(((done, store_text.clone(), text.clone()), store_text, text))
                })
                .map(|(done, store_text, audit_text)| {
                    ledger::write_local(shared, &store_text, &audit_text);
                    done
                })
        }
    };
    match result {
        Ok(done) => {
            shared.set_ring(KeyRing::from_store(&store)?);
            if let Some(block) = &done.block {
                out.str(Tag::KeyBlock, block);
            }
            if !matches!(r, AdminRequest::Retire { .. }) {
                out.str(Tag::Kcv, &done.record.kcv);
            }
            out.u32(Tag::KeyVersion, done.record.version);
            Ok(())
        }
        Err(e) => {
            *store = KeyStore::from_text(&before, &shared.lmk)?;
            Err(e)
        }
    }
}

/// A change made and recorded: the record it made or touched, and an exported block.
struct Done {
    record: KeyRecord,
    block: Option<String>,
}

/// Where audit lines go: the log file, or the text of a shared ledger's generation.
enum Audit {
    File,
    Text {
        text: String,
        head: Option<audit::AuditHead>,
    },
}

fn change(
    shared: &Shared,
    store: &mut KeyStore,
    identity: &str,
    r: &AdminRequest,
    sink: &mut Audit,
) -> Result<Done, OpError> {
    let lmk = &shared.lmk;
    let now = SystemTime::now();
    let mut rng = rand::rng();
    let (name, record, mac_min) = match r {
        AdminRequest::Generate {
            id,
            kind,
            algorithm,
            length,
            exportable,
            mac_min_length,
        } => {
            let spec = NewKey {
                id: id.clone(),
                kind: *kind,
                algorithm: Some(*algorithm),
                length: Some(*length),
                exportable: *exportable,
            };
            let record = store
                .generate(lmk, &spec, now, &mut rng)
                .map_err(|e| OpError::from(e).at(Tag::Key))?;
            ("generate", record, *mac_min_length)
        }
        AdminRequest::Import {
            id,
            kind,
            kek,
            block,
            mac_min_length,
        } => {
            let request = Tr31Import {
                id,
                kind: *kind,
                kek_id: kek,
                block,
            };
            let record = store
                .import_tr31(lmk, &request, now, &mut rng)
                .map_err(|e| OpError::from(e).at(Tag::KeyBlock))?;
            ("import", record, *mac_min_length)
        }
        AdminRequest::Export { id, kek, version } => {
            let (block, record) = store
                .export_tr31(id, *version, kek, &mut rng)
                .map_err(|e| OpError::from(e).at(Tag::Kek))?;
            record_event(shared, store, identity, "export", &record, sink)?;
            return Ok(Done {
                record,
                block: Some(block),
            });
        }
        AdminRequest::Rotate { id } => ("rotate", store.rotate(lmk, id, now, &mut rng)?, None),
        AdminRequest::Retire { id, version } => ("retire", store.retire(id, *version)?, None),
        AdminRequest::List => {
            return Err(OpError::new(Status::Internal, "not a key change"));
        }
    };
    let mut record = record;
    if mac_min.is_some() {
        record = store
            .set_mac_min_length(&record.id, mac_min)
            .map_err(|e| OpError::from(e).at(Tag::MacMinLength))?;
    }
    record_event(shared, store, identity, name, &record, sink)?;
    if mac_min.is_some() {
        record_event(shared, store, identity, "mac-min-length", &record, sink)?;
    }
    Ok(Done {
        record,
        block: None,
    })
}

/// Audit line first (durable, or in the generation being written), then the store
/// with the new head, as `cofre keys` does.
fn record_event(
    shared: &Shared,
    store: &mut KeyStore,
    identity: &str,
    op: &str,
    record: &KeyRecord,
    sink: &mut Audit,
) -> Result<(), KeysError> {
    let event = AuditEvent {
        who: format!("cert:{identity}"),
        op: op.into(),
        key_id: record.id.clone(),
        version: Some(record.version),
        kcv: Some(record.kcv.clone()),
        counter_store: None,
    };
    let time = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    match sink {
        Audit::File => {
            let head = audit::append(&shared.config.audit_log, &shared.lmk, event, time)?;
            store.set_audit_head(head);
            store.save(&shared.config.key_store, &shared.lmk)
        }
        Audit::Text { text, head } => {
            super::super::ledger::append_line(&shared.lmk, store, text, head, event)
        }
    }
}
