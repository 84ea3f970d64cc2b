//! The key-operation audit log: one JSON object per line, chained by HMAC-SHA256 under an
//! LMK-derived key. Each line carries its sequence number, the previous line's MAC and
//! its own MAC over everything else, so editing, inserting or removing a line breaks the
//! chain. Cutting lines off the end is caught by comparing with the head the key store
//! records (itself under the store MAC).
//!
//! Lines hold ids, versions and KCVs: never key material.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KeysError;
use super::lmk::{Lmk, Purpose};
use crate::crypto::ct_eq;
use crate::crypto::mac::hmac_sha256;

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is recorded about one key operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Who: an operator name, or a client certificate identity.
    pub who: String,
    /// What: `generate`, `import`, `export`, `rotate`, `retire`, `rewrap`, ...
    pub op: String,
    /// The key id (or `*` for whole-store operations).
    pub key_id: String,
    /// The key version affected, if one.
    pub version: Option<u32>,
    /// The affected key's KCV, if one.
    pub kcv: Option<String>,
    /// The identity of the counter store an event creates or resets (`counters-create`,
    /// `counters-reset`); absent from every other line (so older lines keep their MAC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_store: Option<String>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    /// 1, 2, 3, ...
    pub seq: u64,
    /// RFC 3339 UTC time.
    pub time: String,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// MAC of the previous line ([`GENESIS`] for the first).
    pub prev: String,
    /// HMAC-SHA256 over this line serialised with `mac` empty.
    pub mac: String,
}

/// The last line's sequence number and MAC, as the key store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last line.
    pub seq: u64,
    /// Its MAC.
    pub mac: String,
}

fn line_mac(key: &[u8], line: &AuditLine) -> Result<String, KeysError> {
    let mut unsigned = line.clone();
    unsigned.mac = String::new();
    let body = serde_json::to_vec(&unsigned).map_err(|e| KeysError::Audit(e.to_string()))?;
    Ok(hex::encode(hmac_sha256(key, &body)))
}

/// Builds the next line after `head` (pure: time is passed in).
pub fn next_line(
    lmk: &Lmk,
    head: Option<&AuditHead>,
    event: AuditEvent,
    time: String,
) -> Result<AuditLine, KeysError> {
    let key = lmk.derive(Purpose::AuditChain);
    let mut line = AuditLine {
        seq: head.map_or(1, |h| h.seq + 1),
        time,
        event,
        prev: head.map_or_else(|| GENESIS.to_owned(), |h| h.mac.clone()),
        mac: String::new(),
    };
    line.mac = line_mac(key.expose_secret(), &line)?;
    Ok(line)
}

/// Appends one event to the log file (created if missing), fsyncs, and returns the new head.
pub fn append(
    path: &Path,
    lmk: &Lmk,
    event: AuditEvent,
    time: String,
) -> Result<AuditHead, KeysError> {
    let io = |e: std::io::Error| KeysError::Io(format!("{}: {e}", path.display()));
    let head = match std::fs::read_to_string(path) {
        Ok(text) => verify_text(&text, lmk)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let line = next_line(lmk, head.as_ref(), event, time)?;
    let mut text = serde_json::to_string(&line).map_err(|e| KeysError::Audit(e.to_string()))?;
    text.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(AuditHead {
        seq: line.seq,
        mac: line.mac,
    })
}

/// Verifies the whole chain and returns its head (`None` for an empty log). Errors name
/// the first bad line number.
pub fn verify_text(text: &str, lmk: &Lmk) -> Result<Option<AuditHead>, KeysError> {
    Ok(verified_lines_of(text, lmk)?.last().map(|l| AuditHead {
        seq: l.seq,
        mac: l.mac.clone(),
    }))
}

fn verified_lines_of(text: &str, lmk: &Lmk) -> Result<Vec<AuditLine>, KeysError> {
    let key = lmk.derive(Purpose::AuditChain);
    let mut lines: Vec<AuditLine> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line: AuditLine = serde_json::from_str(raw)
            .map_err(|_| KeysError::Audit(format!("line {n} is not an audit record")))?;
        let expected_seq = lines.last().map_or(1, |h| h.seq + 1);
        let expected_prev = lines.last().map_or(GENESIS, |h| h.mac.as_str());
        if line.seq != expected_seq || !ct_eq(line.prev.as_bytes(), expected_prev.as_bytes()) {
            return Err(KeysError::Audit(format!(
                "chain broken at line {n}: a line was inserted or removed before it"
            )));
        }
        let mac = line_mac(key.expose_secret(), &line)?;
        if !ct_eq(mac.as_bytes(), line.mac.as_bytes()) {
            return Err(KeysError::Audit(format!(
                "line {n} was modified (MAC does not verify, or the LMK is wrong)"
            )));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Reads the log, verifies its chain and, if the store's recorded head is given, that no
/// line was cut off the end; returns its lines. A missing or unreadable log is an error.
pub fn verified_lines(
    path: &Path,
    lmk: &Lmk,
    store_head: Option<&AuditHead>,
) -> Result<Vec<AuditLine>, KeysError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeysError::Audit(format!("{}: {e}", path.display())))?;
    verified_text_lines(&text, lmk, store_head)
}

/// [`verified_lines`] on a log's text (the copy a shared key ledger holds).
pub fn verified_text_lines(
    text: &str,
    lmk: &Lmk,
    store_head: Option<&AuditHead>,
) -> Result<Vec<AuditLine>, KeysError> {
    let lines = verified_lines_of(text, lmk)?;
    let seq = lines.last().map_or(0, |l| l.seq);
    if let Some(expected) = store_head {
        // The store's head must be on the chain: if the log is longer (a crash between
        // appending and saving the store), the recorded line must match.
        let at = usize::try_from(expected.seq)
            .ok()
            .and_then(|s| s.checked_sub(1));
        match at.and_then(|i| lines.get(i)) {
            Some(line) if ct_eq(line.mac.as_bytes(), expected.mac.as_bytes()) => {}
            Some(_) => {
                return Err(KeysError::Audit(format!(
                    "line {} differs from the key store's record",
                    expected.seq
                )));
            }
            None => {
                return Err(KeysError::Audit(format!(
                    "the key store records {} lines but the log has {seq}: lines were removed from the end",
                    expected.seq
                )));
            }
        }
    }
    Ok(lines)
}

/// Verifies the log and, if the store's recorded head is given, that no line was cut off
/// the end. Returns the number of lines.
pub fn verify(path: &Path, lmk: &Lmk, store_head: Option<&AuditHead>) -> Result<u64, KeysError> {
    Ok(verified_lines(path, lmk, store_head)?
        .last()
        .map_or(0, |l| l.seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::lmk::Component;
    use rand::SeedableRng;

    fn lmk(seed: u64) -> Lmk {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Lmk::from_components(&[Component::random(&mut rng), Component::random(&mut rng)]).unwrap()
    }

    fn log(lmk: &Lmk, n: u64) -> Vec<String> {
        let mut head = None;
        let mut lines = Vec::new();
        for i in 0..n {
            let ev = AuditEvent {
                who: "alice".into(),
                op: "generate".into(),
                key_id: format!("k{i}"),
                version: Some(1),
                kcv: Some("08D7B4".into()),
                counter_store: None,
            };
            let line =
                next_line(lmk, head.as_ref(), ev, format!("2026-11-24T00:00:0{i}Z")).unwrap();
            head = Some(AuditHead {
                seq: line.seq,
                mac: line.mac.clone(),
            });
            lines.push(serde_json::to_string(&line).unwrap());
        }
        lines
    }

    fn check(lmk: &Lmk, lines: &[String]) -> Result<Option<AuditHead>, KeysError> {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        verify_text(&text, lmk)
    }

    #[test]
    fn intact_chain_verifies() {
        let l = lmk(1);
        assert_eq!(check(&l, &log(&l, 5)).unwrap().unwrap().seq, 5);
        assert!(check(&l, &[]).unwrap().is_none());
    }

    #[test]
    fn edited_inserted_and_removed_lines_are_detected() {
        let l = lmk(2);
        let lines = log(&l, 5);
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("alice", "mallory");
        assert!(
            check(&l, &edited)
                .unwrap_err()
                .to_string()
                .contains("line 3 was modified")
        );
        let mut removed = lines.clone();
        removed.remove(1);
        assert!(
            check(&l, &removed)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        let mut inserted = lines.clone();
        inserted.insert(3, lines[1].clone());
        assert!(
            check(&l, &inserted)
                .unwrap_err()
                .to_string()
                .contains("line 4")
        );
        let mut garbage = lines.clone();
        garbage[0] = "{not json".into();
        assert!(check(&l, &garbage).is_err());
        // Another LMK cannot verify (or forge) the chain.
        assert!(check(&lmk(3), &lines).is_err());
    }

    #[test]
    fn truncation_is_caught_against_the_store_head() {
        let l = lmk(4);
        let dir = std::env::temp_dir().join(format!("cofre-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        let mut head = None;
        for i in 0..3 {
            let ev = AuditEvent {
                who: "bob".into(),
                op: "rotate".into(),
                key_id: "cvk.a".into(),
                version: Some(i + 1),
                kcv: None,
                counter_store: None,
            };
            head = Some(append(&path, &l, ev, "2026-11-24T00:00:00Z".into()).unwrap());
        }
        assert_eq!(verify(&path, &l, head.as_ref()).unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, first_two).unwrap();
        assert!(
            verify(&path, &l, head.as_ref())
                .unwrap_err()
                .to_string()
                .contains("removed from the end")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
