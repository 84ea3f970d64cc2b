//! Every daemon operation over real mutual TLS with the example keys, through raw
//! frames. Expected values are computed here with the crypto core on the clear example
//! keys of keys-example/README.md (themselves checked against published vectors and psec).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format, PinBlock};
use cofre::crypto::{ClearKey, Pin, cvv, pvv};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::{Daemon, Raw};

const PAN: &str = "4111111111111111";
const ZPK: &str = "0123456789ABCDEFFEDCBA9876543210";
const ZPK_AES: &str = "00112233445566778899AABBCCDDEEFF";
const PVK: &str = ZPK;
const CVK: &str = ZPK;
const TRANSPORT: &str = "11111111111111112222222222222222";

fn tdes(hex: &str) -> BlockCipher {
    BlockCipher::tdes(&hex::decode(hex).unwrap()).unwrap()
}

fn aes(hex: &str) -> BlockCipher {
    BlockCipher::aes(&hex::decode(hex).unwrap()).unwrap()
}

fn pan() -> Pan {
    Pan::new(PAN).unwrap()
}

fn block(format: Format, key: &BlockCipher, pin: &str) -> Vec<u8> {
    pinblock::encipher(
        format,
        key,
        &Pin::new(pin).unwrap(),
        Some(&pan()),
        &mut rand::rng(),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn pvv_of(pin: &str) -> String {
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap();
    pvv::visa_pvv(&pvk, 1, &Pin::new(pin).unwrap(), &pan())
        .unwrap()
        .to_string()
}

fn verify(c: &mut Raw, key: &str, format: u8, blk: &[u8], pvv: &str) -> daemon::Resp {
    c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, key)
            .u8(Tag::Format, format)
            .bytes(Tag::PinBlock, blk)
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, pvv);
    })
}

#[test]
fn pin_operations() {
    let d = Daemon::start("pin");
    let mut c = d.connect("issuing-host-1");
    let pvv = pvv_of("1234");

    // Verify: formats 0, 1, 3 under a TDES ZPK, 4 under an AES ZPK.
    for f in [Format::Iso0, Format::Iso1, Format::Iso3] {
        let r = verify(
            &mut c,
            "zpk.example",
            f.number(),
            &block(f, &tdes(ZPK), "1234"),
            &pvv,
        );
        assert_eq!(r.status(), Status::Ok, "{f:?}: {}", r.message());
        assert_eq!((r.u32(Tag::KeyVersion), r.u32(Tag::PvkVersion)), (1, 1));
        let r = verify(
            &mut c,
            "zpk.example",
            f.number(),
            &block(f, &tdes(ZPK), "4321"),
            &pvv,
        );
        assert_eq!(r.status(), Status::VerificationFailed);
    }
    let b4 = block(Format::Iso4, &aes(ZPK_AES), "1234");
    assert_eq!(
        verify(&mut c, "zpk.example.aes", 4, &b4, &pvv).status(),
        Status::Ok
    );
    // Format 4 under a TDES key, and a TDES block under the AES key: wrong key usage.
    assert_eq!(
        verify(&mut c, "zpk.example", 4, &b4, &pvv).status(),
        Status::WrongKeyUsage
    );
    // A block under another key deciphers to garbage: invalid PIN block.
    let other = block(Format::Iso0, &tdes(TRANSPORT), "1234");
    let r = verify(&mut c, "zpk.example", 0, &other, &pvv);
    assert!(
        matches!(
            r.status(),
            Status::InvalidPinBlock | Status::VerificationFailed
        ),
        "{:?}",
        r.status()
    );
    // A CVK is not a PIN key; a missing field is named.
    let r = verify(
        &mut c,
        "cvk.example",
        0,
        &block(Format::Iso0, &tdes(ZPK), "1234"),
        &pvv,
    );
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0);
    });
    assert_eq!(r.status(), Status::MalformedField);

    // IBM 3624 offset.
    let pvk = pvv::Pvk::new(&ClearKey::from_hex(PVK).unwrap()).unwrap();
    let params = pvv::Ibm3624Params::default_for(&pan());
    let offset = pvv::ibm3624_offset(&pvk, &Pin::new("98765").unwrap(), &pan(), &params).unwrap();
    let r = c.call(Opcode::PinVerify, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block(Format::Iso0, &tdes(ZPK), "98765"))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Offset, &offset.to_string());
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());

    // Translate 0 -> 4 and check by deciphering with the clear destination key.
    let r = c.call(Opcode::PinTranslate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block(Format::Iso0, &tdes(ZPK), "246813"))
            .str(Tag::DestKey, "zpk.example.aes")
            .u8(Tag::DestFormat, 4);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let out = PinBlock::from_bytes(&r.bytes(Tag::PinBlock)).unwrap();
    let pin = pinblock::decipher(Format::Iso4, &aes(ZPK_AES), &out, Some(&pan())).unwrap();
    assert_eq!(pin.expose_secret(), "246813");
    // The PCI rules, each its own status.
    let translate = |c: &mut Raw, from: Format, to: u8, dest_pan: Option<&str>| {
        c.call(Opcode::PinTranslate, |w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, from.number())
                .bytes(Tag::PinBlock, &block(from, &tdes(ZPK), "1234"))
                .str(Tag::DestKey, "tpk.example")
                .u8(Tag::DestFormat, to);
            if let Some(p) = dest_pan {
                w.str(Tag::DestPan, p);
            }
        })
        .status()
    };
    assert_eq!(
        translate(&mut c, Format::Iso0, 1, None),
        Status::TranslationNotAllowed
    );
    assert_eq!(
        translate(&mut c, Format::Iso3, 1, None),
        Status::TranslationNotAllowed
    );
    assert_eq!(translate(&mut c, Format::Iso1, 0, None), Status::Ok);
    assert_eq!(translate(&mut c, Format::Iso1, 1, None), Status::Ok);
    assert_eq!(translate(&mut c, Format::Iso0, 3, None), Status::Ok);
    assert_eq!(
        translate(&mut c, Format::Iso0, 2, None),
        Status::TranslationNotAllowed
    );
    assert_eq!(
        translate(&mut c, Format::Iso0, 3, Some("5500000000000004")),
        Status::PanMismatch
    );
    // Format 1 carries no PAN, so the PAN rule does not apply: its PIN may be bound to
    // another PAN in a PAN-bound format (the rule holds between two PAN-bound formats).
    assert_eq!(
        translate(&mut c, Format::Iso1, 0, Some("5500000000000004")),
        Status::Ok
    );

    // Generate with delivery, deliver again from the blob, change the PIN.
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Pvk, "pvk.example")
            // 12 digits, so that grepping the log for this PIN means something (a short
            // digit string can occur in any timestamp).
            .u8(Tag::PinLength, 12)
            .str(Tag::DeliveryKey, "transport.example");
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let delivered = PinBlock::from_bytes(&r.bytes(Tag::DeliveryBlock)).unwrap();
    let pin = pinblock::decipher(Format::Iso0, &tdes(TRANSPORT), &delivered, Some(&pan())).unwrap();
    assert_eq!(r.str(Tag::Pvv), pvv_of(pin.expose_secret()));
    let blob = r.bytes(Tag::PinBlob);
    assert_eq!(blob.len(), 25);
    let r = c.call(Opcode::PinDeliver, |w| {
        w.str(Tag::Pan, PAN)
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::DeliveryKey, "transport.example");
    });
    let again = PinBlock::from_bytes(&r.bytes(Tag::DeliveryBlock)).unwrap();
    let pin2 = pinblock::decipher(Format::Iso0, &tdes(TRANSPORT), &again, Some(&pan())).unwrap();
    assert_eq!(pin.expose_secret(), pin2.expose_secret());
    let r = c.call(Opcode::PinDeliver, |w| {
        w.str(Tag::Pan, "5500000000000004")
            .bytes(Tag::PinBlob, &blob)
            .str(Tag::DeliveryKey, "transport.example");
    });
    assert_eq!(r.status(), Status::InvalidBlob);
    let old_pvv = pvv_of(pin.expose_secret());
    let r = c.call(Opcode::PinChange, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(
                Tag::PinBlock,
                &block(Format::Iso0, &tdes(ZPK), pin.expose_secret()),
            )
            .bytes(Tag::NewPinBlock, &block(Format::Iso0, &tdes(ZPK), "555123"))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &old_pvv);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.str(Tag::Pvv), pvv_of("555123"));
    let r = c.call(Opcode::PinChange, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "zpk.example")
            .u8(Tag::Format, 0)
            .bytes(Tag::PinBlock, &block(Format::Iso0, &tdes(ZPK), "0000"))
            .bytes(Tag::NewPinBlock, &block(Format::Iso0, &tdes(ZPK), "555123"))
            .str(Tag::Pvk, "pvk.example")
            .str(Tag::Pvv, &old_pvv);
    });
    assert_eq!(r.status(), Status::VerificationFailed);

    // Nothing secret in the daemon's debug log.
    let log = d.log_text();
    for secret in [
        PAN,
        ZPK,
        ZPK_AES,
        TRANSPORT,
        "246813",
        "555123",
        &hex::encode_upper(&blob),
    ] {
        assert!(!log.contains(secret), "log leaks {secret}");
    }
    assert_eq!(pin.expose_secret().len(), 12);
    assert!(
        !log.contains(pin.expose_secret()),
        "log leaks the generated PIN"
    );
}

#[test]
fn card_token_dcvv2_and_mac_operations() {
    let d = Daemon::start("card");
    let mut c = d.connect("issuing-host-1");
    // Tokens: round trip, and a token works wherever a PAN does.
    let r = c.call(Opcode::Tokenise, |w| {
        w.str(Tag::Pan, PAN);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let token = r.str(Tag::Token);
    assert_eq!(token.len(), 16);
    assert!(token.starts_with("411111") && token.ends_with("1111") && token != PAN);
    assert_eq!(r.str(Tag::MaskedPan), "411111******1111");
    assert_eq!(r.str(Tag::LookupToken).len(), 64);
    let r = c.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, &token);
    });
    assert_eq!(r.str(Tag::Pan), PAN);
    // Deciphered under the example token key, this token's middle gives a PAN that
    // fails Luhn (`cofre calc detoken --key 2B7E1516... --token 4111119999991111`
    // refuses it too): invalid_token, exactly.
    let r = c.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, "4111119999991111");
    });
    assert_eq!(r.status(), Status::InvalidToken, "{}", r.message());

    // CVV family, by PAN and by token.
    let cvk = cvv::Cvk::new(&ClearKey::from_hex(CVK).unwrap()).unwrap();
    let expect = |sc: &str| {
        cvv::generate(&cvk, &pan(), "2812", sc)
            .unwrap()
            .expose_secret()
    };
    for card in [(Tag::Pan, PAN), (Tag::Token, token.as_str())] {
        let r = c.call(Opcode::CvvGenerate, |w| {
            w.str(card.0, card.1)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        });
        assert_eq!(r.status(), Status::Ok, "{}", r.message());
        assert_eq!(r.str(Tag::Cvv), expect("201"));
        assert_eq!(r.str(Tag::Cvv2), expect("000"));
        assert_eq!(r.str(Tag::Icvv), expect("999"));
    }
    let verify_cvv = |c: &mut Raw, code: &str| {
        c.call(Opcode::CvvVerify, |w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, code);
        })
        .status()
    };
    assert_eq!(verify_cvv(&mut c, &expect("000")), Status::Ok);
    let wrong = format!("{:03}", (expect("000").parse::<u32>().unwrap() + 1) % 1000);
    assert_eq!(verify_cvv(&mut c, &wrong), Status::VerificationFailed);
    // A PVK cannot make a CVV.
    let r = c.call(Opcode::CvvGenerate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "pvk.example")
            .str(Tag::Expiry, "2812")
            .str(Tag::ServiceCode, "201");
    });
    assert_eq!(r.status(), Status::WrongKeyUsage);

    // Security codes under a transport key (with the PIN from a blob).
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Token, &token).str(Tag::Pvk, "pvk.example");
    });
    let blob = r.bytes(Tag::PinBlob);
    let r = c.call(Opcode::SecurityCodesExport, |w| {
        w.str(Tag::Token, &token)
            .str(Tag::Key, "cvk.example")
            .str(Tag::Expiry, "2812")
            .str(Tag::ServiceCode, "201")
            .str(Tag::TransportKey, "transport.example")
            .bytes(Tag::PinBlob, &blob);
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let enc = r.bytes(Tag::Encrypted);
    let (iv, ct) = enc.split_at(8);
    let mut ct = ct.to_vec();
    tdes(TRANSPORT).decrypt_cbc(iv, &mut ct).unwrap();
    let end = ct.iter().rposition(|b| *b == 0x80).unwrap();
    let text = String::from_utf8(ct[..end].to_vec()).unwrap();
    assert!(
        text.starts_with(&format!(
            "CVV={};CVV2={};ICVV={};PIN=",
            expect("201"),
            expect("000"),
            expect("999")
        )),
        "{text}"
    );

    // PAN generation: the encrypted PAN tokenises to the returned token.
    let r = c.call(Opcode::PanGenerate, |w| {
        w.str(Tag::Bin, "400000")
            .str(Tag::TransportKey, "transport.example.aes");
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let enc = r.bytes(Tag::Encrypted);
    let (iv, ct) = enc.split_at(16);
    let mut ct = ct.to_vec();
    aes("33333333333333334444444444444444")
        .decrypt_cbc(iv, &mut ct)
        .unwrap();
    let new_pan = String::from_utf8(ct[..16].to_vec()).unwrap();
    assert!(Pan::new_luhn_checked(&new_pan).is_ok() && new_pan.starts_with("400000"));
    let t = r.str(Tag::Token);
    let back = c.call(Opcode::Detokenise, |w| {
        w.str(Tag::Token, &t);
    });
    assert_eq!(back.str(Tag::Pan), new_pan);

    // dCVV2 with a counter: generate, verify, a wrong code fails.
    let r = c.call(Opcode::Dcvv2Generate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "dcvv2.example")
            .str(Tag::Expiry, "2812")
            .u64(Tag::Counter, 42);
    });
    let code = r.str(Tag::Dcvv2);
    let expected = cofre::crypto::dcvv2::dcvv2(
        &ClearKey::from_hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
            .unwrap(),
        PAN,
        "2812",
        42,
    )
    .unwrap();
    assert_eq!(code, expected.expose_secret());
    let dverify = |c: &mut Raw, code: &str| {
        c.call(Opcode::Dcvv2Verify, |w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 43)
                .str(Tag::Dcvv2, code);
        })
        .status()
    };
    assert_eq!(dverify(&mut c, &code), Status::Ok);
    let wrong = format!("{:03}", (code.parse::<u32>().unwrap() + 1) % 1000);
    assert_eq!(dverify(&mut c, &wrong), Status::VerificationFailed);

    // MACs under each MAC key, checked against the crypto core.
    for (id, hexkey, alg) in [
        (
            "mac.example.retail",
            ZPK,
            cofre::crypto::mac::MacAlgorithm::Iso9797Alg3,
        ),
        (
            "mac.example.cmac",
            "2B7E151628AED2A6ABF7158809CF4F3C",
            cofre::crypto::mac::MacAlgorithm::AesCmac,
        ),
        (
            "mac.example.hmac",
            "4A6566654A6566654A6566654A6566654A6566654A6566654A6566654A656665",
            cofre::crypto::mac::MacAlgorithm::HmacSha256,
        ),
    ] {
        let r = c.call(Opcode::MacGenerate, |w| {
            w.str(Tag::Key, id).bytes(Tag::Data, b"0200 message");
        });
        let mac = r.bytes(Tag::Mac);
        let want = cofre::crypto::mac::generate(
            alg,
            &ClearKey::from_hex(hexkey).unwrap(),
            b"0200 message",
        )
        .unwrap();
        assert_eq!(mac, want, "{id}");
        let ok = c.call(Opcode::MacVerify, |w| {
            w.str(Tag::Key, id)
                .bytes(Tag::Data, b"0200 message")
                .bytes(Tag::Mac, &mac);
        });
        assert_eq!(ok.status(), Status::Ok);
        let bad = c.call(Opcode::MacVerify, |w| {
            w.str(Tag::Key, id)
                .bytes(Tag::Data, b"0200 messagf")
                .bytes(Tag::Mac, &mac);
        });
        assert_eq!(bad.status(), Status::VerificationFailed);
    }

    // Health.
    let r = c.call(Opcode::Health, |_| {});
    assert_eq!(r.str(Tag::LmkKcv), "35146C");
    assert_eq!(r.str(Tag::Role), "issuing-host");
    // Metrics count what happened, with no PAN anywhere.
    let m = d.metrics_text();
    assert!(
        m.contains(r#"cofre_requests_total{operation="cvv.generate",status="ok"}"#),
        "{m}"
    );
    assert!(m.contains("cofre_connections_open 1"));
    assert!(!m.contains(PAN) && !m.contains(&token));
    let log = d.log_text();
    for secret in [
        PAN,
        token.as_str(),
        CVK,
        TRANSPORT,
        // (The 3-digit CVVs are not grepped for: any timestamp may contain them. The
        // log has no field values at all; the 16-digit PANs above show it.)
        &new_pan,
    ] {
        assert!(!log.contains(secret), "log leaks a secret");
    }
}

/// card.codes.export `format` 1: one TDES-ECB block per value under the transport key,
/// each decoding as protocol/README.md describes; AES transport keys are refused.
#[test]
fn codes_export_one_block_per_value() {
    let d = Daemon::start("codes-blocks");
    let mut c = d.connect("issuing-host-1");
    let cvk = cvv::Cvk::new(&ClearKey::from_hex(CVK).unwrap()).unwrap();
    let expect = |sc: &str| {
        cvv::generate(&cvk, &pan(), "2812", sc)
            .unwrap()
            .expose_secret()
    };
    let r = c.call(Opcode::PinGenerate, |w| {
        w.str(Tag::Pan, PAN).str(Tag::Pvk, "pvk.example");
    });
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    let blob = r.bytes(Tag::PinBlob);
    let pvv = r.str(Tag::Pvv);
    let export = |c: &mut Raw, key: &str, blob: Option<&[u8]>| {
        c.call(Opcode::SecurityCodesExport, |w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201")
                .str(Tag::TransportKey, key)
                .u8(Tag::Format, 1);
            if let Some(b) = blob {
                w.bytes(Tag::PinBlob, b);
            }
        })
    };
    let transport = tdes(TRANSPORT);
    let clear = |enc: &[u8]| -> Vec<String> {
        enc.chunks(8)
            .map(|b| {
                let mut b = b.to_vec();
                transport.decrypt_ecb(&mut b).unwrap();
                hex::encode_upper(b)
            })
            .collect()
    };
    // Two exports: same codes, different random fill.
    let r1 = export(&mut c, "transport.example", Some(&blob));
    assert_eq!(r1.status(), Status::Ok, "{}", r1.message());
    let r2 = export(&mut c, "transport.example", Some(&blob));
    let (e1, e2) = (r1.bytes(Tag::Encrypted), r2.bytes(Tag::Encrypted));
    assert_eq!(e1.len(), 32);
    assert_ne!(e1, e2, "fill must be random");
    let blocks = clear(&e1);
    for (b, sc) in blocks.iter().zip(["201", "000", "999"]) {
        assert_eq!(&b[..2], "13", "{b}");
        assert_eq!(&b[2..5], expect(sc));
        assert!(b[5..].bytes().all(|x| x.is_ascii_hexdigit()));
    }
    assert_eq!(
        clear(&e2)[..3].iter().map(|b| &b[..5]).collect::<Vec<_>>(),
        blocks[..3].iter().map(|b| &b[..5]).collect::<Vec<_>>()
    );
    let pin_block = PinBlock::from_hex(&blocks[3]).unwrap();
    let pin = pinblock::decode_clear(Format::Iso1, &pin_block, None).unwrap();
    assert_eq!(pvv_of(pin.expose_secret()), pvv);

    // Without a blob: three blocks.
    let r = export(&mut c, "transport.example", None);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert_eq!(r.bytes(Tag::Encrypted).len(), 24);
    // AES transport key, unknown layout.
    let r = export(&mut c, "transport.example.aes", None);
    assert_eq!(r.status(), Status::WrongKeyUsage);
    let r = c.call(Opcode::SecurityCodesExport, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "cvk.example")
            .str(Tag::Expiry, "2812")
            .str(Tag::ServiceCode, "201")
            .str(Tag::TransportKey, "transport.example")
            .u8(Tag::Format, 2);
    });
    assert_eq!(r.status(), Status::MalformedField);
}

/// pin.generate's delivery block comes in the format asked for (0, 1 and 3 under a TDES
/// delivery key); format 2 (ICC only) and format 4 (AES) under it are refused, and a
/// format without a delivery key is a malformed request, not a silently dropped field.
#[test]
fn pin_delivery_in_the_format_asked_for() {
    let d = Daemon::start("delivery-formats");
    let mut c = d.connect("issuing-host-1");
    let generate = |c: &mut Raw, key: Option<&str>, format: Option<u8>| {
        c.call(Opcode::PinGenerate, |w| {
            w.str(Tag::Pan, PAN).str(Tag::Pvk, "pvk.example");
            if let Some(k) = key {
                w.str(Tag::DeliveryKey, k);
            }
            if let Some(f) = format {
                w.u8(Tag::Format, f);
            }
        })
    };
    for f in [Format::Iso0, Format::Iso1, Format::Iso3] {
        let r = generate(&mut c, Some("transport.example"), Some(f.number()));
        assert_eq!(r.status(), Status::Ok, "{f:?}: {}", r.message());
        let b = PinBlock::from_bytes(&r.bytes(Tag::DeliveryBlock)).unwrap();
        let pin = pinblock::decipher(f, &tdes(TRANSPORT), &b, Some(&pan())).unwrap();
        assert_eq!(r.str(Tag::Pvv), pvv_of(pin.expose_secret()), "{f:?}");
    }
    for f in [2, 4] {
        let r = generate(&mut c, Some("transport.example"), Some(f));
        assert_eq!(r.status(), Status::WrongKeyUsage, "format {f}");
        assert!(r.fields().bytes(Tag::DeliveryBlock).unwrap().is_none());
    }
    let r = generate(&mut c, None, Some(0));
    assert_eq!(r.status(), Status::MalformedField, "{}", r.message());
    assert_eq!(r.fields().u8(Tag::Field).unwrap(), Some(Tag::Format.code()));
    // Neither: no delivery block.
    let r = generate(&mut c, None, None);
    assert_eq!(r.status(), Status::Ok, "{}", r.message());
    assert!(r.fields().bytes(Tag::DeliveryBlock).unwrap().is_none());
}
