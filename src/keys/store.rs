//! The key store: one file holding every working key as a TR-31 version D key block under
//! a key-block protection key derived from the LMK, with clear metadata, and a MAC over
//! the whole file under another LMK-derived key.
//!
//! File format (`cofre-keystore/1`), documented in the README: a JSON object
//! `{"format", "lmk_kcv", "audit_head", "keys": [...]}` followed by one line
//! `mac=<64 hex>`, the HMAC-SHA256 of every byte before that line. Writes are atomic:
//! write a temporary file in the same directory, fsync it, rename it over the old one,
//! fsync the directory.
//!
//! Load checks, in order: the MAC (a tampered file or the wrong LMK is refused before any
//! content is trusted), the format version, then every key block (TR-31 MAC, header usage
//! against the recorded kind, KCV against the recorded KCV).

use std::io::Write;
use std::path::Path;

use rand::CryptoRng;
use serde::{Deserialize, Serialize};

use super::KeysError;
use super::audit::AuditHead;
use super::kind::{KeyAlgorithm, KeyKind, Operation};
use super::lmk::{Lmk, Purpose};
use crate::crypto::cipher::Algorithm;
use crate::crypto::kcv::{Kcv, kcv};
use crate::crypto::mac::hmac_sha256;
use crate::crypto::{ClearKey, ct_eq, tr31};

/// The format tag this code writes and reads.
pub const FORMAT: &str = "cofre-keystore/1";

/// A key version's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Generates and verifies. At most one version of a key is active.
    Active,
    /// Verifies only (the previous version after a rotation).
    VerifyOnly,
    /// Does nothing; kept for the record.
    Retired,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Active => "active",
            Status::VerifyOnly => "verify-only",
            Status::Retired => "retired",
        })
    }
}

/// The clear metadata of one key version, and its key block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Key name, e.g. `pvk.visa.issuer1`.
    pub id: String,
    /// 1, 2, 3... (rotation adds one).
    pub version: u32,
    /// What the key is for.
    pub kind: KeyKind,
    /// Cipher family.
    pub algorithm: KeyAlgorithm,
    /// Life-cycle state.
    pub status: Status,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Key check value.
    pub kcv: String,
    /// Whether it may be exported under a KEK.
    pub exportable: bool,
    /// The key as a TR-31 version D block under the LMK-derived KBPK (not clear material).
    pub block: String,
    /// MAC keys only: the shortest MAC, in bytes, that verification accepts (at least
    /// 4, as ISO 8583 retail MACs carry 4). Absent: the algorithm's full length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_min_length: Option<u8>,
}

#[derive(Serialize, Deserialize)]
struct Body {
    format: String,
    lmk_kcv: String,
    audit_head: Option<AuditHead>,
    keys: Vec<KeyRecord>,
}

/// A key ready for use: record data and clear material.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// Key name.
    pub id: String,
    /// The version this is (responses name it).
    pub version: u32,
    /// Kind.
    pub kind: KeyKind,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// KCV.
    pub kcv: String,
    /// Clear key material.
    pub key: ClearKey,
    /// MAC keys: the shortest MAC verification accepts (`None`: the full length).
    pub mac_min_length: Option<u8>,
}

impl KeyRecord {
    /// One line for listings: `id vN kind algorithm status kcv=… exportable=… created=…`.
    /// Never key material.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} v{} {} {} {} kcv={} exportable={} created={}",
            self.id,
            self.version,
            self.kind,
            self.algorithm,
            self.status,
            self.kcv,
            self.exportable,
            self.created
        );
        if let Some(n) = self.mac_min_length {
            line.push_str(&format!(" mac_min_length={n}"));
        }
        line
    }
}

struct Entry {
    record: KeyRecord,
    key: ClearKey,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Key name (`[a-z0-9][a-z0-9._-]*`, at most 64 characters).
    pub id: String,
    /// Kind.
    pub kind: KeyKind,
    /// Algorithm; `None` takes the kind's first allowed algorithm.
    pub algorithm: Option<KeyAlgorithm>,
    /// Length in bytes; `None` takes the default for the kind and algorithm.
    pub length: Option<usize>,
    /// Exportability; `None` takes the kind's default.
    pub exportable: Option<bool>,
}

impl NewKey {
    /// Version 1 of this new key, with the kind's default exportability unless given.
    fn first_slot(&self, algorithm: KeyAlgorithm) -> Slot<'_> {
        Slot {
            id: &self.id,
            kind: self.kind,
            algorithm,
            exportable: self.exportable.unwrap_or(self.kind.exportable_by_default()),
            version: 1,
        }
    }
}

/// The key store in memory.
pub struct KeyStore {
    lmk_kcv: Kcv,
    audit_head: Option<AuditHead>,
    entries: Vec<Entry>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("lmk_kcv", &self.lmk_kcv)
            .field("keys", &self.entries.len())
            .finish()
    }
}

/// KCV of a stored key: X9.24 for TDES and AES; for HMAC keys (which X9.24 does not
/// cover) the first 3 bytes of HMAC-SHA256 over 16 zero bytes, as documented in README.
pub fn key_kcv(algorithm: KeyAlgorithm, key: &ClearKey) -> Result<Kcv, KeysError> {
    Ok(match algorithm {
        KeyAlgorithm::Tdes => kcv(Algorithm::Tdes, key)?,
        KeyAlgorithm::Aes => kcv(Algorithm::Aes, key)?,
        KeyAlgorithm::Hmac => {
            let m = hmac_sha256(key.expose_secret(), &[0u8; 16]);
            Kcv([m[0], m[1], m[2]])
        }
    })
}

/// Checks a new key id's syntax: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a
/// letter or digit.
pub fn check_id(id: &str) -> Result<(), KeysError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeysError::Invalid(
            "key id must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit"
                .into(),
        ))
    }
}

/// The TR-31 header for a key of this kind (version D in the store; B or D on export).
pub(crate) fn header_for(
    version: char,
    kind: KeyKind,
    algorithm: KeyAlgorithm,
    exportable: bool,
) -> Result<tr31::Header, KeysError> {
    let text = format!(
        "{version}0000{}{}{}00{}0000",
        kind.tr31_usage(algorithm),
        algorithm.tr31_code(),
        kind.tr31_mode(),
        if exportable { 'E' } else { 'N' }
    );
    Ok(tr31::Header::parse(&text)?)
}

fn now_rfc3339(now: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(now).to_string()
}

/// Where a new key version goes: private to the store, so every insertion path checks
/// the same shape rules.
struct Slot<'a> {
    id: &'a str,
    kind: KeyKind,
    algorithm: KeyAlgorithm,
    exportable: bool,
    version: u32,
}

/// A TR-31 import request: the new key id, its kind (or `None` to take it from the block's
/// usage code), the KEK id in this store, and the block.
#[derive(Debug, Clone, Copy)]
pub struct Tr31Import<'a> {
    /// Id for the imported key (must be new).
    pub id: &'a str,
    /// Kind to file it as; `None` maps the block's TR-31 usage.
    pub kind: Option<KeyKind>,
    /// KEK that protects the block.
    pub kek_id: &'a str,
    /// The key block.
    pub block: &'a str,
}

impl KeyStore {
    /// An empty store bound to this LMK.
    pub fn new(lmk: &Lmk) -> Self {
        Self {
            lmk_kcv: lmk.kcv(),
            audit_head: None,
            entries: Vec::new(),
        }
    }

    /// KCV of the LMK the store is under.
    pub fn lmk_kcv(&self) -> Kcv {
        self.lmk_kcv
    }

    /// The audit log head recorded with the store.
    pub fn audit_head(&self) -> Option<&AuditHead> {
        self.audit_head.as_ref()
    }

    /// Records a new audit head (saved with the store).
    pub fn set_audit_head(&mut self, head: AuditHead) {
        self.audit_head = Some(head);
    }

    /// Every key version's metadata, in id then version order.
    pub fn list(&self) -> Vec<&KeyRecord> {
        let mut v: Vec<&KeyRecord> = self.entries.iter().map(|e| &e.record).collect();
        v.sort_by(|a, b| a.id.cmp(&b.id).then(a.version.cmp(&b.version)));
        v
    }

    /// Serialises and MACs the store.
    pub fn to_text(&self, lmk: &Lmk) -> Result<String, KeysError> {
        let body = Body {
            format: FORMAT.into(),
            lmk_kcv: self.lmk_kcv.to_string(),
            audit_head: self.audit_head.clone(),
            keys: self.list().into_iter().cloned().collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&body).map_err(|e| KeysError::Corrupt(e.to_string()))?;
        text.push('\n');
        let mac = hmac_sha256(
            lmk.derive(Purpose::StoreMac).expose_secret(),
            text.as_bytes(),
        );
        text.push_str(&format!("mac={}\n", hex::encode(mac)));
        Ok(text)
    }

    /// Parses, authenticates and unwraps a store.
    pub fn from_text(text: &str, lmk: &Lmk) -> Result<Self, KeysError> {
        let trimmed = text
            .strip_suffix('\n')
            .ok_or_else(|| KeysError::Corrupt("truncated (no final newline)".into()))?;
        let (body_text, mac_line) = trimmed
            .rsplit_once('\n')
            .ok_or_else(|| KeysError::Corrupt("truncated (no MAC line)".into()))?;
        let mac_hex = mac_line
            .strip_prefix("mac=")
            .ok_or_else(|| KeysError::Corrupt("truncated (no MAC line)".into()))?;
        let mac =
            hex::decode(mac_hex).map_err(|_| KeysError::Corrupt("MAC line is not hex".into()))?;
        let signed = &text[..body_text.len() + 1];
        let expected = hmac_sha256(
            lmk.derive(Purpose::StoreMac).expose_secret(),
            signed.as_bytes(),
        );
        if !ct_eq(&expected, &mac) {
            // Only the recorded LMK KCV is read from an unauthenticated file, to help the
            // operator tell "wrong LMK" from "tampered".
            let store_lmk_kcv = serde_json::from_str::<serde_json::Value>(body_text)
                .ok()
                .and_then(|v| v.get("lmk_kcv").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            return Err(KeysError::Tampered {
                lmk_kcv: lmk.kcv().to_string(),
                store_lmk_kcv,
            });
        }
        let body: Body =
            serde_json::from_str(body_text).map_err(|e| KeysError::Corrupt(e.to_string()))?;
        if body.format != FORMAT {
            return Err(KeysError::Format(body.format));
        }
        let kbpk = lmk.derive(Purpose::KeyBlockProtection);
        let entries = body
            .keys
            .into_iter()
            .map(|record| {
                let key = unwrap_record(&kbpk, &record)?;
                Ok(Entry { record, key })
            })
            .collect::<Result<Vec<_>, KeysError>>()?;
        Ok(Self {
            lmk_kcv: lmk.kcv(),
            audit_head: body.audit_head,
            entries,
        })
    }

    /// Loads from a file.
    pub fn load(path: &Path, lmk: &Lmk) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeysError::Io(format!("{}: {e}", path.display())))?;
        Self::from_text(&text, lmk)
    }

    /// Saves atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn save(&self, path: &Path, lmk: &Lmk) -> Result<(), KeysError> {
        let text = self.to_text(lmk)?;
        write_atomic(path, text.as_bytes())
    }

    fn versions(&self, id: &str) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.record.id == id)
    }

    fn loaded(e: &Entry) -> LoadedKey {
        LoadedKey {
            id: e.record.id.clone(),
            version: e.record.version,
            kind: e.record.kind,
            algorithm: e.record.algorithm,
            kcv: e.record.kcv.clone(),
            key: e.key.clone(),
            mac_min_length: e.record.mac_min_length,
        }
    }

    /// Every key version that is not retired, with its status and clear material: what
    /// the daemon expands into its key cache at load.
    pub fn usable_versions(&self) -> Vec<(Status, LoadedKey)> {
        self.entries
            .iter()
            .filter(|e| e.record.status != Status::Retired)
            .map(|e| (e.record.status, Self::loaded(e)))
            .collect()
    }

    /// The active version, for generating: usage-checked.
    pub fn active(&self, id: &str, operation: Operation) -> Result<LoadedKey, KeysError> {
        let mut versions = self.versions(id).peekable();
        let first = versions
            .peek()
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        first.record.kind.check(operation)?;
        self.versions(id)
            .find(|e| e.record.status == Status::Active)
            .map(Self::loaded)
            .ok_or_else(|| KeysError::NoUsableVersion(id.into()))
    }

    /// Versions usable for verifying (active first, then verify-only, newest first).
    pub fn for_verification(
        &self,
        id: &str,
        operation: Operation,
    ) -> Result<Vec<LoadedKey>, KeysError> {
        let mut all: Vec<&Entry> = self.versions(id).collect();
        let first = all
            .first()
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        first.record.kind.check(operation)?;
        all.retain(|e| e.record.status != Status::Retired);
        all.sort_by_key(|e| {
            (
                e.record.status != Status::Active,
                std::cmp::Reverse(e.record.version),
            )
        });
        if all.is_empty() {
            return Err(KeysError::NoUsableVersion(id.into()));
        }
        Ok(all.into_iter().map(Self::loaded).collect())
    }

    /// A specific version (any status), for verification by a named version.
    pub fn version(&self, id: &str, version: u32) -> Result<&KeyRecord, KeysError> {
        self.versions(id)
            .find(|e| e.record.version == version)
            .map(|e| &e.record)
            .ok_or_else(|| KeysError::UnknownKey(format!("{id} version {version}")))
    }

    fn insert(
        &mut self,
        lmk: &Lmk,
        slot: Slot<'_>,
        key: ClearKey,
        now: std::time::SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyRecord, KeysError> {
        let Slot {
            id,
            kind,
            algorithm,
            exportable,
            version,
        } = slot;
        kind.check_shape(algorithm, key.len())?;
        let header = header_for('D', kind, algorithm, exportable)?;
        let block = tr31::wrap(&lmk.derive(Purpose::KeyBlockProtection), &header, &key, rng)?;
        let record = KeyRecord {
            id: id.into(),
            version,
            kind,
            algorithm,
            status: Status::Active,
            created: now_rfc3339(now),
            kcv: key_kcv(algorithm, &key)?.to_string(),
            exportable,
            block,
            mac_min_length: None,
        };
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.record.id == id && e.record.status == Status::Active)
        {
            e.record.status = Status::VerifyOnly;
        }
        self.entries.push(Entry {
            record: record.clone(),
            key,
        });
        Ok(record)
    }

    fn new_id(&self, id: &str) -> Result<(), KeysError> {
        check_id(id)?;
        if self.versions(id).next().is_some() {
            return Err(KeysError::Exists(id.into()));
        }
        Ok(())
    }

    /// Generates a random key as version 1 of a new id.
    pub fn generate(
        &mut self,
        lmk: &Lmk,
        spec: &NewKey,
        now: std::time::SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyRecord, KeysError> {
        self.new_id(&spec.id)?;
        let algorithm = spec.algorithm.unwrap_or(spec.kind.allowed_algorithms()[0]);
        let len = spec.length.unwrap_or_else(|| {
            spec.kind
                .allowed_lengths(algorithm)
                .first()
                .copied()
                .unwrap_or(32)
        });
        spec.kind.check_shape(algorithm, len)?;
        let key = random_key(algorithm, len, rng)?;
        self.insert(lmk, spec.first_slot(algorithm), key, now, rng)
    }

    /// Imports a key from clear components (XOR), each checked against its KCV when one is
    /// given, and the combined key against `expected_kcv`.
    pub fn import_components(
        &mut self,
        lmk: &Lmk,
        spec: &NewKey,
        components: &[(ClearKey, Option<Kcv>)],
        expected_kcv: Option<Kcv>,
        now: std::time::SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyRecord, KeysError> {
        self.new_id(&spec.id)?;
        let algorithm = spec.algorithm.unwrap_or(spec.kind.allowed_algorithms()[0]);
        let first = components
            .first()
            .ok_or_else(|| KeysError::Invalid("no components".into()))?;
        let len = first.0.len();
        let mut combined = zeroize::Zeroizing::new(vec![0u8; len]);
        for (i, (c, expected)) in components.iter().enumerate() {
            if c.len() != len {
                return Err(KeysError::Invalid("components differ in length".into()));
            }
            let got = key_kcv(algorithm, c)?;
            if let Some(e) = expected
                && *e != got
            {
                return Err(KeysError::Invalid(format!(
                    "component {} has KCV {got}, expected {e}",
                    i + 1
                )));
            }
            for (x, y) in combined.iter_mut().zip(c.expose_secret()) {
                *x ^= y;
            }
        }
        let key = ClearKey::from_bytes(&combined)?;
        let got = key_kcv(algorithm, &key)?;
        if let Some(e) = expected_kcv
            && e != got
        {
            return Err(KeysError::Invalid(format!(
                "combined key has KCV {got}, expected {e}"
            )));
        }
        self.insert(lmk, spec.first_slot(algorithm), key, now, rng)
    }

    /// Imports a TR-31 block wrapped under a KEK in this store (any usable KEK version).
    /// The kind comes from `kind`, or from the block's usage code.
    pub fn import_tr31(
        &mut self,
        lmk: &Lmk,
        request: &Tr31Import<'_>,
        now: std::time::SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyRecord, KeysError> {
        let Tr31Import {
            id,
            kind,
            kek_id,
            block,
        } = *request;
        self.new_id(id)?;
        let keks = self.for_verification(kek_id, Operation::KeyWrap)?;
        let mut last_err = None;
        for kek in keks {
            match tr31::unwrap(&kek.key, block) {
                Ok((header, key)) => {
                    let h = header.to_string();
                    let usage = h.get(5..7).unwrap_or_default();
                    let alg_code = h.chars().nth(7).unwrap_or(' ');
                    let mode = h.chars().nth(8).unwrap_or(' ');
                    let exportable = h.chars().nth(11) == Some('E');
                    let refused = |why: String| KeysError::BlockRefused(why);
                    let kind = match kind {
                        Some(k) => k,
                        None => KeyKind::from_tr31(usage, mode).ok_or_else(|| {
                            refused(format!(
                                "usage {usage} with mode {mode} is no cofre key kind; name the kind"
                            ))
                        })?,
                    };
                    let algorithm = KeyAlgorithm::from_tr31_code(alg_code)
                        .ok_or_else(|| refused(format!("algorithm {alg_code} is not supported")))?;
                    if !kind.accepts_tr31(usage, algorithm, mode) {
                        return Err(refused(format!(
                            "usage {usage}, algorithm {alg_code}, mode {mode} do not fit a {kind} key"
                        )));
                    }
                    if let Err(e) = kind.check_shape(algorithm, key.len()) {
                        return Err(refused(e.to_string()));
                    }
                    let slot = Slot {
                        id,
                        kind,
                        algorithm,
                        exportable,
                        version: 1,
                    };
                    return self.insert(lmk, slot, key, now, rng);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .map(KeysError::from)
            .unwrap_or_else(|| KeysError::NoUsableVersion(kek_id.into())))
    }

    /// Exports a key version (default: active) as TR-31 under the active version of a KEK:
    /// version B under a TDES KEK, D under an AES KEK. The exported block is marked
    /// non-exportable (`N`): the receiver should not pass it on.
    pub fn export_tr31(
        &self,
        id: &str,
        version: Option<u32>,
        kek_id: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<(String, KeyRecord), KeysError> {
        let kek = self.active(kek_id, Operation::KeyWrap)?;
        let entry = self
            .versions(id)
            .find(|e| version.map_or(e.record.status == Status::Active, |v| e.record.version == v))
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        if !entry.record.exportable {
            return Err(KeysError::NotExportable(id.into()));
        }
        if entry.record.status == Status::Retired {
            return Err(KeysError::NoUsableVersion(id.into()));
        }
        let tr31_version = match kek.algorithm {
            KeyAlgorithm::Tdes if entry.record.algorithm == KeyAlgorithm::Tdes => 'B',
            KeyAlgorithm::Tdes => {
                return Err(KeysError::Invalid(
                    "a TDES KEK cannot protect a stronger key; use an AES KEK".into(),
                ));
            }
            _ => 'D',
        };
        let header = header_for(
            tr31_version,
            entry.record.kind,
            entry.record.algorithm,
            false,
        )?;
        let block = tr31::wrap(&kek.key, &header, &entry.key, rng)?;
        Ok((block, entry.record.clone()))
    }

    /// A key version (default: active) as a payShield key block under the LMK
    /// ([`super::payshield`]). Not an export: the block opens only under this LMK, so the
    /// exportable flag does not apply; a retired version is refused.
    pub fn payshield_block(
        &self,
        lmk: &Lmk,
        id: &str,
        version: Option<u32>,
        rng: &mut impl CryptoRng,
    ) -> Result<(String, KeyRecord), KeysError> {
        let entry = self
            .versions(id)
            .find(|e| version.map_or(e.record.status == Status::Active, |v| e.record.version == v))
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        if entry.record.status == Status::Retired {
            return Err(KeysError::NoUsableVersion(id.into()));
        }
        let r = &entry.record;
        let kbpk = lmk.derive(super::lmk::Purpose::PayshieldKeyBlock);
        let block =
            super::payshield::wrap(&kbpk, r.kind, r.algorithm, id, r.version, &entry.key, rng)?;
        Ok((block, r.clone()))
    }

    /// Adds a new random version; the old active version becomes verify-only.
    pub fn rotate(
        &mut self,
        lmk: &Lmk,
        id: &str,
        now: std::time::SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyRecord, KeysError> {
        let latest = self
            .versions(id)
            .max_by_key(|e| e.record.version)
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        let (kind, algorithm, len, exportable, version) = (
            latest.record.kind,
            latest.record.algorithm,
            latest.key.len(),
            latest.record.exportable,
            latest.record.version + 1,
        );
        let mac_min_length = latest.record.mac_min_length;
        let key = random_key(algorithm, len, rng)?;
        let slot = Slot {
            id,
            kind,
            algorithm,
            exportable,
            version,
        };
        let mut record = self.insert(lmk, slot, key, now, rng)?;
        record.mac_min_length = mac_min_length;
        if let Some(e) = self.entries.last_mut() {
            e.record.mac_min_length = mac_min_length;
        }
        Ok(record)
    }

    /// Sets the shortest MAC a MAC key's verification accepts, on every version of it:
    /// at least 4 bytes and at most the algorithm's full length (8 for the retail MAC, 16
    /// for AES-CMAC, 32 for HMAC-SHA256); `None` restores the full length.
    pub fn set_mac_min_length(
        &mut self,
        id: &str,
        min: Option<u8>,
    ) -> Result<KeyRecord, KeysError> {
        let first = self
            .versions(id)
            .next()
            .ok_or_else(|| KeysError::UnknownKey(id.into()))?;
        first.record.kind.check(Operation::Mac)?;
        let full = mac_length(first.record.algorithm);
        if let Some(n) = min
            && !(4..=full).contains(&n)
        {
            return Err(KeysError::Invalid(format!(
                "a MAC's minimum length is 4 to {full} bytes for a {} MAC key",
                first.record.algorithm
            )));
        }
        let mut last = None;
        for e in self.entries.iter_mut().filter(|e| e.record.id == id) {
            e.record.mac_min_length = min;
            last = Some(e.record.clone());
        }
        last.ok_or_else(|| KeysError::UnknownKey(id.into()))
    }

    /// Retires a version: it no longer generates or verifies.
    pub fn retire(&mut self, id: &str, version: u32) -> Result<KeyRecord, KeysError> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.record.id == id && e.record.version == version)
            .ok_or_else(|| KeysError::UnknownKey(format!("{id} version {version}")))?;
        e.record.status = Status::Retired;
        Ok(e.record.clone())
    }

    /// Re-wraps every key block under a new LMK. KCVs do not change; the caller shows both
    /// LMK KCVs before saving.
    pub fn rewrap(&self, new_lmk: &Lmk, rng: &mut impl CryptoRng) -> Result<KeyStore, KeysError> {
        let kbpk = new_lmk.derive(Purpose::KeyBlockProtection);
        let entries = self
            .entries
            .iter()
            .map(|e| {
                let header =
                    header_for('D', e.record.kind, e.record.algorithm, e.record.exportable)?;
                let block = tr31::wrap(&kbpk, &header, &e.key, rng)?;
                Ok(Entry {
                    record: KeyRecord {
                        block,
                        ..e.record.clone()
                    },
                    key: e.key.clone(),
                })
            })
            .collect::<Result<Vec<_>, KeysError>>()?;
        Ok(KeyStore {
            lmk_kcv: new_lmk.kcv(),
            audit_head: self.audit_head.clone(),
            entries,
        })
    }
}

/// The full MAC length of a MAC key's algorithm, in bytes: ISO 9797-1 algorithm 3 (TDES)
/// 8, AES-CMAC 16, HMAC-SHA256 32.
pub fn mac_length(algorithm: KeyAlgorithm) -> u8 {
    match algorithm {
        KeyAlgorithm::Tdes => 8,
        KeyAlgorithm::Aes => 16,
        KeyAlgorithm::Hmac => 32,
    }
}

fn unwrap_record(kbpk: &ClearKey, record: &KeyRecord) -> Result<ClearKey, KeysError> {
    let bad = |why: &str| {
        KeysError::Corrupt(format!(
            "key {} version {}: {why}",
            record.id, record.version
        ))
    };
    let (header, key) = tr31::unwrap(kbpk, &record.block).map_err(|e| bad(&e.to_string()))?;
    let h = header.to_string();
    if h.get(5..7) != Some(record.kind.tr31_usage(record.algorithm)) {
        return Err(bad("key block usage does not match the recorded kind"));
    }
    if key_kcv(record.algorithm, &key)?.to_string() != record.kcv {
        return Err(bad("key does not match the recorded KCV"));
    }
    Ok(key)
}

fn random_key(
    algorithm: KeyAlgorithm,
    len: usize,
    rng: &mut impl CryptoRng,
) -> Result<ClearKey, KeysError> {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; len]);
    rng.fill_bytes(&mut bytes);
    if algorithm == KeyAlgorithm::Tdes {
        crate::crypto::cipher::adjust_parity(&mut bytes);
    }
    Ok(ClearKey::from_bytes(&bytes)?)
}

/// Writes a file atomically and durably, readable by its owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    let io = |e: std::io::Error| KeysError::Io(format!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| KeysError::Io(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // Key stores and component files are for the service user only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
