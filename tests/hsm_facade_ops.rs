//! The daemon operations the REST facade's card life cycle needs, over real mutual TLS
//! with the example keys: dCVV2 under a transport key, a PIN carried over to a new PAN,
//! the weak-PIN policy, and PIN delivery under a key of its own. Expected values are
//! computed here with the crypto core on the clear keys of keys-example/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon;

use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::{ClearKey, dcvv2};
use cofre::protocol::{Opcode, Status, Tag};
use daemon::{Daemon, Raw};

const PAN: &str = "4111111111111111";
const TRANSPORT: &str = "11111111111111112222222222222222";
const DCVV2_KEY: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

fn tdes(hex: &str) -> BlockCipher {
    BlockCipher::tdes(&hex::decode(hex).unwrap()).unwrap()
}

/// Deciphers an 8-byte code block under a TDES key: the clear block's hex.
fn clear_block(key: &str, block: &[u8]) -> String {
    let mut b = block.to_vec();
    tdes(key).decrypt_ecb(&mut b).unwrap();
    hex::encode_upper(b)
}

fn dcvv2_under(c: &mut Raw, transport: &str, counter: u64) -> daemon::Resp {
    c.call(Opcode::Dcvv2Generate, |w| {
        w.str(Tag::Pan, PAN)
            .str(Tag::Key, "dcvv2.example")
            .str(Tag::Expiry, "2812")
            .u64(Tag::Counter, counter)
            .str(Tag::TransportKey, transport);
    })
}

/// dcvv2.generate with a transport key: one code block, never the clear code.
#[test]
fn dcvv2_under_the_transport_key() {
    let d = Daemon::start("dcvv2-transport");
    let key = ClearKey::from_hex(DCVV2_KEY).unwrap();
    for identity in ["issuing-host-1", "facade-1"] {
        let mut c = d.connect(identity);
        let r1 = dcvv2_under(&mut c, "transport.example", 42);
        assert_eq!(r1.status(), Status::Ok, "{}", r1.message());
        let fields: Vec<&str> = r1.fields().iter().map(|(t, _)| t.name()).collect();
        assert_eq!(
            fields,
            [
                "encrypted",
                "moving_factor",
                "key_version",
                "transport_key_version"
            ]
        );
        assert_eq!(r1.u32(Tag::TransportKeyVersion), 1);
        let block = r1.bytes(Tag::Encrypted);
        assert_eq!(block.len(), 8);
        let code = dcvv2::dcvv2(&key, PAN, "2812", 42).unwrap();
        let clear = clear_block(TRANSPORT, &block);
        assert_eq!(&clear[..2], "13", "{clear}");
        assert_eq!(&clear[2..5], code.expose_secret());
        // The fill is random: the same code never gives the same block twice.
        let r2 = dcvv2_under(&mut c, "transport.example", 42);
        assert_ne!(r2.bytes(Tag::Encrypted), block);
        assert_eq!(
            &clear_block(TRANSPORT, &r2.bytes(Tag::Encrypted))[..5],
            &clear[..5]
        );
    }
    let mut c = d.connect("issuing-host-1");
    // The processor's blocks are 8 bytes: an AES transport key is refused, and a key
    // of another kind is a wrong usage.
    for key in ["transport.example.aes", "cvk.example"] {
        let r = dcvv2_under(&mut c, key, 1);
        assert_eq!(r.status(), Status::WrongKeyUsage, "{key}: {}", r.message());
    }
    let r = dcvv2_under(&mut c, "transport.none", 1);
    assert_eq!(r.status(), Status::UnknownKey);
    // A role may only name transport keys its policy lists.
    let r = dcvv2_under(&mut d.connect("atm-switch-1"), "transport.example", 1);
    assert_eq!(r.status(), Status::NotAuthorised);
    let log = d.log_text();
    assert!(!log.contains(PAN) && !log.contains(TRANSPORT));
}
