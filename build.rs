//! Turns the test opt-outs into `cfg`s, so an opted-out test is reported `ignored` (with
//! its reason) in the test summary instead of passing without running.
//!
//! * `COFRE_SKIP_ORACLE=1` sets `cfg(skip_oracle)`: the differential tests against the
//!   Python oracles of `tests/oracle/` are ignored. Without it a missing oracle fails them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_oracle)");
    println!("cargo::rerun-if-env-changed=COFRE_SKIP_ORACLE");
    if std::env::var("COFRE_SKIP_ORACLE").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_oracle");
    }
}
