//! The BDK key kind through the key store: generated, imported from components and from
//! TR-31, exported, saved and loaded like every other kind, with TR-31 usage B0 and mode
//! of use X; refused for anything but DUKPT derivation; and, once loaded, the key that
//! deciphers a terminal's PIN block through `crypto::dukpt` (what the daemon will do).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::SystemTime;

use cofre::crypto::cipher::Algorithm;
use cofre::crypto::dukpt::{self, Bdk, KeyType, Ksn};
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock};
use cofre::crypto::{ClearKey, kcv};
use cofre::keys::lmk::Component;
use cofre::keys::store::NewKey;
use cofre::keys::{KeyAlgorithm, KeyKind, KeyStore, KeysError, Lmk, Operation, Tr31Import};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn setup() -> (Lmk, KeyStore, StdRng) {
    let mut rng = StdRng::seed_from_u64(0xB0);
    let lmk =
        Lmk::from_components(&[Component::random(&mut rng), Component::random(&mut rng)]).unwrap();
    let store = KeyStore::new(&lmk);
    (lmk, store, rng)
}

fn new_key(id: &str, kind: KeyKind, alg: KeyAlgorithm, len: usize, exp: Option<bool>) -> NewKey {
    NewKey {
        id: id.into(),
        kind,
        algorithm: Some(alg),
        length: Some(len),
        exportable: exp,
    }
}

fn to_cipher_algorithm(a: KeyAlgorithm) -> Algorithm {
    match a {
        KeyAlgorithm::Tdes => Algorithm::Tdes,
        KeyAlgorithm::Aes => Algorithm::Aes,
        KeyAlgorithm::Hmac => panic!("a BDK is never HMAC"),
    }
}

#[test]
fn bdks_of_every_size_are_stored_as_b0_x_and_only_derive() {
    let (lmk, mut store, mut rng) = setup();
    let now = SystemTime::now();
    for (alg, len) in [
        (KeyAlgorithm::Tdes, 16),
        (KeyAlgorithm::Tdes, 24),
        (KeyAlgorithm::Aes, 16),
        (KeyAlgorithm::Aes, 24),
        (KeyAlgorithm::Aes, 32),
    ] {
        let id = format!("bdk.{alg}.{len}");
        let rec = store
            .generate(
                &lmk,
                &new_key(&id, KeyKind::Bdk, alg, len, None),
                now,
                &mut rng,
            )
            .unwrap();
        // Fixed header: version, length, usage B0, algorithm, mode X, key version, N.
        assert_eq!(&rec.block[5..7], "B0", "{id}");
        assert_eq!(&rec.block[8..9], "X", "{id}");
        assert!(
            !rec.exportable,
            "BDKs stay in the HSM unless generated exportable"
        );
        let loaded = store.active(&id, Operation::DukptDerivation).unwrap();
        assert_eq!(loaded.key.len(), len);
        for op in [
            Operation::PinBlock,
            Operation::Mac,
            Operation::TransportEncrypt,
        ] {
            assert!(
                matches!(store.active(&id, op), Err(KeysError::WrongUsage { .. })),
                "{id} {op}"
            );
        }
    }
    // An HMAC BDK, or an AES BDK of 20 bytes, does not exist.
    assert!(
        store
            .generate(
                &lmk,
                &new_key("bdk.bad", KeyKind::Bdk, KeyAlgorithm::Hmac, 32, None),
                now,
                &mut rng
            )
            .is_err()
    );
    // The store with its BDKs survives a save and load under the LMK.
    let text = store.to_text(&lmk).unwrap();
    let back = KeyStore::from_text(&text, &lmk).unwrap();
    assert_eq!(back.list(), store.list());
}

// The X9.24-1:2009 Annex A BDK entered as two components (the BDK and zeros; KCV 08D7B4),
// exported under a KEK and imported back from TR-31, then used as the daemon will: the
// published A.4.2 PIN block of KSN FFFF9876543210E00001 (PIN 1234, PAN 4012345678909).
#[test]
fn imported_bdk_deciphers_the_published_pin_block() {
    let (lmk, mut store, mut rng) = setup();
    let now = SystemTime::now();
    let spec = new_key("bdk.ansi", KeyKind::Bdk, KeyAlgorithm::Tdes, 16, Some(true));
    let published = ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let rec = store
        .import_components(
            &lmk,
            &spec,
            &[(published, None), (ClearKey::from_array(&[0u8; 16]), None)],
            Some("08D7B4".parse().unwrap()),
            now,
            &mut rng,
        )
        .unwrap();
    assert_eq!((rec.kind, rec.kcv.as_str()), (KeyKind::Bdk, "08D7B4"));

    let kek = new_key("kek.kif", KeyKind::Kek, KeyAlgorithm::Aes, 32, None);
    store.generate(&lmk, &kek, now, &mut rng).unwrap();
    let (block, _) = store
        .export_tr31("bdk.ansi", None, "kek.kif", &mut rng)
        .unwrap();
    assert!(block.starts_with('D') && &block[5..9] == "B0TX", "{block}");
    let import = Tr31Import {
        id: "bdk.ansi.copy",
        kind: None,
        kek_id: "kek.kif",
        block: &block,
    };
    let copy = store.import_tr31(&lmk, &import, now, &mut rng).unwrap();
    assert_eq!((copy.kind, copy.kcv.as_str()), (KeyKind::Bdk, "08D7B4"));

    let loaded = store
        .active("bdk.ansi.copy", Operation::DukptDerivation)
        .unwrap();
    let bdk = Bdk::new(to_cipher_algorithm(loaded.algorithm), &loaded.key).unwrap();
    let ksn = Ksn::from_hex("FFFF9876543210E00001").unwrap();
    let pin = dukpt::decipher_pin(
        &bdk,
        &ksn,
        dukpt::default_pin_key_type(&ksn, Format::Iso0),
        Format::Iso0,
        &PinBlock::from_hex("1B9C1845EB993A7A").unwrap(),
        Some(&Pan::new("4012345678909").unwrap()),
    )
    .unwrap();
    assert_eq!(pin.expose_secret(), "1234");
    // The KCV the store shows is the key's own (nothing else about it is public).
    assert_eq!(
        kcv::kcv(Algorithm::Tdes, &loaded.key).unwrap().to_string(),
        "08D7B4"
    );
}

#[test]
fn a_non_exportable_bdk_is_not_exported() {
    let (lmk, mut store, mut rng) = setup();
    let now = SystemTime::now();
    let kek = new_key("kek.a", KeyKind::Kek, KeyAlgorithm::Aes, 32, None);
    store.generate(&lmk, &kek, now, &mut rng).unwrap();
    let bdk = new_key("bdk.aes", KeyKind::Bdk, KeyAlgorithm::Aes, 32, None);
    store.generate(&lmk, &bdk, now, &mut rng).unwrap();
    assert!(matches!(
        store.export_tr31("bdk.aes", None, "kek.a", &mut rng),
        Err(KeysError::NotExportable(_))
    ));
    // An AES BDK from the store derives AES DUKPT keys (X9.24-3-2017).
    let loaded = store.active("bdk.aes", Operation::DukptDerivation).unwrap();
    let bdk = Bdk::new(Algorithm::Aes, &loaded.key).unwrap();
    let ksn = Ksn::from_hex("123456789012345600000001").unwrap();
    let key = bdk.transaction_key(&ksn).unwrap();
    let dukpt::TransactionKey::Aes(k) = key else {
        panic!("AES key for an AES KSN")
    };
    assert!(
        k.working_key(dukpt::aes::KeyUsage::PinEncryption, KeyType::Aes256)
            .is_ok()
    );
}
