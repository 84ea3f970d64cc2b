//! Authentication tests. The worked example's signature was computed independently with
//! Python's `hmac` and `base64` modules; the README shows the same example.

use rand::SeedableRng;

use super::*;

const SECRET: &[u8] = b"example-secret-not-for-production";
const KEY: &str = "example-api-key";
const BODY: &[u8] = br#"{"customerData":{}}"#;
const NOW: u64 = 1_767_225_600_000;

fn auth() -> Authenticator {
    Authenticator::new(
        vec![ApiClient::new(
            "00970",
            KEY,
            Zeroizing::new(SECRET.to_vec()),
        )],
        token_key(),
    )
}

fn token_key() -> crate::api::bearer::BearerKey {
    crate::api::bearer::BearerKey::derive(&[7u8; 32])
}

fn basic(user: &str, secret: &[u8]) -> String {
    let mut raw = user.as_bytes().to_vec();
    raw.push(b':');
    raw.extend_from_slice(secret);
    format!("Basic {}", B64.encode(raw))
}

#[test]
fn worked_example_signature() {
    // Python: base64.b64encode(hmac.new(secret, apikey + id + ts + body, sha256).digest())
    assert_eq!(
        signature(SECRET, KEY, "req-0001", "1767225600000", BODY),
        "OZdF02IZLVjiaWikOv+S3ARK4jjTW7mcoI/Z4KQ3r6k="
    );
}

#[test]
fn token_then_signed_calls_and_every_refusal() {
    let a = auth();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    assert_eq!(
        a.issue_token(Some(&basic(KEY, b"wrong")), None, NOW, &mut rng),
        Err(AuthError::Credentials)
    );
    assert_eq!(
        a.issue_token(Some(&basic("nobody", SECRET)), None, NOW, &mut rng),
        Err(AuthError::Credentials)
    );
    assert_eq!(
        a.issue_token(None, None, NOW, &mut rng),
        Err(AuthError::Header("Authorization"))
    );
    let grant = a
        .issue_token(Some(&basic(KEY, SECRET)), None, NOW, &mut rng)
        .unwrap();
    assert_eq!(grant.expires_in, 900);
    let bearer = format!("Bearer {}", grant.access_token);
    let ts = NOW.to_string();
    let sig = signature(SECRET, KEY, "req-0001", &ts, BODY);
    let good = CallHeaders {
        api_key: Some(KEY),
        client_id: Some("00970"),
        authorization: Some(&bearer),
        timestamp: Some(&ts),
        request_id: Some("req-0001"),
        signature: Some(&sig),
        peer_identity: None,
    };
    assert_eq!(a.check(&good, BODY, NOW + 1000), Ok(("00970", "req-0001")));
    // The scheme in any letter case.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let h = format!("{scheme} {}", grant.access_token);
        let any_case = CallHeaders {
            authorization: Some(&h),
            ..good
        };
        assert_eq!(a.check(&any_case, BODY, NOW), Ok(("00970", "req-0001")));
    }
    let no_token = CallHeaders {
        authorization: Some("Bearer "),
        ..good
    };
    assert_eq!(
        a.check(&no_token, BODY, NOW),
        Err(AuthError::Header("Authorization"))
    );
    // A changed body, a wrong signature, a stale timestamp, an expired or foreign token,
    // another client id, an over-long request id: each refused.
    assert_eq!(a.check(&good, b"{}", NOW), Err(AuthError::Signature));
    assert_eq!(
        a.check(&good, BODY, NOW + TIMESTAMP_WINDOW_MS + 1),
        Err(AuthError::Stale)
    );
    assert_eq!(
        a.check(&good, BODY, NOW + TOKEN_TTL_MS + 1),
        Err(AuthError::Token)
    );
    let other = CallHeaders {
        client_id: Some("00971"),
        ..good
    };
    assert_eq!(a.check(&other, BODY, NOW), Err(AuthError::Credentials));
    let forged = CallHeaders {
        authorization: Some("Bearer made-up"),
        ..good
    };
    assert_eq!(a.check(&forged, BODY, NOW), Err(AuthError::Token));
    let long = "x".repeat(41);
    let too_long = CallHeaders {
        request_id: Some(&long),
        ..good
    };
    assert_eq!(
        a.check(&too_long, BODY, NOW),
        Err(AuthError::Header("X-Client-Request-Id"))
    );
    let unsigned = CallHeaders {
        signature: None,
        ..good
    };
    assert_eq!(
        a.check(&unsigned, BODY, NOW),
        Err(AuthError::Header("Signature"))
    );
    // Errors and Debug never show the secret or a token.
    let shown = format!("{:?} {:?} {:?} {:?}", a, AuthError::Signature, good, grant);
    assert!(!shown.contains("example-secret") && !shown.contains(&grant.access_token));
}

#[test]
fn secrets_are_sealed_under_the_facade_key() {
    let facade = ClearKey::from_array(&[7u8; 32]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let sealed = seal_secret(&facade, SECRET, &mut rng).unwrap();
    assert!(!sealed.contains(&hex::encode_upper(SECRET)));
    assert_eq!(&open_secret(&facade, &sealed).unwrap()[..], SECRET);
    // Another key, or any changed character, is refused.
    assert!(open_secret(&ClearKey::from_array(&[8u8; 32]), &sealed).is_err());
    for i in 0..sealed.len() {
        let mut s = sealed.clone().into_bytes();
        s[i] = if s[i] == b'0' { b'1' } else { b'0' };
        assert!(
            open_secret(&facade, std::str::from_utf8(&s).unwrap()).is_err(),
            "{i}"
        );
    }
    assert!(open_secret(&facade, "zz").is_err());
}

#[test]
fn a_client_bound_to_its_certificate() {
    let a = Authenticator::new(
        vec![
            ApiClient::new("00970", KEY, Zeroizing::new(SECRET.to_vec()))
                .with_tls_identity(Some("bank-1".into())),
        ],
        token_key(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let basic = basic(KEY, SECRET).replace("Basic", "basic");
    assert_eq!(
        a.issue_token(Some(&basic), None, NOW, &mut rng),
        Err(AuthError::Certificate)
    );
    assert_eq!(
        a.issue_token(Some(&basic), Some("bank-2"), NOW, &mut rng),
        Err(AuthError::Certificate)
    );
    let grant = a
        .issue_token(Some(&basic), Some("bank-1"), NOW, &mut rng)
        .unwrap();
    let bearer = format!("Bearer {}", grant.access_token);
    let ts = NOW.to_string();
    let sig = signature(SECRET, KEY, "r", &ts, BODY);
    let h = CallHeaders {
        api_key: Some(KEY),
        client_id: Some("00970"),
        authorization: Some(&bearer),
        timestamp: Some(&ts),
        request_id: Some("r"),
        signature: Some(&sig),
        peer_identity: Some("bank-1"),
    };
    assert!(a.check(&h, BODY, NOW).is_ok());
    let elsewhere = CallHeaders {
        peer_identity: None,
        ..h
    };
    assert_eq!(a.check(&elsewhere, BODY, NOW), Err(AuthError::Certificate));
    assert_eq!(
        Authenticator::basic_api_key(Some(&basic)).as_deref(),
        Some(KEY)
    );
}
