//! Golden frames: `protocol/vectors/*.txt` replayed against a live daemon on the example
//! keys. Each vector is a request frame and the exact response frame, in hex; fields
//! listed after `ignore` carry random or time-dependent values, so only their presence
//! is compared. The files are the specification's examples: a third party can replay
//! them with any client.
//!
//! To regenerate after an intentional protocol change (then review the diff):
//! `COFRE_WRITE_VECTORS=1 cargo test --test hsm_vectors`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;
#[path = "daemon/dukpt_terminal.rs"]
mod dukpt_terminal;
#[path = "daemon/dukpt_vectors.rs"]
mod dukpt_vectors;
#[path = "daemon/lmk_vectors.rs"]
mod lmk_vectors;
#[path = "daemon/spec_vectors.rs"]
mod spec_vectors;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cofre::crypto::Pin;
use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format};
use cofre::protocol::{self, FieldsWriter, Opcode, Tag};
use daemon::Daemon;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protocol/vectors")
}

struct Vector {
    name: String,
    identity: String,
    request: Vec<u8>,
    response: Vec<u8>,
    ignore: Vec<String>,
}

fn parse(text: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut v = Vector {
            name: String::new(),
            identity: String::new(),
            request: Vec::new(),
            response: Vec::new(),
            ignore: Vec::new(),
        };
        for line in block.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let value = value.trim();
            match key {
                "#" => v.name = value.to_owned(),
                "identity" => v.identity = value.to_owned(),
                "request" => v.request = hex::decode(value).unwrap(),
                "response" => v.response = hex::decode(value).unwrap(),
                "ignore" => v.ignore = value.split_whitespace().map(str::to_owned).collect(),
                "" => {}
                other => panic!("unknown line {other:?}"),
            }
        }
        if !v.request.is_empty() {
            out.push(v);
        }
    }
    out
}

/// (header, tag name -> value) of a response frame.
fn decode(frame: &[u8]) -> (protocol::ResponseHeader, BTreeMap<String, Vec<u8>>) {
    let (h, f) = protocol::decode_response(&frame[4..]).unwrap();
    let fields = f
        .iter()
        .map(|(t, v)| (t.name().to_owned(), v.to_vec()))
        .collect();
    (h, fields)
}

fn exchange(d: &Daemon, identity: &str, request: &[u8]) -> Vec<u8> {
    let mut c = d.connect(identity);
    c.send_bytes(request);
    let r = c.read().unwrap();
    let mut frame = (r.payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&r.payload);
    frame
}

#[test]
fn golden_frames_replay_against_the_live_daemon() {
    if std::env::var_os("COFRE_WRITE_VECTORS").is_some() {
        write_vectors();
    }
    let d = Daemon::start("vectors");
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut count = 0;
    let mut ops_seen = std::collections::HashSet::new();
    for file in files {
        for v in parse(&std::fs::read_to_string(&file).unwrap()) {
            let got = exchange(&d, &v.identity, &v.request);
            let (eh, ef) = decode(&v.response);
            let (gh, gf) = decode(&got);
            let what = format!("{} / {}", file.display(), v.name);
            assert_eq!(
                (gh.opcode, gh.request_id, gh.status),
                (eh.opcode, eh.request_id, eh.status),
                "{what}: {}",
                String::from_utf8_lossy(gf.get("message").map_or(&[][..], |m| m))
            );
            assert_eq!(
                gf.keys().collect::<Vec<_>>(),
                ef.keys().collect::<Vec<_>>(),
                "{what}"
            );
            for (name, value) in &ef {
                if !v.ignore.contains(name) {
                    assert_eq!(&gf[name], value, "{what}: field {name}");
                }
            }
            if v.ignore.is_empty() {
                assert_eq!(got, v.response, "{what}: whole frame");
            }
            ops_seen.insert(eh.opcode);
            count += 1;
        }
    }
    for op in Opcode::ALL {
        assert!(ops_seen.contains(&op.code()), "no golden vector for {op}");
    }
    assert!(count >= Opcode::ALL.len());
}

// ---- writing (COFRE_WRITE_VECTORS=1) ----

const PAN: &str = "4111111111111111";

fn block(format: Format, key_hex: &str, pin: &str) -> Vec<u8> {
    let key = hex::decode(key_hex).unwrap();
    let cipher = if format == Format::Iso4 {
        BlockCipher::aes(&key).unwrap()
    } else {
        BlockCipher::tdes(&key).unwrap()
    };
    pinblock::encipher(
        format,
        &cipher,
        &Pin::new(pin).unwrap(),
        Some(&Pan::new(PAN).unwrap()),
        &mut rand::rng(),
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

struct Writer {
    d: Daemon,
    files: BTreeMap<String, String>,
    next_id: u32,
}

impl Writer {
    /// A vector whose request is given as raw bytes (a frame the encoder would not make).
    fn add_raw(&mut self, file: &str, name: &str, identity: &str, request: &[u8]) {
        let resp = exchange(&self.d, identity, request);
        self.record(file, name, identity, request, &resp, &[]);
    }

    fn record(
        &mut self,
        file: &str,
        name: &str,
        identity: &str,
        req: &[u8],
        resp: &[u8],
        ignore: &[&str],
    ) {
        let text = self.files.entry(file.to_owned()).or_default();
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "# {name}\nidentity {identity}\nrequest  {}\nresponse {}\n",
            hex::encode_upper(req),
            hex::encode_upper(resp)
        ));
        if !ignore.is_empty() {
            text.push_str(&format!("ignore   {}\n", ignore.join(" ")));
        }
    }

    fn add(
        &mut self,
        file: &str,
        name: &str,
        identity: &str,
        op: u16,
        ignore: &[&str],
        body: impl FnOnce(&mut FieldsWriter<'_>),
    ) -> Vec<u8> {
        self.next_id += 1;
        let mut req = Vec::new();
        protocol::encode_request(&mut req, op, self.next_id, body).unwrap();
        let resp = exchange(&self.d, identity, &req);
        self.record(file, name, identity, &req, &resp, ignore);
        resp
    }
}

fn write_vectors() {
    let mut w = Writer {
        d: Daemon::start("write-vectors"),
        files: BTreeMap::new(),
        next_id: 0,
    };
    let host = "issuing-host-1";
    let zpk = "0123456789ABCDEFFEDCBA9876543210";
    let zpk_aes = "00112233445566778899AABBCCDDEEFF";
    let pvk =
        cofre::crypto::pvv::Pvk::new(&cofre::crypto::ClearKey::from_hex(zpk).unwrap()).unwrap();
    let pvv =
        cofre::crypto::pvv::visa_pvv(&pvk, 1, &Pin::new("1234").unwrap(), &Pan::new(PAN).unwrap())
            .unwrap()
            .to_string();
    let op = |o: Opcode| o.code();

    w.add(
        "health.txt",
        "health as the issuing host (uptime varies)",
        host,
        op(Opcode::Health),
        &["uptime"],
        |_| {},
    );
    w.add(
        "health.txt",
        "health from a certificate without a role: not_authorised",
        "no-role-1",
        op(Opcode::Health),
        &[],
        |_| {},
    );
    w.add(
        "errors.txt",
        "unknown opcode 0x7777",
        host,
        0x7777,
        &[],
        |_| {},
    );
    w.add(
        "errors.txt",
        "pan.tokenise with a non-digit PAN: malformed_field naming pan",
        host,
        op(Opcode::Tokenise),
        &[],
        |f| {
            f.str(Tag::Pan, "4111x11111111111");
        },
    );
    w.add(
        "pan.txt",
        "pan.generate for BIN 400000 with the PAN under transport.example (all random)",
        host,
        op(Opcode::PanGenerate),
        &["token", "masked_pan", "lookup_token", "encrypted"],
        |f| {
            f.str(Tag::Bin, "400000")
                .str(Tag::TransportKey, "transport.example");
        },
    );
    w.add(
        "pan.txt",
        "pan.tokenise 4111111111111111",
        host,
        op(Opcode::Tokenise),
        &[],
        |f| {
            f.str(Tag::Pan, PAN);
        },
    );
    let token = {
        let mut c = w.d.connect(host);
        c.call(Opcode::Tokenise, |f| {
            f.str(Tag::Pan, PAN);
        })
        .str(Tag::Token)
    };
    w.add(
        "pan.txt",
        "pan.detokenise",
        host,
        op(Opcode::Detokenise),
        &[],
        |f| {
            f.str(Tag::Token, &token);
        },
    );
    let b0 = block(Format::Iso0, zpk, "1234");
    w.add(
        "pin.txt",
        "pin.verify, format 0 under zpk.example, Visa PVV",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    let b4 = block(Format::Iso4, zpk_aes, "1234");
    w.add(
        "pin.txt",
        "pin.verify, format 4 under zpk.example.aes, card given as a token",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Token, &token)
                .str(Tag::Key, "zpk.example.aes")
                .u8(Tag::Format, 4)
                .bytes(Tag::PinBlock, &b4)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    let wrong = block(Format::Iso0, zpk, "9999");
    w.add(
        "pin.txt",
        "pin.verify with the wrong PIN: verification_failed",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &wrong)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    w.add(
        "pin.txt",
        "pin.verify under a CVK: wrong_key_usage",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    w.add(
        "pin.txt",
        "pin.translate format 0 zpk.example -> format 0 tpk.example (deterministic)",
        host,
        op(Opcode::PinTranslate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .str(Tag::DestKey, "tpk.example")
                .u8(Tag::DestFormat, 0);
        },
    );
    w.add(
        "pin.txt",
        "pin.translate format 0 -> 1: translation_not_allowed",
        host,
        op(Opcode::PinTranslate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .str(Tag::DestKey, "tpk.example")
                .u8(Tag::DestFormat, 1);
        },
    );
    let generated = w.add(
        "pin.txt",
        "pin.generate, 4 digits, Visa PVV (random PIN)",
        host,
        op(Opcode::PinGenerate),
        &["pvv", "pin_blob"],
        |f| {
            f.str(Tag::Pan, PAN).str(Tag::Pvk, "pvk.example");
        },
    );
    let (_, gf) = decode(&generated);
    let blob = gf["pin_blob"].clone();
    w.add(
        "pin.txt",
        "pin.deliver: the blob above under transport.example as format 0",
        host,
        op(Opcode::PinDeliver),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .bytes(Tag::PinBlob, &blob)
                .str(Tag::DeliveryKey, "transport.example");
        },
    );
    let new = block(Format::Iso0, zpk, "5826");
    w.add(
        "pin.txt",
        "pin.change 1234 -> 5826 (new blob is random)",
        host,
        op(Opcode::PinChange),
        &["pin_blob"],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .bytes(Tag::NewPinBlock, &new)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    w.add(
        "card.txt",
        "cvv.generate, expiry 2812, service code 201",
        host,
        op(Opcode::CvvGenerate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        },
    );
    let cvv2 = {
        let mut c = w.d.connect(host);
        c.call(Opcode::CvvGenerate, |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        })
        .str(Tag::Cvv2)
    };
    w.add(
        "card.txt",
        "cvv.verify of the CVV2 (service code 000)",
        host,
        op(Opcode::CvvVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, &cvv2);
        },
    );
    w.add(
        "card.txt",
        "card.codes.export under transport.example (random IV)",
        host,
        op(Opcode::SecurityCodesExport),
        &["encrypted"],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201")
                .str(Tag::TransportKey, "transport.example");
        },
    );
    w.add(
        "dcvv2.txt",
        "dcvv2.generate, counter 42",
        host,
        op(Opcode::Dcvv2Generate),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 42);
        },
    );
    let code = {
        let mut c = w.d.connect(host);
        c.call(Opcode::Dcvv2Generate, |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 42);
        })
        .str(Tag::Dcvv2)
    };
    w.add(
        "dcvv2.txt",
        "dcvv2.verify at counter 43, window 1: matches step 42",
        host,
        op(Opcode::Dcvv2Verify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 43)
                .str(Tag::Dcvv2, &code);
        },
    );
    w.add(
        "mac.txt",
        "mac.generate, ISO 9797-1 alg. 3 under mac.example.retail",
        host,
        op(Opcode::MacGenerate),
        &[],
        |f| {
            f.str(Tag::Key, "mac.example.retail")
                .bytes(Tag::Data, b"0200 cofre");
        },
    );
    let m = {
        let mut c = w.d.connect(host);
        c.call(Opcode::MacGenerate, |f| {
            f.str(Tag::Key, "mac.example.cmac")
                .bytes(Tag::Data, b"0200 cofre");
        })
        .bytes(Tag::Mac)
    };
    w.add(
        "mac.txt",
        "mac.verify, AES-CMAC under mac.example.cmac",
        host,
        op(Opcode::MacVerify),
        &[],
        |f| {
            f.str(Tag::Key, "mac.example.cmac")
                .bytes(Tag::Data, b"0200 cofre")
                .bytes(Tag::Mac, &m);
        },
    );
    w.add(
        "lockout.txt",
        "pin.verify with the wrong PIN: the failure is counted before the answer",
        host,
        op(Opcode::PinVerify),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &wrong)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    w.add(
        "lockout.txt",
        "pin.attempts after one wrong PIN (last_failure is the time)",
        host,
        op(Opcode::PinAttempts),
        &["last_failure"],
        |f| {
            f.str(Tag::Pan, PAN);
        },
    );
    w.add(
        "lockout.txt",
        "pin.attempts.reset",
        host,
        op(Opcode::PinAttemptsReset),
        &[],
        |f| {
            f.str(Tag::Pan, PAN);
        },
    );
    w.add(
        "lockout.txt",
        "pin.guard.reset (security officer)",
        "security-officer-1",
        op(Opcode::GuardReset),
        &[],
        |_| {},
    );
    let card2 = "5500000000000004";
    w.add(
        "dcvv2.txt",
        "dcvv2.enable for 5500000000000004",
        host,
        op(Opcode::Dcvv2Enable),
        &[],
        |f| {
            f.str(Tag::Pan, card2);
        },
    );
    w.add(
        "dcvv2.txt",
        "dcvv2.state",
        host,
        op(Opcode::Dcvv2State),
        &[],
        |f| {
            f.str(Tag::Pan, card2);
        },
    );
    let cvv2_2 = {
        let mut c = w.d.connect(host);
        c.call(Opcode::CvvGenerate, |f| {
            f.str(Tag::Pan, card2)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201");
        })
        .str(Tag::Cvv2)
    };
    w.add(
        "dcvv2.txt",
        "cvv.verify of the static CVV2 while dCVV2 is on: verification_failed, reason dcvv2_active",
        host,
        op(Opcode::CvvVerify),
        &[],
        |f| {
            f.str(Tag::Pan, card2)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "000")
                .str(Tag::Cvv, &cvv2_2);
        },
    );
    let code2 = {
        let mut c = w.d.connect(host);
        c.call(Opcode::Dcvv2Generate, |f| {
            f.str(Tag::Pan, card2)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 7);
        })
        .str(Tag::Dcvv2)
    };
    w.add(
        "dcvv2.txt",
        "dcvv2.verify counter 7",
        host,
        op(Opcode::Dcvv2Verify),
        &[],
        |f| {
            f.str(Tag::Pan, card2)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 7)
                .str(Tag::Dcvv2, &code2);
        },
    );
    w.add(
        "dcvv2.txt",
        "the same code again: replayed",
        host,
        op(Opcode::Dcvv2Verify),
        &[],
        |f| {
            f.str(Tag::Pan, card2)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 7)
                .str(Tag::Dcvv2, &code2);
        },
    );
    w.add(
        "dcvv2.txt",
        "dcvv2.disable",
        host,
        op(Opcode::Dcvv2Disable),
        &[],
        |f| {
            f.str(Tag::Pan, card2);
        },
    );
    let so = "security-officer-1";
    w.add(
        "keys.txt",
        "key.generate zpk.vector (random key)",
        so,
        op(Opcode::KeyGenerate),
        &["kcv"],
        |f| {
            f.str(Tag::Key, "zpk.vector")
                .str(Tag::Kind, "zpk")
                .str(Tag::Algorithm, "aes");
        },
    );
    w.add(
        "keys.txt",
        "key.rotate zpk.vector",
        so,
        op(Opcode::KeyRotate),
        &["kcv"],
        |f| {
            f.str(Tag::Key, "zpk.vector");
        },
    );
    w.add(
        "keys.txt",
        "key.retire zpk.vector version 1",
        so,
        op(Opcode::KeyRetire),
        &[],
        |f| {
            f.str(Tag::Key, "zpk.vector").u32(Tag::KeyVersion, 1);
        },
    );
    w.add(
        "keys.txt",
        "key.export zpk.example under kek.example (TR-31 D, random padding)",
        so,
        op(Opcode::KeyExport),
        &["key_block"],
        |f| {
            f.str(Tag::Key, "zpk.example").str(Tag::Kek, "kek.example");
        },
    );
    let exported = {
        let mut c = w.d.connect(so);
        c.call(Opcode::KeyExport, |f| {
            f.str(Tag::Key, "zpk.example").str(Tag::Kek, "kek.example");
        })
        .str(Tag::KeyBlock)
    };
    w.add(
        "keys.txt",
        "key.import of that block as zpk.imported",
        so,
        op(Opcode::KeyImport),
        &[],
        |f| {
            f.str(Tag::Key, "zpk.imported")
                .str(Tag::Kek, "kek.example")
                .str(Tag::KeyBlock, &exported);
        },
    );
    w.add(
        "keys.txt",
        "key.list (creation times vary)",
        so,
        op(Opcode::KeyList),
        &["listing"],
        |_| {},
    );
    // Later additions go here, so that earlier vectors keep their request ids.
    w.add(
        "dcvv2.txt",
        "dcvv2.generate, counter 42, as one code block under transport.example (random fill)",
        host,
        op(Opcode::Dcvv2Generate),
        &["encrypted"],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "dcvv2.example")
                .str(Tag::Expiry, "2812")
                .u64(Tag::Counter, 42)
                .str(Tag::TransportKey, "transport.example");
        },
    );
    let blob = {
        let mut c = w.d.connect(host);
        c.call(Opcode::PinGenerate, |f| {
            f.str(Tag::Pan, PAN).str(Tag::Pvk, "pvk.example");
        })
        .bytes(Tag::PinBlob)
    };
    w.add(
        "pin.txt",
        "pin.rebind: a random PIN of 4111111111111111 carried over to 4000001234567899",
        host,
        op(Opcode::PinRebind),
        &["pvv", "pin_blob"],
        |f| {
            f.str(Tag::Pan, PAN)
                .bytes(Tag::PinBlob, &blob)
                .str(Tag::NewPan, "4000001234567899")
                .str(Tag::Pvk, "pvk.example");
        },
    );
    let weak = block(Format::Iso0, zpk, "7777");
    w.add(
        "pin.txt",
        "pin.change 1234 -> 7777: weak_pin, reason repeated (the old PIN verified first)",
        host,
        op(Opcode::PinChange),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .str(Tag::Key, "zpk.example")
                .u8(Tag::Format, 0)
                .bytes(Tag::PinBlock, &b0)
                .bytes(Tag::NewPinBlock, &weak)
                .str(Tag::Pvk, "pvk.example")
                .str(Tag::Pvv, &pvv);
        },
    );
    w.add(
        "pin.txt",
        "pin.deliver: a blob as format 0 under pin-delivery.example (a PIN delivery key)",
        host,
        op(Opcode::PinDeliver),
        &[],
        |f| {
            f.str(Tag::Pan, PAN)
                .bytes(Tag::PinBlob, &blob)
                .str(Tag::DeliveryKey, "pin-delivery.example");
        },
    );
    spec_vectors::write(&mut w);
    dukpt_vectors::write(&mut w);
    lmk_vectors::write(&mut w);
    std::fs::create_dir_all(dir()).unwrap();
    for (name, text) in &w.files {
        std::fs::write(dir().join(name), text).unwrap();
    }
}
