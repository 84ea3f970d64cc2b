use super::*;
use crate::crypto::pan::generate;
use rand::{RngExt, SeedableRng};

fn numerals(s: &str, radix: u32) -> Vec<u16> {
    s.bytes().map(|c| char_numeral(c, radix).unwrap()).collect()
}
fn text(n: &[u16]) -> String {
    n.iter().map(|&v| numeral_char(v)).collect()
}

// NIST SP 800-38G FF1 samples (csrc.nist.gov "FF1samples.pdf"), samples 1-9.
#[test]
fn ff1_nist_samples() {
    let k128 = "2B7E151628AED2A6ABF7158809CF4F3C";
    let k192 = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F";
    let k256 = "2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94";
    let t10 = "39383736353433323130";
    let t36 = "3737373770717273373737";
    let cases = [
        (k128, 10, "", "0123456789", "2433477484"),
        (k128, 10, t10, "0123456789", "6124200773"),
        (k128, 36, t36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"),
        (k192, 10, "", "0123456789", "2830668132"),
        (k192, 10, t10, "0123456789", "2496655549"),
        (k192, 36, t36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
        (k256, 10, "", "0123456789", "6657667009"),
        (k256, 10, t10, "0123456789", "1001623463"),
        (k256, 36, t36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
    ];
    for (i, (key, radix, tweak, pt, ct)) in cases.into_iter().enumerate() {
        let key = ClearKey::from_hex(key).unwrap();
        let tweak = hex::decode(tweak).unwrap();
        let out = ff1_encrypt(&key, radix, &tweak, &numerals(pt, radix)).unwrap();
        assert_eq!(text(&out), ct, "NIST FF1 sample {}", i + 1);
        let back = ff1_decrypt(&key, radix, &tweak, &out).unwrap();
        assert_eq!(text(&back), pt);
    }
}

fn key() -> TokenKey {
    TokenKey::new(&ClearKey::from_hex("2B7E151628AED2A6ABF7158809CF4F3C").unwrap()).unwrap()
}

#[test]
fn numeric_tokens_keep_frame_and_never_pass_luhn() {
    let k = key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for len in 12..=19 {
        let lead = kept_lead(len, Alphabet::Numeric).unwrap();
        assert_eq!(lead, (len - 10).min(6));
        for _ in 0..300 {
            let pan = generate("411111", len, &mut rng).unwrap();
            let tok = k.tokenise(&pan, Alphabet::Numeric).unwrap();
            assert_eq!(tok.len(), len);
            assert_eq!(&tok[..lead], &pan.digits()[..lead]);
            assert_eq!(&tok[len - 4..], pan.last4());
            assert!(!luhn_valid(tok.as_bytes()), "token must fail Luhn");
            assert_ne!(tok, pan.digits());
            assert_eq!(
                k.tokenise(&pan, Alphabet::Numeric).unwrap(),
                tok,
                "deterministic"
            );
            assert_eq!(k.detokenise(&tok, Alphabet::Numeric).unwrap(), pan);
        }
    }
}

#[test]
fn alphanumeric_tokens_always_have_a_letter() {
    let k = key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for len in 12..=19 {
        let lead = kept_lead(len, Alphabet::Alphanumeric).unwrap();
        assert_eq!(lead, (len - 8).min(6));
        for _ in 0..300 {
            let pan = generate("522222", len, &mut rng).unwrap();
            let tok = k.tokenise(&pan, Alphabet::Alphanumeric).unwrap();
            assert_eq!(tok.len(), len);
            assert!(tok.bytes().any(|b| b.is_ascii_lowercase()));
            assert_eq!(&tok[..lead], &pan.digits()[..lead]);
            assert_eq!(k.detokenise(&tok, Alphabet::Alphanumeric).unwrap(), pan);
            assert_eq!(
                k.detokenise(&tok.to_ascii_uppercase(), Alphabet::Alphanumeric)
                    .unwrap(),
                pan
            );
        }
    }
}

#[test]
fn the_key_prints_redacted() {
    assert_eq!(format!("{:?}", key()), "TokenKey([REDACTED])");
}

#[test]
fn different_keys_give_different_tokens_and_refusals() {
    let k1 = key();
    let k2 = TokenKey::new(&ClearKey::from_bytes(&[9u8; 32]).unwrap()).unwrap();
    let pan = Pan::new("4111111111111111").unwrap();
    let t1 = k1.tokenise(&pan, Alphabet::Numeric).unwrap();
    assert_ne!(t1, k2.tokenise(&pan, Alphabet::Numeric).unwrap());
    // A Luhn-valid string is never a numeric token.
    assert!(
        k1.detokenise("4111111111111111", Alphabet::Numeric)
            .is_err()
    );
    // Out-of-alphabet, short and frame-breaking inputs.
    assert!(
        k1.detokenise("41111111111x1112", Alphabet::Numeric)
            .is_err()
    );
    assert!(k1.detokenise("411111111", Alphabet::Numeric).is_err());
    assert!(
        k1.detokenise("a111111111111112", Alphabet::Alphanumeric)
            .is_err()
    );
    assert!(
        k1.detokenise("4111111111111112", Alphabet::Alphanumeric)
            .is_err()
    );
    // Rules on the input PAN.
    assert!(
        k1.tokenise(&Pan::new("4111111111111112").unwrap(), Alphabet::Numeric)
            .is_err()
    );
    assert!(
        k1.tokenise(&Pan::new("411111111111112").unwrap(), Alphabet::Numeric)
            .is_err(),
        "a numeric token needs a Luhn-valid PAN, whatever its length"
    );
    assert!(TokenKey::new(&ClearKey::from_bytes(&[1u8; 20]).unwrap()).is_err());
}

#[test]
fn detokenise_is_total_on_noise() {
    let k = key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut refused = 0;
    for _ in 0..2000 {
        let noise = generate("411111", 16, &mut rng).unwrap();
        // Flip the check digit so the string fails Luhn and looks like a token.
        let mut s = noise.digits().as_bytes().to_vec();
        s[15] = b'0' + (s[15] - b'0' + 1) % 10;
        let s = String::from_utf8(s).unwrap();
        match k.detokenise(&s, Alphabet::Numeric) {
            Ok(pan) => assert_eq!(k.tokenise(&pan, Alphabet::Numeric).unwrap(), s),
            Err(_) => refused += 1,
        }
    }
    // Only strings that walk back to a bumped Luhn-valid PAN are accepted; most are not.
    assert!(refused > 1000, "refused {refused}");
}

// The same for alphanumeric tokens: random middles with a letter walk back to anything,
// and only a middle whose first numeral is 10-19 and the rest digits is a PAN.
#[test]
fn alphanumeric_detokenise_is_total_on_noise() {
    let k = key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..2000 {
        let mut middle: Vec<u8> = (0..6)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        middle[rng.random_range(0..6)] = alphabet[rng.random_range(10..alphabet.len())];
        let s = format!("522222{}4444", String::from_utf8(middle).unwrap());
        match k.detokenise(&s, Alphabet::Alphanumeric) {
            Ok(pan) => {
                accepted += 1;
                assert_eq!(k.tokenise(&pan, Alphabet::Alphanumeric).unwrap(), s);
            }
            Err(_) => refused += 1,
        }
    }
    // About 1 in 2,000 random middles decrypts to a PAN's frame; the rest are refused,
    // never a panic (a first numeral below 10 must not be "un-bumped" by subtraction).
    assert!(refused > 1900, "{accepted} accepted, {refused} refused");
}

// Value computed independently with Python's hmac/hashlib:
// hmac.new(b"Jefe", b"cofre/lookup/v1:4111111111111111", hashlib.sha256).hexdigest()
#[test]
fn lookup_token_is_framed_hmac() {
    let key = ClearKey::from_bytes(b"Jefe").unwrap();
    let pan = Pan::new("4111111111111111").unwrap();
    assert_eq!(
        lookup_token(&key, &pan),
        "75af41ecdf9caf59f76cbca21535dd6ae0ccaa6e0dc4d7bba52f543d45424f75"
    );
    assert_eq!(lookup_token(&key, &pan).len(), 64);
}

// Tokens under the NIST FF1 sample key 2B7E1516..4F3C (the example token key), computed
// independently by tests/oracle/ff1_tokens.py (FF1 written from NIST SP 800-38G, checked
// there against the NIST samples; the construction from protocol/README.md, "PAN
// tokens"). The 16-digit rows are the tokens every earlier cofre made: unchanged.
#[test]
fn token_construction_vectors() {
    let k = key();
    for (pan, numeric, alphanumeric) in [
        ("500000000017", "501736850017", "5000fe7u0017"),
        ("4222222222222", "4225878382222", "42222b7kl2222"),
        ("30569309025904", "30561922575904", "305693cqqo5904"),
        ("378282246310005", "378280564990005", "378282u36xi0005"),
        ("4111111111111111", "4111117668871111", "411111i5bhjl1111"),
        ("6011000990139424", "6011000521929424", "601100lfwcn59424"),
    ] {
        let p = Pan::new(pan).unwrap();
        assert_eq!(k.tokenise(&p, Alphabet::Numeric).unwrap(), numeric, "{pan}");
        assert_eq!(
            k.tokenise(&p, Alphabet::Alphanumeric).unwrap(),
            alphanumeric,
            "{pan}"
        );
        assert_eq!(k.detokenise(numeric, Alphabet::Numeric).unwrap(), p);
        assert_eq!(
            k.detokenise(alphanumeric, Alphabet::Alphanumeric).unwrap(),
            p
        );
    }
    assert_eq!(kept_lead(11, Alphabet::Numeric), None);
    assert_eq!(kept_lead(20, Alphabet::Alphanumeric), None);
    // Whitespace and non-ASCII are not token characters.
    assert!(
        k.detokenise(" 4111117668871111", Alphabet::Numeric)
            .is_err()
    );
    assert!(k.detokenise("411111766887111é", Alphabet::Numeric).is_err());
}
