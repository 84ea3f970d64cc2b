use super::*;

const ALL_OPS: [Operation; 11] = [
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
];

#[test]
fn every_kind_does_exactly_its_own_operation() {
    for kind in KeyKind::ALL {
        let allowed: Vec<_> = ALL_OPS
            .iter()
            .filter(|op| kind.check(**op).is_ok())
            .collect();
        assert_eq!(allowed, vec![&kind.operation()], "{kind}");
        for op in ALL_OPS.iter().filter(|op| **op != kind.operation()) {
            match kind.check(*op) {
                Err(KeysError::WrongUsage { kind: k, operation }) => {
                    assert_eq!((k, operation), (kind, *op))
                }
                other => panic!("{kind} {op}: {other:?}"),
            }
        }
    }
    // The examples security teams ask about first.
    assert!(KeyKind::Pvk.check(Operation::CardVerification).is_err());
    assert!(KeyKind::Cvk.check(Operation::PinBlock).is_err());
    assert!(KeyKind::Kek.check(Operation::Mac).is_err());
    assert!(KeyKind::Kek.check(Operation::TransportEncrypt).is_err());
    // Security codes and PINs travel under keys of different kinds.
    assert!(KeyKind::Transport.check(Operation::PinDelivery).is_err());
    assert!(
        KeyKind::PinDelivery
            .check(Operation::TransportEncrypt)
            .is_err()
    );
    assert!(KeyKind::PinDelivery.check(Operation::PinBlock).is_err());
}

#[test]
fn shapes_and_names() {
    assert!(KeyKind::Cvk.check_shape(KeyAlgorithm::Tdes, 16).is_ok());
    assert!(KeyKind::Cvk.check_shape(KeyAlgorithm::Tdes, 24).is_err());
    assert!(KeyKind::Cvk.check_shape(KeyAlgorithm::Aes, 16).is_err());
    assert!(KeyKind::Token.check_shape(KeyAlgorithm::Aes, 32).is_ok());
    assert!(KeyKind::Dcvv2.check_shape(KeyAlgorithm::Hmac, 32).is_ok());
    for kind in KeyKind::ALL {
        assert_eq!(kind.to_string().parse::<KeyKind>().unwrap(), kind);
        for alg in kind.allowed_algorithms() {
            let usage = kind.tr31_usage(*alg);
            assert_eq!(usage.len(), 2);
            assert!(KeyKind::from_tr31_usage(usage).is_some());
        }
    }
    assert!("hsm".parse::<KeyKind>().is_err());
}

// A PIN delivery key enciphers PIN blocks for delivery and nothing else: TR-31 P0
// (PIN encryption) with mode E (encrypt only), TDES (format 0) or AES (format 4),
// exportable so that the gateway that decrypts can receive it.
#[test]
fn pin_delivery_keys_only_deliver_pins() {
    let k = KeyKind::PinDelivery;
    assert_eq!(k.operation(), Operation::PinDelivery);
    assert_eq!(
        k.allowed_algorithms(),
        &[KeyAlgorithm::Tdes, KeyAlgorithm::Aes]
    );
    assert_eq!(
        (k.tr31_usage(KeyAlgorithm::Tdes), k.tr31_mode()),
        ("P0", 'E')
    );
    assert!(k.exportable_by_default());
    assert_eq!("pin-delivery".parse::<KeyKind>().unwrap(), k);
    assert!(k.check_shape(KeyAlgorithm::Tdes, 16).is_ok());
    assert!(k.check_shape(KeyAlgorithm::Hmac, 32).is_err());
}

// What the store writes, it accepts back; and the header alone names the kind.
#[test]
fn tr31_import_rules_accept_what_export_writes_and_nothing_wider() {
    for kind in KeyKind::ALL {
        for alg in kind.allowed_algorithms() {
            let (usage, mode) = (kind.tr31_usage(*alg), kind.tr31_mode());
            assert!(kind.accepts_tr31(usage, *alg, mode), "{kind} {alg}");
            let named = KeyKind::from_tr31(usage, mode).unwrap();
            // zpk and tpk share P0/B: the header names a ZPK, `kind` says tpk.
            assert!(named == kind || (kind, named) == (KeyKind::Tpk, KeyKind::Zpk));
            for other in ['B', 'C', 'D', 'E', 'G', 'N', 'S', 'V', 'X'] {
                if other != mode {
                    assert!(!kind.accepts_tr31(usage, *alg, other), "{kind} {other}");
                }
            }
        }
    }
    assert!(KeyKind::Pvk.accepts_tr31("V1", KeyAlgorithm::Tdes, 'C'));
    assert!(!KeyKind::Pvk.accepts_tr31("C0", KeyAlgorithm::Tdes, 'C'));
    assert!(!KeyKind::Mac.accepts_tr31("M3", KeyAlgorithm::Aes, 'C'));
    assert!(!KeyKind::Token.accepts_tr31("D0", KeyAlgorithm::Tdes, 'B'));
    assert_eq!(KeyKind::from_tr31("D0", 'D'), None);
    assert_eq!(KeyKind::from_tr31("P0", 'D'), Some(KeyKind::Zpk));
    assert_eq!(KeyKind::from_tr31("E0", 'X'), None);
    assert!(KeyKind::Dcvv2.check_shape(KeyAlgorithm::Hmac, 16).is_ok());
    assert!(KeyKind::Lookup.check_shape(KeyAlgorithm::Hmac, 16).is_err());
}

// A BDK derives and does nothing else: the PIN block it protects is always enciphered
// under a key derived from it, never under the BDK (X9.24-1:2009 Annex A,
// X9.24-3-2017). TR-31 usage B0 with mode X (X9.143 table 2 allows nothing else).
#[test]
fn bdk_only_derives() {
    let bdk = KeyKind::Bdk;
    assert!(bdk.check(Operation::DukptDerivation).is_ok());
    for op in [
        Operation::PinBlock,
        Operation::Mac,
        Operation::TransportEncrypt,
        Operation::KeyWrap,
        Operation::Tokenise,
    ] {
        assert!(
            matches!(bdk.check(op), Err(KeysError::WrongUsage { .. })),
            "{op}"
        );
    }
    for kind in KeyKind::ALL.iter().filter(|k| **k != KeyKind::Bdk) {
        assert!(kind.check(Operation::DukptDerivation).is_err(), "{kind}");
    }
    for len in [16, 24] {
        assert!(bdk.check_shape(KeyAlgorithm::Tdes, len).is_ok());
    }
    for len in [16, 24, 32] {
        assert!(bdk.check_shape(KeyAlgorithm::Aes, len).is_ok());
    }
    assert!(bdk.check_shape(KeyAlgorithm::Tdes, 8).is_err());
    assert!(bdk.check_shape(KeyAlgorithm::Aes, 20).is_err());
    assert!(bdk.check_shape(KeyAlgorithm::Hmac, 32).is_err());
    for alg in [KeyAlgorithm::Tdes, KeyAlgorithm::Aes] {
        assert_eq!(bdk.tr31_usage(alg), "B0");
    }
    assert_eq!(bdk.tr31_mode(), 'X');
    assert_eq!(KeyKind::from_tr31_usage("B0"), Some(KeyKind::Bdk));
    assert!(!bdk.exportable_by_default());
    assert_eq!("bdk".parse::<KeyKind>().unwrap(), KeyKind::Bdk);
    // The header every store and export path builds for a BDK parses as TR-31.
    for (alg, code) in [(KeyAlgorithm::Tdes, 'T'), (KeyAlgorithm::Aes, 'A')] {
        let text = format!("D0000B0{code}X00N0000");
        assert_eq!(alg.tr31_code(), code);
        assert!(crate::crypto::tr31::Header::parse(&text).is_ok(), "{text}");
    }
}
