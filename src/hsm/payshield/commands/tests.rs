#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;
use crate::protocol::Status;

#[test]
fn native_refusals_map_to_documented_error_codes() {
    let code = |s: Status| error_code(&OpError::new(s, "x")).as_str().to_owned();
    assert_eq!(code(Status::VerificationFailed), "01");
    assert_eq!(code(Status::PinLocked), "39");
    assert_eq!(code(Status::BruteForceGuard), "17");
    assert_eq!(code(Status::NotAuthorised), "17");
    assert_eq!(code(Status::UnknownKey), "84");
    assert_eq!(code(Status::WrongKeyUsage), "A6");
    assert_eq!(code(Status::InvalidPinBlock), "20");
    assert_eq!(code(Status::InvalidBlob), "14");
    assert_eq!(code(Status::TranslationNotAllowed), "23");
    assert_eq!(code(Status::StoreUnavailable), "41");
    assert_eq!(code(Status::MalformedField), "15");
    let format = OpError::field(Tag::Format, "x");
    assert_eq!(error_code(&format).as_str(), "23");
    let pan = OpError::field(Tag::Pan, "x");
    assert_eq!(error_code(&pan).as_str(), "22");
}

#[test]
fn commands_refuse_bad_fields_before_any_operation() {
    let ring = Arc::new(KeyRing::default());
    let kbpk = ClearKey::from_array(&[1; 32]);
    let keys = Keys {
        kbpk: &kbpk,
        ring: &ring,
        cache: None,
        shared: None,
    };
    let refused = |command: &[u8; 2], data: &[u8]| match plan(*command, data, &keys) {
        Plan::Refuse { error, .. } => error.as_str().to_owned(),
        Plan::Native { op, .. } => format!("native {op}"),
    };
    assert_eq!(refused(b"NC", b""), "native health");
    assert_eq!(refused(b"NC", b"x"), "15");
    assert_eq!(refused(b"CI", b""), "68");
    // JA: the account number, an optional length 04-12, nothing after it.
    assert_eq!(refused(b"JA", b""), "15");
    assert_eq!(refused(b"JA", b"111111111111"), "native pin.random");
    assert_eq!(refused(b"JA", b"11111111111112"), "native pin.random");
    for bad in [
        &b"11111111111103"[..],
        b"11111111111113",
        b"1111111111110",
        b"11111111111104~",
    ] {
        assert_eq!(refused(b"JA", bad), "15");
    }
    for short in [b"JG", b"JE", b"DG", b"DE"] {
        assert_eq!(refused(short, b""), "15");
    }
    for short in [b"BU", b"A0", b"DA", b"EA"] {
        assert_eq!(refused(short, b""), "15");
    }
    // A0 needs the daemon's state to answer the new key's block: without it, 41.
    assert_eq!(refused(b"A0", b"0FFFS#P0TB00N010109zpk.a"), "41");
    assert_eq!(refused(b"CW", b""), "15");
    assert_eq!(refused(b"CW", b"U0123"), "26");
    // A block under another LMK: authentication failure.
    let mut rng = rand::rng();
    let other = ClearKey::from_array(&[2; 32]);
    let key = ClearKey::from_array(&[3; 16]);
    let block = crate::keys::payshield::wrap(
        &other,
        KeyKind::Cvk,
        crate::keys::KeyAlgorithm::Tdes,
        "cvk.a",
        1,
        &key,
        &mut rng,
    )
    .unwrap();
    let cw = format!("{block}4111111111111111;2812201");
    assert_eq!(refused(b"CW", cw.as_bytes()), "A4");
    // Under this LMK, but naming a key the ring does not hold.
    let block = crate::keys::payshield::wrap(
        &kbpk,
        KeyKind::Cvk,
        crate::keys::KeyAlgorithm::Tdes,
        "cvk.a",
        1,
        &key,
        &mut rng,
    )
    .unwrap();
    let cw = format!("{block}4111111111111111;2812201");
    assert_eq!(refused(b"CW", cw.as_bytes()), "84");
    // EC: every field checked (a format code cofre does not take is 23).
    let ec = format!("{block}{block}2A3D408A1977DDE9991111111111111{}", "9464");
    assert_eq!(refused(b"EC", ec.as_bytes()), "23");
}

/// A ring holding one CVK `cvk.a`, its LMK-derived KBPK, and the CVK's S block.
fn held_cvk() -> (Arc<KeyRing>, ClearKey, String) {
    use crate::keys::lmk::{Component, Lmk, Purpose};
    use crate::keys::store::NewKey;
    let mut rng = rand::rng();
    let lmk =
        Lmk::from_components(&[Component::random(&mut rng), Component::random(&mut rng)]).unwrap();
    let mut store = crate::keys::KeyStore::new(&lmk);
    let spec = NewKey {
        id: "cvk.a".into(),
        kind: KeyKind::Cvk,
        algorithm: None,
        length: None,
        exportable: None,
    };
    store
        .generate(&lmk, &spec, std::time::SystemTime::now(), &mut rng)
        .unwrap();
    let (block, _) = store
        .payshield_block(&lmk, "cvk.a", None, &mut rng)
        .unwrap();
    let ring = Arc::new(KeyRing::from_store(&store).unwrap());
    (ring, lmk.derive(Purpose::PayshieldKeyBlock), block)
}

#[test]
fn a_held_key_resolves_once_per_ring_and_keeps_its_kind_rule() {
    let (ring, kbpk, block) = held_cvk();
    let cache = BlockCache::default();
    let keys = Keys {
        kbpk: &kbpk,
        ring: &ring,
        cache: Some(&cache),
        shared: None,
    };
    assert_eq!(keys.resolve(&block, &[KeyKind::Cvk]).unwrap(), "cvk.a");
    // From the cache now: the same answers, the kind rule included.
    assert_eq!(keys.resolve(&block, &[KeyKind::Cvk]).unwrap(), "cvk.a");
    assert_eq!(
        keys.resolve(&block, &[KeyKind::Zpk]),
        Err(ErrorCode::KEY_USAGE)
    );
    // A new ring without the key (a reload): the cache is not consulted.
    let empty = Arc::new(KeyRing::default());
    let reloaded = Keys {
        kbpk: &kbpk,
        ring: &empty,
        cache: Some(&cache),
        shared: None,
    };
    assert_eq!(
        reloaded.resolve(&block, &[KeyKind::Cvk]),
        Err(ErrorCode::KEY_NOT_HELD)
    );
    // The native request carries the held key's id.
    match plan(
        *b"CW",
        format!("{block}4111111111111111;2812201").as_bytes(),
        &keys,
    ) {
        Plan::Native { op, body, .. } => {
            assert_eq!(op, Opcode::CvvGenerate);
            let f = Fields::parse_strict(&body).unwrap();
            assert_eq!(f.str(Tag::Key).unwrap(), Some("cvk.a"));
            assert_eq!(f.str(Tag::Pan).unwrap(), Some("4111111111111111"));
        }
        other => panic!("{other:?}"),
    }
}
