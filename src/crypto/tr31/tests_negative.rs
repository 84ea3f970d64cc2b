//! Refusals: every malformed, tampered or mis-keyed block is a typed error, never a
//! panic; and a deterministic mutation test over valid blocks.

use super::tests::{VECTORS, key, rng};
use super::*;
use rand::rngs::StdRng;

use crate::crypto::{ClearKey, Error};

fn tr31(e: Tr31Error) -> Result<(), Error> {
    Err(Error::Tr31(e))
}

fn unwrap_err(kbpk: &str, block: &str) -> Result<(), Error> {
    unwrap(&key(kbpk), block).map(|_| ())
}

/// Replaces the character at `i` (blocks are ASCII).
fn replace(block: &str, i: usize, c: char) -> String {
    block
        .chars()
        .enumerate()
        .map(|(j, b)| if j == i { c } else { b })
        .collect()
}

fn flip_hex(c: char) -> char {
    if c == '0' { '1' } else { '0' }
}

#[test]
fn tampering_is_a_mac_failure() {
    for (source, kbpk, block, _, _) in VECTORS {
        let last = block.len() - 1;
        let tail = block.chars().last().unwrap();
        let mac = replace(block, last, flip_hex(tail));
        assert_eq!(
            unwrap_err(kbpk, &mac),
            tr31(Tr31Error::Mac),
            "{source}: MAC"
        );
        // The first character after the header (the encrypted key data), then a header
        // field (exportability) the MAC covers.
        let header_len = unwrap(&key(kbpk), block).unwrap().0.to_string().len();
        let data_char = block.chars().nth(header_len).unwrap();
        let data = replace(block, header_len, flip_hex(data_char));
        assert_eq!(
            unwrap_err(kbpk, &data),
            tr31(Tr31Error::Mac),
            "{source}: key"
        );
        let export = if block.as_bytes()[11] == b'N' {
            'E'
        } else {
            'N'
        };
        let header = replace(block, 11, export);
        assert_eq!(
            unwrap_err(kbpk, &header),
            tr31(Tr31Error::Mac),
            "{source}: hdr"
        );
        let mut wrong = key(kbpk).expose_secret().to_vec();
        wrong[0] ^= 0x80;
        let wrong = ClearKey::from_bytes(&wrong).unwrap();
        assert_eq!(
            unwrap(&wrong, block).map(|_| ()),
            tr31(Tr31Error::Mac),
            "{source}: KBPK"
        );
    }
}

#[test]
fn malformed_blocks_are_typed_errors() {
    let (_, kbpk_a, a, _, _) = VECTORS[0];
    let (_, kbpk_b, b, _, _) = VECTORS[3];
    let (_, kbpk_d, d, _, _) = VECTORS[4];
    let kbpk_len = |version, got| tr31(Tr31Error::KbpkLength { version, got });
    assert_eq!(unwrap_err(&kbpk_a[..16], a), kbpk_len('A', 8));
    assert_eq!(unwrap_err(kbpk_d, b), kbpk_len('B', 32));
    assert_eq!(unwrap_err(&kbpk_d[..16], d), kbpk_len('D', 8));
    // Truncated: the length field no longer matches, or the header itself is cut.
    let length = |declared, actual| tr31(Tr31Error::Length { declared, actual });
    assert_eq!(unwrap_err(kbpk_a, &a[..70]), length(72, 70));
    assert_eq!(unwrap_err(kbpk_a, &a[..10]), tr31(Tr31Error::TooShort));
    assert_eq!(unwrap_err(kbpk_a, ""), tr31(Tr31Error::TooShort));
    assert_eq!(
        unwrap_err(kbpk_b, &b[..30]),
        tr31(Tr31Error::OptionalBlock("data shorter than its length"))
    );
    // Bad length field.
    assert_eq!(
        unwrap_err(kbpk_a, &replace(a, 3, 'X')),
        tr31(Tr31Error::LengthField)
    );
    assert_eq!(unwrap_err(kbpk_a, &replace(a, 4, '3')), length(73, 72));
    // Non-hex key data or MAC.
    assert_eq!(
        unwrap_err(kbpk_a, &replace(a, 20, 'G')),
        tr31(Tr31Error::Hex)
    );
    assert_eq!(
        unwrap_err(kbpk_a, &replace(a, 71, 'Z')),
        tr31(Tr31Error::Hex)
    );
    assert_eq!(unwrap_err(kbpk_d, &replace(d, 40, 'é')), length(112, 113));
    // Unknown version.
    for v in ['E', '0', 'a', '_'] {
        assert_eq!(
            unwrap_err(kbpk_a, &replace(a, 0, v)),
            tr31(Tr31Error::Version)
        );
    }
    // Bad optional block length: not hex, shorter than its own ID and length, past the end.
    let bad_len = tr31(Tr31Error::OptionalBlock("length is not hex or too short"));
    assert_eq!(unwrap_err(kbpk_b, &replace(b, 19, 'X')), bad_len);
    assert_eq!(unwrap_err(kbpk_b, &b.replacen("KS18", "KS03", 1)), bad_len);
    assert_eq!(
        unwrap_err(kbpk_b, &b.replacen("KS18", "KS00", 1)),
        tr31(Tr31Error::OptionalBlock(
            "extended length must be 1 or 2 bytes"
        ))
    );
    assert!(matches!(
        unwrap_err(kbpk_b, &b.replacen("KS18", "KSFF", 1)),
        Err(Error::Tr31(Tr31Error::OptionalBlock(_)))
    ));
    // Not aligned to the cipher block (psec tests/test_tr31.py test_kb_unwrap_exceptions).
    let e16 = "45454545454545454545454545454545";
    assert_eq!(
        unwrap_err(e16, "A0024M3TC00E00009AA5BBA6"),
        tr31(Tr31Error::Alignment)
    );
    assert_eq!(
        unwrap_err(e16, "B0024M3TC00E00009AA5BBA6"),
        tr31(Tr31Error::TooShort)
    );
    assert_eq!(
        unwrap_err(
            e16,
            "B0064M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBFFFFFFFF9AA5BBA6"
        ),
        tr31(Tr31Error::Mac)
    );
}

// psec tests/test_tr31.py test_kb_unwrap_exceptions: blocks under KBPK "E"*16 whose MAC
// verifies but whose key length field is 0 bits, or longer than the data.
#[test]
fn bad_key_length_field_after_a_good_mac() {
    let e16 = "45454545454545454545454545454545";
    for block in [
        "A0056M3TC00E0000ABE3EB7813FD4031BCBAEC1FCAB750BB920E4863",
        "B0064M3TC00E000013F1B06566ECAE897A6DF8C7AA651FCEF9480447EEEC9933",
        "C0056M3TC00E0000629D73329F5F42D868B2EB1E4C52D1E191BC1D3C",
        "A0056M3TC00E0000EF14FD71CFCDCE0630AD5C1CDE0041DCF95CF1D0",
        "B0064M3TC00E00000398DC96A5DDB0EF61E26F8935173BD478DF9484050A672A",
        "C0056M3TC00E000001235EC22408B6CE866746FF992B8707FD7A26D2",
    ] {
        assert_eq!(unwrap_err(e16, block), tr31(Tr31Error::KeyField), "{block}");
    }
    // psec test_kb_known_values: an 8-byte (single DES) key labelled T. Authentic, but
    // no TDES key is 8 bytes long, so it is refused.
    let block =
        "A0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF354468910379AA5BBA6";
    assert_eq!(
        unwrap_err("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB", block),
        tr31(Tr31Error::KeyLength { got: 8 })
    );
}

// psec tests/test_tr31.py test_header_block_load_exceptions and test_header_load_exceptions.
#[test]
fn malformed_headers_are_typed_errors() {
    for bad in [
        "B0000P0TE00N0100",
        "B0000P0TE00N0100K",
        "B0000P0TE00N0100KS",
        "B0000P0TE00N0100KS1",
        "B0000P0TE00N0100KS1Y",
        "B0000P0TE00N0100KS02",
        "B0000P0TE00N0100KS071",
        "B0000P0TE00N0100KS00",
        "B0000P0TE00N0100KS001S",
        "B0000P0TE00N0100KS0000",
        "B0000P0TE00N0100KS00010H",
        "B0000P0TE00N0100KS000101",
        "B0000P0TE00N0100KS0001FF",
        "B0000P0TE00N0200KS07000T",
        "B0000P0TE00N0200KS04TT03",
        "B0000P0TE00N0200KS04TT00011F",
        "B0000P0TE00N0100**04",
        "B0000P0TE00N0200KS0600??04",
        "B0000P0TE00N0100KS05\u{3}",
        "B0000P0TE00N0200KS04TT05\u{ff}",
        "B0000P0TE00N0100KS0003000A",
    ] {
        assert!(
            matches!(
                Header::parse(bad),
                Err(Error::Tr31(Tr31Error::OptionalBlock(_)))
            ),
            "{bad:?}"
        );
    }
    let field = |f| Err(Error::Tr31(Tr31Error::Field(f)));
    assert_eq!(
        Header::parse("_0000P0TE00N0000"),
        Err(Error::Tr31(Tr31Error::Version))
    );
    assert_eq!(
        Header::parse("B0000"),
        Err(Error::Tr31(Tr31Error::TooShort))
    );
    assert_eq!(
        Header::parse("B0000P0TE00N0X00"),
        Err(Error::Tr31(Tr31Error::BlockCount))
    );
    assert_eq!(
        Header::parse("BX040P0TE00N0000"),
        Err(Error::Tr31(Tr31Error::LengthField))
    );
    assert_eq!(Header::parse("B0000P_TE00N0000"), field("key usage"));
    assert_eq!(Header::parse("B0000P0_E00N0000"), field("algorithm"));
    assert_eq!(Header::parse("B0000P0T_00N0000"), field("mode of use"));
    assert_eq!(
        Header::parse("B0000P0TE0_N0000"),
        field("key version number")
    );
    assert_eq!(Header::parse("B0000P0TE00X0000"), field("exportability"));
    assert_eq!(Header::parse("B0000P0TE00N00_0"), field("key context"));
    assert_eq!(
        Header::parse("B0000P0TE00N0000xx"),
        Err(Error::Tr31(Tr31Error::TrailingData))
    );
    assert!(OptionalBlock::new("PB", "00").is_err());
    assert!(OptionalBlock::new("K", "00").is_err());
    assert!(OptionalBlock::new("KS", "\n").is_err());
}

#[test]
fn wrap_refusals() {
    let mut rng = rng();
    let aes = key("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6");
    let tdes = key("DD7515F2BFC17F85CE48F3CA25CB21F6");
    let k16 = key("3F419E1CB7079442AA37474C2EFBF8B8");
    let h = |s: &str| Header::parse(s).unwrap();
    let wrap_err = |kbpk: &ClearKey, header: &str, k: &ClearKey, rng: &mut StdRng| {
        wrap(kbpk, &h(header), k, rng).map(|_| ())
    };
    let incoherent = |usage: &str, mode: char| {
        tr31(Tr31Error::Incoherent {
            usage: usage.parse().unwrap(),
            mode: mode.to_string().parse().unwrap(),
        })
    };
    assert_eq!(
        wrap_err(&aes, "D0000P0AG00N0000", &k16, &mut rng),
        incoherent("P0", 'G')
    );
    assert_eq!(
        wrap_err(&aes, "D0000C0AE00N0000", &k16, &mut rng),
        incoherent("C0", 'E')
    );
    assert_eq!(
        wrap_err(&aes, "D0000M3TB00N0000", &k16, &mut rng),
        incoherent("M3", 'B')
    );
    assert_eq!(
        wrap_err(&tdes, "B0000K0TC00N0000", &k16, &mut rng),
        incoherent("K0", 'C')
    );
    assert_eq!(
        wrap_err(&tdes, "A0000P0TE00N0000", &k16, &mut rng),
        tr31(Tr31Error::WrapVersion)
    );
    assert_eq!(
        wrap_err(&tdes, "C0000P0TE00N0000", &k16, &mut rng),
        tr31(Tr31Error::WrapVersion)
    );
    let kbpk_len = |version, got| tr31(Tr31Error::KbpkLength { version, got });
    assert_eq!(
        wrap_err(&aes, "B0000P0TE00N0000", &k16, &mut rng),
        kbpk_len('B', 32)
    );
    assert_eq!(
        wrap_err(&k16, "D0000P0AE00N0000", &aes, &mut rng),
        tr31(Tr31Error::WeakKbpk)
    );
    assert_eq!(
        wrap_err(&tdes, "B0000P0AE00N0000", &k16, &mut rng),
        tr31(Tr31Error::WeakKbpk)
    );
    let k20 = ClearKey::from_bytes(&[7u8; 20]).unwrap();
    assert_eq!(
        wrap_err(&aes, "D0000P0TE00N0000", &k20, &mut rng),
        tr31(Tr31Error::KeyLength { got: 20 })
    );
    assert_eq!(
        wrap_err(&aes, "D0000P0AE00N0000", &k20, &mut rng),
        tr31(Tr31Error::KeyLength { got: 20 })
    );
    // 40 optional blocks of 255 characters do not fit in 9999.
    let mut big = h("D0000P0AE00N0000");
    let filler = "x".repeat(251);
    let mut refused = None;
    for _ in 0..40 {
        match big
            .clone()
            .with_block(OptionalBlock::new("XX", &filler).unwrap())
        {
            Ok(next) => big = next,
            Err(e) => refused = Some(e),
        }
    }
    assert_eq!(refused, Some(Error::Tr31(Tr31Error::TooLong)));
    assert_eq!(
        wrap_err(&aes, &big.to_string(), &k16, &mut rng),
        tr31(Tr31Error::TooLong)
    );
}

#[test]
fn errors_and_debug_never_show_keys() {
    let (_, kbpk, block, k, _) = VECTORS[0];
    let (header, got) = unwrap(&key(kbpk), block).unwrap();
    let shown = format!("{header:?} {header} {got:?}");
    assert!(!shown.contains(k) && !shown.contains(kbpk), "{shown}");
    let errs = [
        unwrap(&key(kbpk), &replace(block, 71, '0')).unwrap_err(),
        unwrap(&key(&kbpk[..16]), block).unwrap_err(),
    ];
    for e in errs {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(k) && !text.contains(kbpk), "{text}");
    }
}

/// Every single-character change, deletion, insertion and truncation of valid blocks
/// (published vectors and cofre's own) unwraps to an error or to the original key, and
/// never panics.
#[test]
fn mutated_blocks_never_panic() {
    let mut rng = rng();
    let mut blocks: Vec<(String, String, String)> = VECTORS
        .iter()
        .map(|(_, kbpk, block, k, _)| (kbpk.to_string(), block.to_string(), k.to_string()))
        .collect();
    for (kbpk, header) in [
        (
            "DD7515F2BFC17F85CE48F3CA25CB21F6",
            "B0000M3TC00N0100TS0A12345X",
        ),
        (
            "88E1AB2A2E3DD38C1FA039A536500CC8",
            "D0000K0AB00N0200KS0800AAT104",
        ),
    ] {
        let k = "F039121BEC83D26B169BDCD5B22AAF8F";
        let block = wrap(
            &key(kbpk),
            &Header::parse(header).unwrap(),
            &key(k),
            &mut rng,
        )
        .unwrap();
        blocks.push((kbpk.to_string(), block, k.to_string()));
    }
    let alphabet = ['0', '9', 'A', 'F', 'G', 'a', 'f', 'z', ' ', '~', '\u{e9}'];
    let mut outcomes = [0usize; 2];
    for (kbpk, block, k) in &blocks {
        let kbpk = key(kbpk);
        let mut check = |candidate: &str| match unwrap(&kbpk, candidate) {
            Ok((_, got)) => {
                assert_eq!(&hex::encode_upper(got.expose_secret()), k, "{candidate}");
                outcomes[0] += 1;
            }
            Err(_) => outcomes[1] += 1,
        };
        let chars: Vec<char> = block.chars().collect();
        for i in 0..=chars.len() {
            let (head, tail) = chars.split_at(i);
            let head: String = head.iter().collect();
            let tail: String = tail.iter().collect();
            check(&head);
            for &c in &alphabet {
                check(&format!("{head}{c}{tail}"));
                if let Some(rest) = tail.get(1..) {
                    check(&format!("{head}{c}{rest}"));
                }
            }
            if let Some(rest) = tail.get(1..) {
                check(&format!("{head}{rest}"));
            }
        }
    }
    assert!(outcomes[0] >= blocks.len(), "the unmutated blocks unwrap");
    assert!(outcomes[1] > 10_000);
}
