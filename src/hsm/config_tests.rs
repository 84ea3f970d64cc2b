use super::*;

#[test]
fn example_config_parses() {
    let c = HsmConfig::parse(include_str!("../../keys-example/hsm.toml"), Path::new("/x")).unwrap();
    assert_eq!(c.key_store, Path::new("/x/keys.json"));
    assert_eq!(c.limits.max_in_flight, 256);
    assert_eq!(c.lmk_components.len(), 2);
}

#[test]
fn production_example_parses() {
    let c = HsmConfig::parse(include_str!("../../systemd/hsm.toml"), Path::new("/")).unwrap();
    assert!(
        c.lmk_components.is_empty(),
        "the LMK comes from the credential"
    );
    assert_eq!(c.state_dir, Path::new("/var/lib/cofre-hsm/state"));
}

#[test]
fn bad_configs_name_the_setting() {
    let base = include_str!("../../keys-example/hsm.toml");
    let bad = |from: &str, to: &str| {
        HsmConfig::parse(&base.replace(from, to), Path::new("/x")).unwrap_err()
    };
    assert!(bad("127.0.0.1:7300", "nowhere").contains("listen"));
    assert!(bad("\"30s\"", "\"soon\"").contains("read_timeout"));
    assert!(bad("max_frame = 16384", "max_frame = 4").contains("max_frame"));
    assert!(bad("max_frame = 16384", "max_fram = 1").contains("max_fram"));
    assert!(bad("max_in_flight = 256", "max_in_flight = 0").contains("max_in_flight"));
}

#[test]
fn limits_outside_their_bounds_name_the_setting_and_the_bound() {
    let base = include_str!("../../keys-example/hsm.toml");
    let bad = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        HsmConfig::parse(&base.replace(from, to), Path::new("/x")).unwrap_err()
    };
    assert_eq!(
        bad("pin_limit = 3", "pin_limit = 4000000000"),
        "lockout.pin_limit = 4000000000 is out of bounds (1 to 20)"
    );
    assert!(bad("pin_limit = 3", "pin_limit = 0").contains("lockout.pin_limit = 0"));
    assert!(bad("pin_limit = 3", "pin_limit = 21").contains("(1 to 20)"));
    assert!(bad("dcvv2_limit = 3", "dcvv2_limit = 99").contains("lockout.dcvv2_limit"));
    assert!(bad("limit = 5", "limit = 50").contains("\"555555\" limit = 50"));
    assert!(
        bad(
            "guard_failures_per_minute = 1000",
            "guard_failures_per_minute = 0"
        )
        .contains("lockout.guard_failures_per_minute = 0")
    );
    assert_eq!(
        bad("idle_timeout = \"300s\"", "idle_timeout = \"100000d\""),
        "limits.idle_timeout = \"100000d\" is out of bounds (1s to 1day)"
    );
    assert!(bad("\"30s\"", "\"0s\"").contains("limits.read_timeout"));
    assert!(bad("\"10s\"", "\"2h\"").contains("limits.shutdown_grace"));
    assert!(bad("max_connections = 1024", "max_connections = 100000000").contains("(1 to 65536)"));
    assert!(
        bad("handshake_timeout = \"5s\"", "handshake_timeout = \"1h\"")
            .contains("limits.handshake_timeout")
    );
    assert!(
        bad("answer_buffer = 65536", "answer_buffer = 1024")
            .contains("limits.answer_buffer = 1024")
    );
    assert!(
        bad("max_handshakes = 256", "max_handshakes = 8")
            .contains("limits.max_handshakes_per_source = 64 is out of bounds (1 to 8)")
    );
    let without = |setting: &str| {
        let text: String = base
            .lines()
            .filter(|l| !l.starts_with(setting))
            .map(|l| format!("{l}\n"))
            .collect();
        HsmConfig::parse(
            &text.replace("max_handshakes = 256", "max_handshakes = 8"),
            Path::new("/x"),
        )
    };
    let ok = without("max_handshakes_per_source").unwrap();
    assert_eq!(
        ok.limits.max_handshakes_per_source, 8,
        "defaults to at most max_handshakes"
    );
    let d = HsmConfig::parse(base, Path::new("/x")).unwrap();
    assert_eq!(
        (
            d.limits.handshake_timeout,
            d.limits.max_handshakes,
            d.limits.answer_buffer
        ),
        (Duration::from_secs(5), 256, 65536)
    );
}

#[test]
fn the_pin_policy_is_on_by_default_and_its_bounds_are_named() {
    let base = include_str!("../../keys-example/hsm.toml");
    let c = HsmConfig::parse(base, Path::new("/x")).unwrap();
    assert!(c.pin_policy.enabled && c.pin_policy.repeated && c.pin_policy.caller_digits);
    assert!(c.pin_policy.excluded.contains("2580"));
    let prod = HsmConfig::parse(include_str!("../../systemd/hsm.toml"), Path::new("/")).unwrap();
    assert_eq!(
        prod.pin_policy,
        crate::hsm::pin_policy::PinPolicy {
            excluded: c.pin_policy.excluded.clone(),
            ..Default::default()
        },
        "production has every rule on"
    );
    let without = base.split("[pin_policy]").next().unwrap().to_owned();
    let c = HsmConfig::parse(&without, Path::new("/x")).unwrap();
    assert_eq!(c.pin_policy, crate::hsm::pin_policy::PinPolicy::default());
    let with = |extra: &str| {
        HsmConfig::parse(
            &format!("{without}\n[pin_policy]\n{extra}\n"),
            Path::new("/x"),
        )
    };
    let many: Vec<String> = (0..1001).map(|n| format!("\"{:04}\"", n + 1000)).collect();
    assert_eq!(
        with(&format!("excluded = [{}]", many.join(","))).unwrap_err(),
        "pin_policy.excluded has 1001 entries (at most 1000)"
    );
    let thousand = &many[..1000];
    assert_eq!(
        with(&format!("excluded = [{}]", thousand.join(",")))
            .unwrap()
            .pin_policy
            .excluded
            .len(),
        1000
    );
    for bad in ["\"123\"", "\"12a4\"", "\"1234567890123\"", "\"\""] {
        let e = with(&format!("excluded = [{bad}]")).unwrap_err();
        assert!(e.contains("pin_policy.excluded entry"), "{e}");
    }
    assert!(with("sequence = true").unwrap_err().contains("sequence"));
    let off = with("enabled = false").unwrap();
    assert!(!off.pin_policy.enabled);
}

#[test]
fn the_counter_store_is_redb_by_default_or_a_postgres_url_without_its_password() {
    let base = include_str!("../../keys-example/hsm.toml");
    let with = |lines: &str| {
        HsmConfig::parse(
            &base.replace(
                "state_dir = \"state\"",
                &format!("state_dir = \"state\"\n{lines}"),
            ),
            Path::new("/x"),
        )
    };
    assert_eq!(with("").unwrap().counters, CounterBackend::Redb);
    assert_eq!(
        with("counters = \"redb\"").unwrap().counters,
        CounterBackend::Redb
    );
    assert_eq!(
        with("counters = \"postgres://cofre@db1:5432/cofre\"\ncounters_password_file = \"pw\"")
            .unwrap()
            .counters,
        CounterBackend::Postgres {
            url: "postgres://cofre@db1:5432/cofre".into(),
            password_file: Some(Path::new("/x/pw").to_path_buf()),
        }
    );
    let e = with("counters = \"postgres://cofre:s3cr3t-pw@db1/cofre\"").unwrap_err();
    assert!(e.contains("counters_password_file"), "{e}");
    assert!(
        !e.contains("s3cr3t-pw"),
        "the password is not repeated: {e}"
    );
    for (bad, named) in [
        ("counters = \"mysql://x@y/z\"", "counters must be"),
        ("counters = \"postgres://\"", "names no host"),
        ("counters_password_file = \"pw\"", "counters_password_file"),
    ] {
        let e = with(bad).unwrap_err();
        assert!(e.contains(named), "{bad}: {e}");
    }
}
