#![allow(clippy::unwrap_used)]
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
    let ring = KeyRing::default();
    let kbpk = ClearKey::from_array(&[1; 32]);
    let keys = Keys {
        kbpk: &kbpk,
        ring: &ring,
    };
    let refused = |command: &[u8; 2], data: &[u8]| match plan(*command, data, &keys) {
        Plan::Refuse { error, .. } => error.as_str().to_owned(),
        Plan::Native { op, .. } => format!("native {op}"),
    };
    assert_eq!(refused(b"NC", b""), "native health");
    assert_eq!(refused(b"NC", b"x"), "15");
    assert_eq!(refused(b"JA", b""), "68");
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
