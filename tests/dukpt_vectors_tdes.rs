//! TDES DUKPT known answers: the test data of ANSI X9.24-1:2009 Annex A.4 ("DUKPT test
//! data examples"), BDK 0123456789ABCDEFFEDCBA9876543210 and initial KSN
//! FFFF9876543210E00000. PIN 1234, PAN 4012345678909 (ISO 9564 format 0), and the
//! transaction data "4012345678909D987" for the MAC and data-encryption results.
//!
//! The standard is not freely published. Every row is from openemv/dukpt
//! `test/dukpt_tdes_test.c` (Leon Lynch); counters 1-5 (keys, PIN blocks, full 8-byte MACs,
//! encrypted data) agree with moov-io/dukpt `pkg/des/des_test.go`; the IPEK, the counter-1
//! key and PIN block with the pydukpt 0.1.0 documentation, and the PIN block of
//! FFFF9876543210F00000 with varhenn/dukpt_des_pinblock. pydukpt 0.1.0, an independent
//! implementation, also reproduces every key, PIN block and MAC of both tables (checked
//! when they were transcribed; `tests/dukpt_oracle.rs` compares the algorithms on every run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cofre::crypto::cipher::{Algorithm, BlockCipher};
use cofre::crypto::dukpt::tdes::{self, Variant};
use cofre::crypto::dukpt::{self, Bdk, KeyType, Ksn};
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{Format, PinBlock};
use cofre::crypto::{ClearKey, Pin, mac};

const BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const INITIAL_KSN: &str = "FFFF9876543210E00000";
const PAN: &str = "4012345678909";
const DATA: &[u8] = b"4012345678909D987";

/// One row of A.4.2: KSN counter, current transaction key, the format 0 PIN block
/// enciphered under its PIN key, and the leftmost 4 bytes of the X9.19 request and
/// response MACs.
type Row = (u32, &'static str, &'static str, &'static str, &'static str);

// X9.24-1:2009 A.4.2, "initial sequence": counters 1 to 0x15.
#[rustfmt::skip]
const INITIAL_SEQUENCE: [Row; 21] = [
    (0x01, "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A", "9CCC7817", "20364223"),
    (0x02, "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107", "F608A9BC", "D1FCA6BE"),
    (0x03, "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466", "20B59A4F", "BAD4CC9C"),
    (0x04, "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7", "C7BFA6CC", "1EB08AEE"),
    (0x05, "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327", "0202B963", "5CBE3E81"),
    (0x06, "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8", "CF6C72E6", "C60D38E8"),
    (0x07, "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E", "B11EB0D9", "053EFD39"),
    (0x08, "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551", "3679055B", "7FACA91D"),
    (0x09, "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D", "26AA23DC", "37F17B8F"),
    (0x0A, "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE", "1632621C", "CE038CC9"),
    (0x0B, "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA", "76D95CB4", "27C9FA5E"),
    (0x0C, "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286", "BAD9D84D", "6D2ECC6A"),
    (0x0D, "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68", "AAAFB598", "7E40B492"),
    (0x0E, "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950", "4EC79532", "55233989"),
    (0x0F, "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A", "82500D05", "AFE23CBA"),
    (0x10, "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6", "D39D3A59", "9E933C88"),
    (0x11, "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863", "F094AF93", "631E7B39"),
    (0x12, "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D", "A819AF04", "E93F5E27"),
    (0x13, "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60", "79285A17", "FCE7A5A5"),
    (0x14, "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56", "E2B2637F", "A10E94AA"),
    (0x15, "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6", "B2033EBD", "BDA3AEE1"),
];

// X9.24-1:2009 A.4.2, the series that sets each of the low counter bits over 0x0FF800,
// then 0x100000 (whose PIN block is also varhenn/dukpt_des_pinblock's example).
#[rustfmt::skip]
const HIGH_COUNTERS: [Row; 13] = [
    (0x0F_F800, "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35", "23E3CB62", "5776C376"),
    (0x0F_F801, "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D", "97623632", "69D1EF47"),
    (0x0F_F802, "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F", "72608521", "BF7036B7"),
    (0x0F_F804, "35A168695B3BA83307E871C42021DD37", "BA83243305712099", "D86687B7", "645A0A18"),
    (0x0F_F808, "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85", "5E00713D", "E8D8026A"),
    (0x0F_F810, "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA", "1BCCF968", "9623FF45"),
    (0x0F_F820, "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6", "2F6D2191", "FF864D19"),
    (0x0F_F840, "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C", "4DA4CBAC", "3CE7AD50"),
    (0x0F_F880, "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981", "95C43BC2", "73D03F0B"),
    (0x0F_F900, "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430", "D6BEAA71", "5D461B71"),
    (0x0F_FA00, "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF", "93930C9F", "531DA5F9"),
    (0x0F_FC00, "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71", "2917C6EF", "AA8D2DA6"),
    (0x10_0000, "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E", "7DFA9315", "1444BEC3"),
];

/// X9.24-1:2009 A.4.2, counters 1-5 (moov-io/dukpt): full 8-byte X9.19 request and
/// response MACs, and the transaction data zero-padded to 24 bytes, TDES-CBC with a zero
/// IV under the request and response data keys.
const FULL_RESULTS: [(&str, &str, &str, &str); 5] = [
    (
        "9CCC78173FC4FB64",
        "20364223C1FF00FA",
        "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F",
        "1FCC89AF66222F27B903898BB2BC8589CDBFDE5EC6AFCC25",
    ),
    (
        "F608A9BCA6FFC311",
        "D1FCA6BEF05D24D2",
        "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13",
        "5B692A6B1FDD5E25B0DEFAFDE1672E402F8011360CFF3508",
    ),
    (
        "20B59A4FEAC937E3",
        "BAD4CC9CC2AE326C",
        "BD751E65F10E75B6C1D5B1D283496A36C2DE21D993C387A7",
        "345992D4163E4926C927BFD8ABD5D76F087A9CE81D5A27B8",
    ),
    (
        "C7BFA6CC44161828",
        "1EB08AEECE6FF0C2",
        "1118F50947441BBDA3C8C70220021A12EC31CC473F7215F4",
        "418C7413576C0D1819E785D3807AF32334231FDEC23414DB",
    ),
    (
        "0202B96339022058",
        "5CBE3E81D1D2A0FB",
        "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365",
        "7D4C109E49E83355A556AE949EED359F4404E7A2F0167C00",
    ),
];

fn key(h: &str) -> ClearKey {
    ClearKey::from_hex(h).unwrap()
}

fn ksn(counter: u32) -> tdes::Ksn {
    tdes::Ksn::from_hex(INITIAL_KSN)
        .unwrap()
        .with_counter(counter)
        .unwrap()
}

fn upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

// X9.24-1:2009 A.4.1: the initial PIN encryption key of KSN FFFF9876543210E00000.
#[test]
fn initial_key() {
    let bdk = tdes::Bdk::new(&key(BDK)).unwrap();
    let ipek = bdk.initial_key(&ksn(0));
    assert_eq!(
        upper(ipek.key().expose_secret()),
        "6AC292FAA1315B4D858AB3A3D7D5933A"
    );
    // The counter does not enter the initial key: any KSN of the device gives it.
    let later = bdk.initial_key(&ksn(0x10_0000));
    assert_eq!(later.key().expose_secret(), ipek.key().expose_secret());
}

#[test]
fn transaction_keys_pin_blocks_and_macs() {
    let bdk = Bdk::new(Algorithm::Tdes, &key(BDK)).unwrap();
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new("1234").unwrap();
    for (counter, current, block, mac_request, mac_response) in
        INITIAL_SEQUENCE.iter().chain(HIGH_COUNTERS.iter()).copied()
    {
        let k = Ksn::Tdes(ksn(counter));
        let tk = bdk.transaction_key(&k).unwrap();
        assert_eq!(upper(tk.key().expose_secret()), current, "{k}");
        // Format 0 has no random fill: enciphering reproduces the published block.
        let ours = dukpt::encipher_pin_with_fill(
            &bdk,
            &k,
            KeyType::Tdes2,
            Format::Iso0,
            &pin,
            Some(&pan),
            &[0; 8],
        )
        .unwrap();
        assert_eq!(ours.to_hex(), block, "{k}");
        let back = dukpt::decipher_pin(
            &bdk,
            &k,
            KeyType::Tdes2,
            Format::Iso0,
            &PinBlock::from_hex(block).unwrap(),
            Some(&pan),
        )
        .unwrap();
        assert_eq!(back.expose_secret(), "1234");
        let dukpt::TransactionKey::Tdes(tk) = tk else {
            panic!("TDES KSN gives a TDES key")
        };
        let req = mac::retail_mac(&tk.working_key(Variant::MacRequest), DATA).unwrap();
        let resp = mac::retail_mac(&tk.working_key(Variant::MacResponse), DATA).unwrap();
        assert_eq!(upper(&req[..4]), mac_request, "{k}");
        assert_eq!(upper(&resp[..4]), mac_response, "{k}");
    }
}

#[test]
fn full_macs_and_data_encryption() {
    let ipek = tdes::Bdk::new(&key(BDK)).unwrap().initial_key(&ksn(0));
    for (i, (mac_request, mac_response, data_request, data_response)) in
        FULL_RESULTS.iter().enumerate()
    {
        let counter = u32::try_from(i).unwrap() + 1;
        let tk = ipek.transaction_key(&ksn(counter)).unwrap();
        let req = mac::retail_mac(&tk.working_key(Variant::MacRequest), DATA).unwrap();
        let resp = mac::retail_mac(&tk.working_key(Variant::MacResponse), DATA).unwrap();
        assert_eq!(upper(&req), *mac_request);
        assert_eq!(upper(&resp), *mac_response);
        for (variant, expected) in [
            (Variant::DataRequest, data_request),
            (Variant::DataResponse, data_response),
        ] {
            let cipher = BlockCipher::tdes(tk.working_key(variant).expose_secret()).unwrap();
            let mut data = [0u8; 24];
            data[..DATA.len()].copy_from_slice(DATA);
            cipher.encrypt_cbc(&[0; 8], &mut data).unwrap();
            assert_eq!(upper(&data), *expected, "counter {counter} {variant:?}");
        }
    }
}

// Table A-1 masks applied to the counter-1 key: the PIN variant is the key XOR
// 00000000000000FF00000000000000FF, and so on; the data variants are not bare masks.
#[test]
fn variants_are_the_table_a1_masks() {
    let tk = tdes::Bdk::new(&key(BDK))
        .unwrap()
        .initial_key(&ksn(0))
        .transaction_key(&ksn(1))
        .unwrap();
    let base = tk.key().expose_secret().to_vec();
    for (variant, mask) in [
        (Variant::Pin, "00000000000000FF00000000000000FF"),
        (Variant::MacRequest, "000000000000FF00000000000000FF00"),
        (Variant::MacResponse, "00000000FF00000000000000FF000000"),
    ] {
        let expected: Vec<u8> = base
            .iter()
            .zip(hex::decode(mask).unwrap())
            .map(|(k, m)| k ^ m)
            .collect();
        assert_eq!(
            tk.working_key(variant).expose_secret(),
            &expected[..],
            "{variant:?}"
        );
    }
}
