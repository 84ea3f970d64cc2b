//! Rebuilds when a migration is added (`sqlx::migrate!` embeds the folder), and sets
//! `cfg(skip_postgres)` when the run opts out of the PostgreSQL half of the tests
//! with `COFRE_SKIP_POSTGRES=1`: those tests are then reported `ignored` (with that
//! reason) in the test summary instead of passing without running.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(skip_postgres)");
    println!("cargo::rerun-if-env-changed=COFRE_SKIP_POSTGRES");
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=skip_postgres");
    }
}
