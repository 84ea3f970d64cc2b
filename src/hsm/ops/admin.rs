//! Key administration over the protocol (security-officer role): list, generate,
//! import, export, rotate, retire. Each change is recorded in the audit log (with the
//! caller's certificate identity) and written to the key store atomically before the
//! response is sent; then the key cache is rebuilt. Runs on a blocking thread.

use std::time::SystemTime;

use crate::keys::audit::{self, AuditEvent};
use crate::keys::store::{KeyRecord, NewKey};
use crate::keys::{KeyAlgorithm, KeyKind, KeyStore, KeysError, Tr31Import};
use crate::protocol::{Fields, FieldsWriter, Opcode, Status, Tag};

use super::super::keyring::KeyRing;
use super::super::state::Shared;
use super::{OpError, OpResult};

fn parse_kind(f: &Fields<'_>) -> Result<Option<KeyKind>, OpError> {
    f.str(Tag::Kind)?
        .map(|k| {
            k.parse()
                .map_err(|_| OpError::field(Tag::Kind, "unknown key kind"))
        })
        .transpose()
}

fn parse_algorithm(f: &Fields<'_>) -> Result<Option<KeyAlgorithm>, OpError> {
    f.str(Tag::Algorithm)?
        .map(|a| {
            a.parse()
                .map_err(|_| OpError::field(Tag::Algorithm, "unknown algorithm"))
        })
        .transpose()
}

/// Executes an administrative operation for `identity`.
pub fn execute(
    shared: &Shared,
    identity: &str,
    op: Opcode,
    f: &Fields<'_>,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let mut store = shared.lock_store();
    if op == Opcode::KeyList {
        f.only(&[])?;
        let lines: Vec<String> = store.list().iter().map(|r| r.summary()).collect();
        out.str(Tag::Listing, &lines.join("\n"));
        return Ok(());
    }
    if op == Opcode::KeyExport {
        f.only(&[Tag::Key, Tag::Kek, Tag::KeyVersion])?;
        let (id, kek) = (f.req_str(Tag::Key)?, f.req_str(Tag::Kek)?);
        let (block, record) =
            store.export_tr31(id, f.u32(Tag::KeyVersion)?, kek, &mut rand::rng())?;
        record_event(shared, &mut store, identity, "export", Some(&record), id)?;
        out.str(Tag::KeyBlock, &block)
            .str(Tag::Kcv, &record.kcv)
            .u32(Tag::KeyVersion, record.version);
        return Ok(());
    }
    // Changes: keep the current store text so a failed write leaves memory as on disk.
    let before = store.to_text(&shared.lmk)?;
    let result = change(shared, &mut store, identity, op, f, out);
    if result.is_err() {
        *store = KeyStore::from_text(&before, &shared.lmk)?;
    }
    result
}

fn change(
    shared: &Shared,
    store: &mut KeyStore,
    identity: &str,
    op: Opcode,
    f: &Fields<'_>,
    out: &mut FieldsWriter<'_>,
) -> OpResult {
    let lmk = &shared.lmk;
    let now = SystemTime::now();
    let mut rng = rand::rng();
    let id = f.req_str(Tag::Key)?;
    let (name, record) = match op {
        Opcode::KeyGenerate => {
            f.only(&[
                Tag::Key,
                Tag::Kind,
                Tag::Algorithm,
                Tag::KeyLength,
                Tag::Exportable,
            ])?;
            let kind =
                parse_kind(f)?.ok_or_else(|| OpError::field(Tag::Kind, "kind is missing"))?;
            let spec = NewKey {
                id: id.to_owned(),
                kind,
                algorithm: parse_algorithm(f)?,
                length: f.u8(Tag::KeyLength)?.map(usize::from),
                exportable: f.bool(Tag::Exportable)?,
            };
            ("generate", store.generate(lmk, &spec, now, &mut rng)?)
        }
        Opcode::KeyImport => {
            f.only(&[Tag::Key, Tag::Kind, Tag::Kek, Tag::KeyBlock])?;
            let request = Tr31Import {
                id,
                kind: parse_kind(f)?,
                kek_id: f.req_str(Tag::Kek)?,
                block: f.req_str(Tag::KeyBlock)?,
            };
            ("import", store.import_tr31(lmk, &request, now, &mut rng)?)
        }
        Opcode::KeyRotate => {
            f.only(&[Tag::Key])?;
            ("rotate", store.rotate(lmk, id, now, &mut rng)?)
        }
        Opcode::KeyRetire => {
            f.only(&[Tag::Key, Tag::KeyVersion])?;
            let v = f
                .u32(Tag::KeyVersion)?
                .ok_or_else(|| OpError::field(Tag::KeyVersion, "key_version is missing"))?;
            ("retire", store.retire(id, v)?)
        }
        _ => {
            return Err(OpError::new(
                Status::Internal,
                "not an administrative operation",
            ));
        }
    };
    record_event(shared, store, identity, name, Some(&record), id)?;
    shared.set_ring(KeyRing::from_store(store)?);
    if op != Opcode::KeyRetire {
        out.str(Tag::Kcv, &record.kcv);
    }
    out.u32(Tag::KeyVersion, record.version);
    Ok(())
}

/// Audit line first (durable), then the store with the new head, as `cofre keys` does.
fn record_event(
    shared: &Shared,
    store: &mut KeyStore,
    identity: &str,
    op: &str,
    record: Option<&KeyRecord>,
    key_id: &str,
) -> Result<(), KeysError> {
    let event = AuditEvent {
        who: format!("cert:{identity}"),
        op: op.into(),
        key_id: key_id.into(),
        version: record.map(|r| r.version),
        kcv: record.map(|r| r.kcv.clone()),
        counter_store: None,
    };
    let head = audit::append(
        &shared.config.audit_log,
        &shared.lmk,
        event,
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    )?;
    store.set_audit_head(head);
    store.save(&shared.config.key_store, &shared.lmk)
}
