use super::*;
use crate::keys::lmk::Component;
use rand::SeedableRng;
use std::time::SystemTime;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(11)
}

fn lmk(seed: u64) -> Lmk {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    Lmk::from_components(&[Component::random(&mut r), Component::random(&mut r)]).unwrap()
}

fn spec(id: &str, kind: KeyKind, algorithm: Option<KeyAlgorithm>) -> NewKey {
    NewKey {
        id: id.into(),
        kind,
        algorithm,
        length: None,
        exportable: None,
    }
}

/// A store with one key of every kind (and both algorithms where a kind has two).
fn full_store(l: &Lmk) -> KeyStore {
    let mut s = KeyStore::new(l);
    let mut r = rng();
    for kind in KeyKind::ALL {
        for alg in kind.allowed_algorithms() {
            let id = format!("{kind}.{alg}");
            s.generate(l, &spec(&id, kind, Some(*alg)), SystemTime::now(), &mut r)
                .unwrap();
        }
    }
    s
}

/// Re-signs arbitrary body text with the store MAC, to build files that pass the MAC but
/// break a later rule.
fn sign(l: &Lmk, body: &str) -> String {
    let mac = hmac_sha256(l.derive(Purpose::StoreMac).expose_secret(), body.as_bytes());
    format!("{body}mac={}\n", hex::encode(mac))
}

#[test]
fn save_load_round_trip() {
    let l = lmk(1);
    let s = full_store(&l);
    let text = s.to_text(&l).unwrap();
    let back = KeyStore::from_text(&text, &l).unwrap();
    assert_eq!(back.list(), s.list());
    assert_eq!(back.to_text(&l).unwrap(), text);
    let dir = tempdir();
    let path = dir.join("keys.json");
    s.save(&path, &l).unwrap();
    assert_eq!(KeyStore::load(&path, &l).unwrap().list(), s.list());
    assert!(!dir.join(".keys.json.tmp").exists());
}

#[test]
fn tampering_wrong_lmk_truncation_format_and_unknown_ids_are_clear_errors() {
    let l = lmk(2);
    let s = full_store(&l);
    let text = s.to_text(&l).unwrap();
    // Tampered: change one metadata character.
    let tampered = text.replacen("\"active\"", "\"retired\"", 1);
    match KeyStore::from_text(&tampered, &l) {
        Err(KeysError::Tampered {
            lmk_kcv,
            store_lmk_kcv,
        }) => assert_eq!(lmk_kcv, store_lmk_kcv),
        other => panic!("{other:?}"),
    }
    // Wrong LMK: the message shows both KCVs so the operator sees which LMK is loaded.
    let other = lmk(3);
    let err = KeyStore::from_text(&text, &other).unwrap_err().to_string();
    assert!(
        err.contains(&other.kcv().to_string()) && err.contains(&l.kcv().to_string()),
        "{err}"
    );
    // Truncated anywhere.
    for cut in [0, 10, text.len() / 2, text.len() - 2] {
        assert!(
            KeyStore::from_text(&text[..cut], &l).is_err(),
            "cut at {cut}"
        );
    }
    // A newer format, correctly signed.
    let body = text
        .rsplit_once("mac=")
        .unwrap()
        .0
        .replace(FORMAT, "cofre-keystore/9");
    assert!(matches!(
        KeyStore::from_text(&sign(&l, &body), &l),
        Err(KeysError::Format(_))
    ));
    // A key block swapped between records, correctly signed: the KCV check catches it.
    let list = s.list();
    let (a, b) = (&list[0].block, &list[1].block);
    let swapped = text
        .rsplit_once("mac=")
        .unwrap()
        .0
        .replacen(a.as_str(), "SWAP", 1)
        .replacen(b.as_str(), a, 1)
        .replacen("SWAP", b, 1);
    assert!(matches!(
        KeyStore::from_text(&sign(&l, &swapped), &l),
        Err(KeysError::Corrupt(_))
    ));
    // Unknown key id.
    assert!(matches!(
        s.active("no.such.key", Operation::Mac),
        Err(KeysError::UnknownKey(_))
    ));
    assert!(matches!(
        s.for_verification("no.such.key", Operation::Mac),
        Err(KeysError::UnknownKey(_))
    ));
}

#[test]
fn usage_is_enforced_for_every_kind() {
    let l = lmk(4);
    let s = full_store(&l);
    let ops = [
        Operation::PinBlock,
        Operation::PinVerification,
        Operation::CardVerification,
        Operation::DynamicCvv2,
        Operation::Tokenise,
        Operation::LookupToken,
        Operation::Mac,
        Operation::KeyWrap,
        Operation::TransportEncrypt,
        Operation::DukptDerivation,
    ];
    for record in s.list() {
        for op in ops {
            let r = s.active(&record.id, op);
            if op == record.kind.operation() {
                assert!(r.is_ok(), "{} for {op}", record.id);
            } else {
                assert!(
                    matches!(r, Err(KeysError::WrongUsage { .. })),
                    "{} for {op}",
                    record.id
                );
            }
        }
    }
}

#[test]
fn rotation_old_verifies_new_generates_retired_does_neither() {
    let l = lmk(5);
    let mut s = KeyStore::new(&l);
    let mut r = rng();
    let v1 = s
        .generate(
            &l,
            &spec("cvk.issuer1", KeyKind::Cvk, None),
            SystemTime::now(),
            &mut r,
        )
        .unwrap();
    let v2 = s
        .rotate(&l, "cvk.issuer1", SystemTime::now(), &mut r)
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_ne!(v1.kcv, v2.kcv);
    let active = s
        .active("cvk.issuer1", Operation::CardVerification)
        .unwrap();
    assert_eq!((active.version, active.kcv.as_str()), (2, v2.kcv.as_str()));
    let verify: Vec<u32> = s
        .for_verification("cvk.issuer1", Operation::CardVerification)
        .unwrap()
        .iter()
        .map(|k| k.version)
        .collect();
    assert_eq!(verify, vec![2, 1]);
    assert_eq!(
        s.version("cvk.issuer1", 1).unwrap().status,
        Status::VerifyOnly
    );
    s.retire("cvk.issuer1", 1).unwrap();
    let verify: Vec<u32> = s
        .for_verification("cvk.issuer1", Operation::CardVerification)
        .unwrap()
        .iter()
        .map(|k| k.version)
        .collect();
    assert_eq!(verify, vec![2]);
    s.retire("cvk.issuer1", 2).unwrap();
    assert!(matches!(
        s.active("cvk.issuer1", Operation::CardVerification),
        Err(KeysError::NoUsableVersion(_))
    ));
    assert!(s.retire("cvk.issuer1", 9).is_err());
    // Survives a save/load.
    let back = KeyStore::from_text(&s.to_text(&l).unwrap(), &l).unwrap();
    assert_eq!(back.list(), s.list());
}

#[test]
fn lmk_rewrap_keeps_every_kcv() {
    let old = lmk(6);
    let new = lmk(7);
    let s = full_store(&old);
    let rewrapped = s.rewrap(&new, &mut rng()).unwrap();
    let before: Vec<_> = s
        .list()
        .iter()
        .map(|k| (k.id.clone(), k.version, k.kcv.clone()))
        .collect();
    let text = rewrapped.to_text(&new).unwrap();
    let loaded = KeyStore::from_text(&text, &new).unwrap();
    let after: Vec<_> = loaded
        .list()
        .iter()
        .map(|k| (k.id.clone(), k.version, k.kcv.clone()))
        .collect();
    assert_eq!(before, after);
    assert_eq!(loaded.lmk_kcv(), new.kcv());
    assert!(KeyStore::from_text(&text, &old).is_err());
}

#[test]
fn import_export_components_and_tr31() {
    let l = lmk(8);
    let mut s = KeyStore::new(&l);
    let mut r = rng();
    // Two clear components of the classic example key; KCV 08D7B4 for the XOR.
    let c1 = ClearKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let zero = ClearKey::from_array(&[0u8; 16]);
    let kcv1 = key_kcv(KeyAlgorithm::Tdes, &c1).unwrap();
    let wrong: Kcv = "000000".parse().unwrap();
    let cvk = spec("cvk.imported", KeyKind::Cvk, None);
    assert!(
        s.import_components(
            &l,
            &cvk,
            &[(c1.clone(), Some(wrong)), (zero.clone(), None)],
            None,
            SystemTime::now(),
            &mut r
        )
        .is_err()
    );
    let rec = s
        .import_components(
            &l,
            &cvk,
            &[(c1.clone(), Some(kcv1)), (zero, None)],
            Some("08D7B4".parse().unwrap()),
            SystemTime::now(),
            &mut r,
        )
        .unwrap();
    assert_eq!(rec.kcv, "08D7B4");
    // Export under an AES KEK (version D) and a TDES KEK (version B), import back.
    for (kek, alg) in [
        ("kek.aes", KeyAlgorithm::Aes),
        ("kek.tdes", KeyAlgorithm::Tdes),
    ] {
        s.generate(
            &l,
            &spec(kek, KeyKind::Kek, Some(alg)),
            SystemTime::now(),
            &mut r,
        )
        .unwrap();
        let (block, _) = s.export_tr31("cvk.imported", None, kek, &mut r).unwrap();
        assert!(block.starts_with(if alg == KeyAlgorithm::Aes { "D" } else { "B" }));
        let id = format!("cvk.back.{alg}");
        let back = s
            .import_tr31(
                &l,
                &Tr31Import {
                    id: &id,
                    kind: None,
                    kek_id: kek,
                    block: &block,
                },
                SystemTime::now(),
                &mut r,
            )
            .unwrap();
        assert_eq!(
            (back.kind, back.kcv.as_str(), back.exportable),
            (KeyKind::Cvk, "08D7B4", false)
        );
        // The re-imported copy is marked non-exportable.
        assert!(matches!(
            s.export_tr31(&id, None, kek, &mut r),
            Err(KeysError::NotExportable(_))
        ));
    }
    // Non-exportable by default: token keys; the KEK must really be a KEK.
    s.generate(
        &l,
        &spec("token.a", KeyKind::Token, None),
        SystemTime::now(),
        &mut r,
    )
    .unwrap();
    assert!(matches!(
        s.export_tr31("token.a", None, "kek.aes", &mut r),
        Err(KeysError::NotExportable(_))
    ));
    assert!(matches!(
        s.export_tr31("cvk.imported", None, "token.a", &mut r),
        Err(KeysError::WrongUsage { .. })
    ));
    // An AES key cannot go out under a TDES KEK.
    s.generate(
        &l,
        &spec("zpk.aes", KeyKind::Zpk, Some(KeyAlgorithm::Aes)),
        SystemTime::now(),
        &mut r,
    )
    .unwrap();
    assert!(s.export_tr31("zpk.aes", None, "kek.tdes", &mut r).is_err());
    // Duplicate ids and bad names.
    assert!(
        s.generate(
            &l,
            &spec("zpk.aes", KeyKind::Zpk, None),
            SystemTime::now(),
            &mut r
        )
        .is_err()
    );
    assert!(
        s.generate(
            &l,
            &spec("Bad Name", KeyKind::Zpk, None),
            SystemTime::now(),
            &mut r
        )
        .is_err()
    );
}

#[test]
fn no_key_material_in_debug_or_errors() {
    let l = lmk(9);
    let s = full_store(&l);
    let mut shown = format!("{s:?} {l:?}");
    for record in s.list() {
        let key = s
            .for_verification(&record.id, record.kind.operation())
            .unwrap()
            .remove(0);
        shown.push_str(&format!("{key:?}"));
        let material = hex::encode_upper(key.key.expose_secret());
        assert!(!shown.to_ascii_uppercase().contains(&material[..12]));
    }
    assert!(shown.contains("REDACTED"));
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cofre-store-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

// MAC verification length is a property of the key: recorded on every version, kept by
// rotation, bounded by the algorithm's MAC length, and covered by the store's MAC.
#[test]
fn mac_min_length_is_recorded_on_the_key() {
    let l = lmk(5);
    let (mut s, mut r) = (KeyStore::new(&l), rng());
    s.generate(
        &l,
        &spec("mac.r", KeyKind::Mac, Some(KeyAlgorithm::Tdes)),
        SystemTime::now(),
        &mut r,
    )
    .unwrap();
    assert_eq!(s.version("mac.r", 1).unwrap().mac_min_length, None);
    for bad in [3, 9] {
        assert!(matches!(
            s.set_mac_min_length("mac.r", Some(bad)),
            Err(KeysError::Invalid(_))
        ));
    }
    let rec = s.set_mac_min_length("mac.r", Some(4)).unwrap();
    assert_eq!(rec.mac_min_length, Some(4));
    assert!(rec.summary().ends_with(" mac_min_length=4"));
    let rotated = s.rotate(&l, "mac.r", SystemTime::now(), &mut r).unwrap();
    assert_eq!(rotated.mac_min_length, Some(4));
    let text = s.to_text(&l).unwrap();
    let back = KeyStore::from_text(&text, &l).unwrap();
    assert!(back.list().iter().all(|k| k.mac_min_length == Some(4)));
    assert_eq!(
        back.active("mac.r", Operation::Mac).unwrap().mac_min_length,
        Some(4)
    );
    assert!(
        KeyStore::from_text(
            &text.replace("\"mac_min_length\": 4", "\"mac_min_length\": 5"),
            &l
        )
        .is_err(),
        "the store's MAC covers it"
    );
    s.generate(
        &l,
        &spec("zpk.x", KeyKind::Zpk, None),
        SystemTime::now(),
        &mut r,
    )
    .unwrap();
    assert!(matches!(
        s.set_mac_min_length("zpk.x", Some(4)),
        Err(KeysError::WrongUsage { .. })
    ));
    assert_eq!(
        s.set_mac_min_length("mac.r", None).unwrap().mac_min_length,
        None
    );
}
