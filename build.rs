//! Rebuilds when a migration is added (`sqlx::migrate!` embeds the folder), and turns the
//! test opt-outs into `cfg`s, so an opted-out test is reported `ignored` (with its reason)
//! in the test summary instead of passing without running:
//!
//! * `COFRE_SKIP_POSTGRES=1` sets `cfg(skip_postgres)`: the PostgreSQL half of the tests
//!   is ignored.
//! * `COFRE_SKIP_ORACLE=1` sets `cfg(skip_oracle)`: the differential tests against the
//!   Python oracles of `tests/oracle/` are ignored. Without it a missing oracle fails them.
//! * `COFRE_SKIP_SCHEMATHESIS=1` sets `cfg(skip_schemathesis)`: the property-based API
//!   test (`tests/api_schemathesis.rs`) is ignored. Without it a missing schemathesis
//!   fails it.

fn main() {
    println!("cargo::rerun-if-changed=migrations");

    println!("cargo::rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo::rerun-if-env-changed=COFRE_SKIP_POSTGRES");
    if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_postgres");
    }

    println!("cargo::rustc-check-cfg=cfg(skip_oracle)");
    println!("cargo::rerun-if-env-changed=COFRE_SKIP_ORACLE");
    if std::env::var("COFRE_SKIP_ORACLE").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_oracle");
    }

    println!("cargo::rustc-check-cfg=cfg(skip_schemathesis)");
    println!("cargo::rerun-if-env-changed=COFRE_SKIP_SCHEMATHESIS");
    if std::env::var("COFRE_SKIP_SCHEMATHESIS").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_schemathesis");
    }
}
