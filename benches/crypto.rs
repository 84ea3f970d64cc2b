//! Criterion benches of the crypto hot paths. Run: `cargo bench --bench crypto`.
//! Keys are expanded once outside the timed loop, as the daemon caches key schedules per
//! key version; each iteration is one whole operation as a request would do it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use cofre::crypto::cipher::BlockCipher;
use cofre::crypto::pan::Pan;
use cofre::crypto::pinblock::{self, Format};
use cofre::crypto::pvv::{self, Pvk, Pvv};
use cofre::crypto::token::{Alphabet, TokenKey};
use cofre::crypto::{ClearKey, Pin, cvv, tr31};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;

const TDES: &str = "0123456789ABCDEFFEDCBA9876543210";

fn key(h: &str) -> ClearKey {
    ClearKey::from_hex(h).expect("bench key")
}

fn pin_verify(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let pan = Pan::new("4123456789012345").expect("pan");
    let pin = Pin::new("1234").expect("pin");
    let pvk = Pvk::new(&key(TDES)).expect("pvk");
    let stored: Pvv = pvv::visa_pvv(&pvk, 1, &pin, &pan).expect("pvv");
    let zpk = BlockCipher::tdes(&hex::decode("89E88CF7931444F334BD7547FC3F380C").expect("hex"))
        .expect("zpk");
    let block0 = pinblock::encipher(Format::Iso0, &zpk, &pin, Some(&pan), &mut rng).expect("block");
    c.bench_function("pin_verify_iso0_pvv", |b| {
        b.iter(|| {
            let p = pinblock::decipher(Format::Iso0, &zpk, black_box(&block0), Some(&pan))
                .expect("decipher");
            assert!(pvv::verify_visa_pvv(&pvk, 1, &p, &pan, &stored).expect("verify"));
        })
    });
    let aes = BlockCipher::aes(&[7u8; 16]).expect("aes");
    let block4 = pinblock::encipher(Format::Iso4, &aes, &pin, Some(&pan), &mut rng).expect("block");
    c.bench_function("pin_verify_iso4_pvv", |b| {
        b.iter(|| {
            let p = pinblock::decipher(Format::Iso4, &aes, black_box(&block4), Some(&pan))
                .expect("decipher");
            assert!(pvv::verify_visa_pvv(&pvk, 1, &p, &pan, &stored).expect("verify"));
        })
    });
}

fn cvv_generate(c: &mut Criterion) {
    let cvk = cvv::Cvk::new(&key(TDES)).expect("cvk");
    let pan = Pan::new("4123456789012345").expect("pan");
    c.bench_function("cvv_generate", |b| {
        b.iter(|| cvv::generate(&cvk, black_box(&pan), "8701", "101").expect("cvv"))
    });
}

fn tokenise(c: &mut Criterion) {
    let tk = TokenKey::new(&key("2B7E151628AED2A6ABF7158809CF4F3C")).expect("token key");
    let pan = Pan::new("4111111111111111").expect("pan");
    c.bench_function("ff1_tokenise_numeric", |b| {
        b.iter(|| {
            tk.tokenise(black_box(&pan), Alphabet::Numeric)
                .expect("token")
        })
    });
    let tok = tk.tokenise(&pan, Alphabet::Numeric).expect("token");
    c.bench_function("ff1_detokenise_numeric", |b| {
        b.iter(|| {
            tk.detokenise(black_box(&tok), Alphabet::Numeric)
                .expect("pan")
        })
    });
}

fn tr31_unwrap(c: &mut Criterion) {
    // ANSI X9 TR-31:2018 Annex A.7.4, version D (tests/vectors/published.md).
    let kbpk = key("88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6");
    let block = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";
    c.bench_function("tr31_unwrap_d", |b| {
        b.iter(|| tr31::unwrap(&kbpk, black_box(block)).expect("unwrap"))
    });
}

/// DUKPT as a host runs it per PIN block: from the BDK (the daemon holds only the BDK),
/// initial key, transaction key for the KSN, PIN key, decipher. Counters with the most
/// one-bits a device may use (10 for TDES, 16 for AES) are the slowest derivations.
fn dukpt(c: &mut Criterion) {
    use cofre::crypto::cipher::Algorithm;
    use cofre::crypto::dukpt::{self, Bdk, Ksn};
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let pan = Pan::new("4111111111111111").expect("pan");
    let pin = Pin::new("1234").expect("pin");
    let cases = [
        (
            "tdes",
            Algorithm::Tdes,
            TDES,
            "FFFF9876543210E00001",
            "FFFF9876543210FFF800",
        ),
        (
            "aes128",
            Algorithm::Aes,
            "FEDCBA9876543210F1F1F1F1F1F1F1F1",
            "123456789012345600000001",
            "1234567890123456FFFF0000",
        ),
    ];
    for (name, algorithm, bdk_hex, first, slowest) in cases {
        let bdk = Bdk::new(algorithm, &key(bdk_hex)).expect("bdk");
        for (label, ksn_hex) in [("counter1", first), ("max_one_bits", slowest)] {
            let ksn = Ksn::from_hex(ksn_hex).expect("ksn");
            c.bench_function(&format!("dukpt_{name}_transaction_key_{label}"), |b| {
                b.iter(|| bdk.transaction_key(black_box(&ksn)).expect("derive"))
            });
        }
        let ksn = Ksn::from_hex(slowest).expect("ksn");
        let format = if algorithm == Algorithm::Aes {
            Format::Iso4
        } else {
            Format::Iso0
        };
        let key_type = dukpt::default_pin_key_type(&ksn, format);
        let block = dukpt::encipher_pin(&bdk, &ksn, key_type, format, &pin, Some(&pan), &mut rng)
            .expect("block");
        c.bench_function(&format!("dukpt_{name}_pin_decipher_max_one_bits"), |b| {
            b.iter(|| {
                dukpt::decipher_pin(&bdk, &ksn, key_type, format, black_box(&block), Some(&pan))
                    .expect("decipher")
            })
        });
    }
}

criterion_group!(
    benches,
    pin_verify,
    cvv_generate,
    tokenise,
    tr31_unwrap,
    dukpt
);
criterion_main!(benches);
