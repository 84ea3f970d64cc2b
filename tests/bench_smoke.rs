//! `cofre bench` as a smoke test: it spawns its own daemon on the example keys, runs
//! the mix over the wire and in process for a second on the realistic workload (a small
//! card set here, with a high share of wrong PINs so cards lock), and prints one JSON
//! object per operation with the documented fields. Every answer is checked by the
//! bench against its prediction (an unexpected one is an error). Figures are printed,
//! never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn bench_spawn_in_process_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "bench",
            "--spawn",
            "--in-process",
            "--duration",
            "1",
            "--operation",
            "mix",
            "--json",
            "--connections",
            "2",
            "--depth",
            "16",
            "--cards",
            "2000",
            "--wrong-pin-share",
            "0.3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let modes: Vec<&str> = lines.iter().filter_map(|v| v["mode"].as_str()).collect();
    assert_eq!(modes, ["wire", "in-process"]);
    for v in lines.iter().filter(|v| v.get("mode").is_some()) {
        for key in [
            "operation",
            "ops_per_sec",
            "p50_us",
            "p99_us",
            "errors",
            "cards_locked",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["errors"], 0, "{v}");
        assert_eq!(v["workload"], "realistic");
        assert_eq!(
            (v["cards"].as_u64(), v["wrong_pin_share"].as_f64()),
            (Some(2000), Some(0.3))
        );
        assert!(v["requests"].as_u64().unwrap() > 0);
        // Wrong PINs were answered as such (predicted, so not errors).
        assert!(
            v["answers"]["verification_failed"].as_u64().unwrap() > 0,
            "{v}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|v| v.get("wire_over_in_process").is_some())
    );
    assert!(lines.iter().any(|v| v.get("daemon_idle_rss_mb").is_some()));
    // dCVV2 (each request built as it is sent, each verify a durable commit) bounded by
    // a count, and a paced run: every request answered, none refused.
    for extra in [
        &["--operation", "dcvv2", "--count", "2000"][..],
        &[
            "--operation",
            "cvv-verify",
            "--rate",
            "5000",
            "--cards",
            "2000",
        ][..],
        &["--operation", "pin-verify-0", "--fixed", "--count", "500"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["bench", "--spawn", "--json"])
            // A run bounded by a count gets a duration it cannot reach first (a loaded
            // machine may send fewer than the count in one second); the paced run is
            // bounded by one second.
            .args(if extra.contains(&"--count") {
                ["--duration", "600"]
            } else {
                ["--duration", "1"]
            })
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        println!("{stdout}");
        let line: serde_json::Value = stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v.get("mode").is_some())
            .unwrap();
        assert_eq!(line["errors"], 0, "{line}");
        let n = line["requests"].as_u64().unwrap();
        if extra.contains(&"--fixed") {
            assert_eq!(line["workload"], "fixed (best case)");
            assert_eq!(n, 500, "{line}");
        } else if extra.contains(&"--count") {
            assert_eq!(n, 2000, "{line}");
        } else {
            // 5,000/s for one second: however fast the machine, pacing sends no
            // more than that (a slow machine may send fewer; that is not asserted).
            assert!(n > 0 && n <= 5_100, "{line}");
        }
    }
    // A non-loopback target is refused without --allow-remote.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["bench", "--address", "192.0.2.1:7300", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// `--payshield`: the same workload through the payShield listener (`EC`, `CY`), every
/// answer matching its prediction (cards lock at their limit through `EC` exactly as
/// the workload predicts), beside the native figures with the ratio.
#[test]
fn bench_spawn_payshield_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cofre"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "bench",
            "--spawn",
            "--payshield",
            "--duration",
            "1",
            "--json",
            "--connections",
            "2",
            "--depth",
            "16",
            "--cards",
            "500",
            "--wrong-pin-share",
            "0.3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let runs: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|v| Some((v["operation"].as_str()?, v["mode"].as_str()?)))
        .collect();
    assert_eq!(
        runs,
        [
            ("pin-verify-0", "wire"),
            ("pin-verify-0", "payshield"),
            ("cvv-verify", "wire"),
            ("cvv-verify", "payshield"),
        ]
    );
    for v in lines.iter().filter(|v| v.get("mode").is_some()) {
        assert_eq!(v["errors"], 0, "{v}");
    }
    let ratios = lines
        .iter()
        .filter(|v| v.get("payshield_over_native").is_some())
        .count();
    assert_eq!(ratios, 2);
}
