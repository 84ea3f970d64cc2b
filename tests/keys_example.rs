//! The committed example key set loads with its LMK, and every key in it has exactly the
//! clear value and KCV that `keys-example/README.md` publishes (the table is parsed here,
//! so the document and the store cannot drift apart). The audit log verifies against the
//! store's recorded head.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use cofre::keys::{KeyStore, LmkSource, Operation, audit};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys-example")
}

#[test]
fn example_store_matches_its_readme() {
    let lmk = LmkSource::Components(vec![
        dir().join("lmk/component-1.txt"),
        dir().join("lmk/component-2.txt"),
    ])
    .load()
    .unwrap();
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    assert!(readme.contains(&format!("LMK KCV: **{}**", lmk.kcv())));
    let store = KeyStore::load(&dir().join("keys.json"), &lmk).unwrap();

    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `") && l.matches('|').count() == 7)
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), store.list().len(), "one README row per key");
    for row in rows {
        let [id, kind, _alg, clear, kcv, exportable] = &row[..] else {
            panic!("bad row {row:?}");
        };
        let record = store.version(id, 1).unwrap();
        assert_eq!(record.kind.to_string(), *kind, "{id}");
        assert_eq!(record.kcv, *kcv, "{id}");
        assert_eq!(record.exportable, exportable == "yes", "{id}");
        // The one operation each kind allows (a wrong use is refused: checked in store tests).
        let loaded = [
            Operation::PinBlock,
            Operation::PinVerification,
            Operation::CardVerification,
            Operation::DynamicCvv2,
            Operation::Tokenise,
            Operation::LookupToken,
            Operation::Mac,
            Operation::KeyWrap,
            Operation::TransportEncrypt,
            Operation::PinDelivery,
            Operation::DukptDerivation,
        ]
        .into_iter()
        .find_map(|op| store.for_verification(id, op).ok())
        .unwrap();
        assert_eq!(
            hex::encode_upper(loaded[0].key.expose_secret()),
            *clear,
            "{id}"
        );
    }
    assert_eq!(
        audit::verify(&dir().join("audit.log"), &lmk, store.audit_head()).unwrap(),
        store.list().len() as u64 + 1
    );
}
