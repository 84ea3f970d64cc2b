//! `cofre bench`: load against a daemon (N mutual-TLS connections, D requests in flight
//! on each, for a time or a count), or in process (no network, no TLS), or both in one
//! run to show the ratio "over the wire / crypto alone". `--spawn` starts a daemon on a
//! private copy of the example keys on a free loopback port and stops it afterwards.
//!
//! The workload is realistic by default (`cards.rs`: many cards, wrong PINs, PAN and
//! token; every answer checked against its prediction); `--fixed` is the old best case.
//! The requests are in `requests.rs`; the over-the-wire driver is `wire.rs`; the
//! in-process side runs the daemon's own request path (`hsm::local`); `spawn.rs` makes
//! the daemons; `report.rs` the figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::ClientConfig;

mod cards;
mod payshield;
mod report;
mod requests;
pub(crate) mod spawn;
mod wire;

use cards::Workload;
use report::Report;
use requests::Requests;

/// Arguments of `cofre bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Daemon address (ignored with --spawn).
    #[arg(long, default_value = "127.0.0.1:7300")]
    pub address: String,
    /// Start a daemon on the example keys on a free loopback port, and stop it after.
    #[arg(long)]
    pub spawn: bool,
    /// Also run the operations in process (with --spawn or a daemon) and print the
    /// ratio; alone, run only in process.
    #[arg(long)]
    pub in_process: bool,
    /// Connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 64)]
    pub depth: usize,
    /// Seconds per operation.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Stop each operation after this many requests (whichever comes first).
    #[arg(long)]
    pub count: Option<u64>,
    /// Target rate, requests per second in total (default: as fast as the in-flight
    /// window allows). Each worker paces its sends; latency is measured from the send.
    #[arg(long)]
    pub rate: Option<f64>,
    /// pin-verify-0, pin-verify-4, cvv-verify, tokenise, dcvv2, mix, or all.
    #[arg(long, default_value = "all")]
    pub operation: String,
    /// One JSON object per operation per line.
    #[arg(long)]
    pub json: bool,
    /// The example set (keys and PKI).
    #[arg(long, default_value = "keys-example")]
    pub keys: PathBuf,
    /// Allow a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// The old best case instead of the realistic workload: one fixed request per
    /// operation (one PAN, PIN 1234, always right), so no try is ever counted.
    #[arg(long)]
    pub fixed: bool,
    /// Distinct cards of the realistic workload.
    #[arg(long, default_value_t = 100_000)]
    pub cards: usize,
    /// Share of PIN verifications with a wrong PIN (0 to 1), spread over the cards.
    #[arg(long, default_value_t = 0.05)]
    pub wrong_pin_share: f64,
    /// With --spawn: also run pin-verify-0 and cvv-verify through the payShield
    /// listener (`EC`, `CY`; protocol/payshield.md) and print the ratio to the native
    /// protocol.
    #[arg(long, requires = "spawn")]
    pub payshield: bool,
    /// With --spawn: the spawned daemons keep their counters in this PostgreSQL database
    /// (`postgres://user@host/db`, no password in it; an empty database of its own).
    #[arg(long)]
    pub counters: Option<String>,
    /// The password of --counters, in a file.
    #[arg(long)]
    pub counters_password_file: Option<PathBuf>,
    /// With --spawn and --counters: two daemons on that one store, the connections
    /// shared between them in turn.
    #[arg(long)]
    pub pair: bool,
    /// The REST facade benchmark (`--api`, see `cli::bench_api`).
    #[command(flatten)]
    pub api: crate::cli::bench_api::ApiBenchArgs,
}

const OPERATIONS: &[&str] = &[
    "pin-verify-0",
    "pin-verify-4",
    "cvv-verify",
    "tokenise",
    "dcvv2",
    "mix",
];
/// The operations the payShield listener runs (as `EC` and `CY`).
const PAYSHIELD_OPERATIONS: &[&str] = &["pin-verify-0", "cvv-verify"];

/// Time between two sends of one sender when `--rate` paces the load over `senders`.
fn interval(args: &BenchArgs, senders: usize) -> Option<Duration> {
    args.rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(senders as f64 / r))
}

/// One operation over the wire: `--connections` fresh connections, each driven by
/// its own task (wire.rs).
async fn run_wire(
    config: &ClientConfig,
    address: &[String],
    requests: Requests,
    args: &BenchArgs,
) -> Result<Report, String> {
    let connections = args.connections.max(1);
    let streams = wire::connect(config, address, connections).await?;
    let load = Arc::new(wire::Load {
        requests: Arc::new(requests),
        depth: args.depth.max(1),
        deadline: Instant::now() + Duration::from_secs(args.duration.max(1)),
        sent: AtomicU64::new(0),
        limit: args.count.unwrap_or(u64::MAX),
        interval: interval(args, connections),
    });
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(conn, stream)| tokio::spawn(wire::drive(stream, conn, Arc::clone(&load))))
        .collect();
    let mut total = Report::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| e.to_string())?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One operation in process: `connections x depth` tasks, each executing one request
/// at a time through the daemon's own request path (`hsm::local`).
async fn run_local(
    shared: &Arc<crate::hsm::Shared>,
    requests: Requests,
    args: &BenchArgs,
) -> Result<Report, String> {
    let workers = args.connections.max(1) * args.depth.max(1);
    let requests = Arc::new(requests);
    let deadline = Instant::now() + Duration::from_secs(args.duration.max(1));
    let limit = args.count.unwrap_or(u64::MAX);
    let budget = Arc::new(AtomicU64::new(0));
    let interval = interval(args, workers);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (shared, requests, budget) = (
            Arc::clone(shared),
            Arc::clone(&requests),
            Arc::clone(&budget),
        );
        tasks.push(tokio::spawn(async move {
            let mut r = Report::default();
            let mut scratch = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += i;
                }
                if budget.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
                let (op, body, expected) = match requests.request(worker, n) {
                    Ok(r) => r,
                    Err(e) => {
                        r.failed(format!("client: {e}"), 1);
                        break;
                    }
                };
                n += 1;
                let t0 = Instant::now();
                let status =
                    crate::hsm::local::execute(&shared, "issuing-host-1", op, &body, &mut scratch)
                        .await;
                r.record(status.code(), expected, t0.elapsed());
            }
            r
        }));
    }
    let mut total = Report::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| e.to_string())?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Runs the benchmark; returns the report.
pub fn run(args: BenchArgs) -> Result<String, String> {
    if args.api.api {
        return crate::cli::bench_api::run_from(&args);
    }
    let names: Vec<&str> = match args.operation.as_str() {
        "all" if args.payshield => PAYSHIELD_OPERATIONS.to_vec(),
        op if args.payshield && !PAYSHIELD_OPERATIONS.contains(&op) => {
            return Err(format!(
                "--payshield runs {}",
                PAYSHIELD_OPERATIONS.join(" and ")
            ));
        }
        "all" => OPERATIONS.to_vec(),
        op if OPERATIONS.contains(&op) => vec![op],
        op => {
            return Err(format!(
                "unknown operation {op:?} (one of: {}, all)",
                OPERATIONS.join(", ")
            ));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let wire = args.spawn || !args.in_process;
    if !args.fixed && !(0.0..=1.0).contains(&args.wrong_pin_share) {
        return Err("--wrong-pin-share must be between 0 and 1".into());
    }
    let workload = (!args.fixed).then_some(Workload {
        cards: args.cards,
        wrong_pin_share: args.wrong_pin_share,
    });
    let workers = args.connections.max(1) * args.depth.max(1);
    let lockout = crate::hsm::HsmConfig::load(&args.keys.join("hsm.toml"))?.lockout;
    if (args.pair || args.counters.is_some()) && !args.spawn {
        return Err("--counters and --pair apply to the daemons --spawn starts".into());
    }
    if args.pair && args.counters.is_none() {
        return Err("--pair needs --counters (a pair shares a PostgreSQL counter store)".into());
    }
    let shared_store = args.counters.as_ref().map(|url| spawn::SharedStore {
        url: url.clone(),
        password_file: args.counters_password_file.clone(),
    });
    let mut spawned = Vec::new();
    if args.spawn {
        let first =
            spawn::spawn_daemon(&args.keys, shared_store.as_ref(), 0, None, args.payshield)?;
        let ledger = first.dir.clone();
        spawned.push(first);
        if args.pair {
            let second =
                spawn::spawn_daemon(&args.keys, shared_store.as_ref(), 1, Some(&ledger), false)?;
            spawned.push(second);
        }
    }
    let addresses: Vec<String> = if spawned.is_empty() {
        vec![args.address.clone()]
    } else {
        spawned.iter().map(|s| s.addr.clone()).collect()
    };
    let address = addresses.first().cloned().unwrap_or_default();
    if wire && !args.allow_remote {
        let ip = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(h, _)| h)
            .trim_matches(['[', ']']);
        let loopback = ip == "localhost"
            || ip
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if !loopback {
            return Err(format!(
                "{address} is not loopback; pass --allow-remote to load a remote daemon"
            ));
        }
    }
    let mut out = Vec::new();
    if let Some(s) = spawned.first()
        && let Some(mb) = spawn::rss_mb(s.child.id())
    {
        out.push(if args.json {
            serde_json::json!({"daemon_idle_rss_mb": (mb * 10.0).round() / 10.0}).to_string()
        } else {
            format!("daemon idle RSS {mb:.1} MB")
        });
    }
    runtime.block_on(async {
        let wire_target = if wire {
            let mut cfg = ClientConfig::for_identity(addresses.clone(), &args.keys.join("pki"), "issuing-host-1");
            cfg.connections = args.connections.max(1);
            cfg.max_in_flight = args.depth.max(1);
            Some(cfg)
        } else {
            None
        };
        let local_target = if args.in_process {
            let dir = std::env::temp_dir().join(format!("cofre-bench-local-{}", std::process::id()));
            let config = spawn::private_copy(&args.keys, &dir, "cofre-bench")?;
            let shared = crate::hsm::server::load(config).map_err(|e| e.to_string())?;
            Some((Arc::new(shared), dir))
        } else {
            None
        };
        let rewrite = match spawned.first().and_then(|s| s.payshield.as_ref()) {
            Some((_, config)) => Some(Arc::new(payshield::Rewrite::new(
                payshield::Blocks::from_copy(config)?,
            )?)),
            None => None,
        };
        for name in &names {
            let mut wire_ops = None;
            if let Some(cfg) = &wire_target {
                let requests = Requests::new(name, workload, workers, &lockout)?;
                let w = requests.workload();
                let mut r = run_wire(cfg, &addresses, requests, &args).await?;
                let (line, ops) = r.line(name, "wire", w, args.json);
                out.push(line);
                wire_ops = Some(ops);
            }
            if let (Some(rewrite), Some(cfg), Some(s)) = (&rewrite, &wire_target, spawned.first())
                && let Some((ps_address, _)) = &s.payshield
            {
                let requests = Requests::new(name, workload, workers, &lockout)?;
                let w = requests.workload();
                let load = Arc::new(payshield::Load {
                    requests: Arc::new(requests),
                    rewrite: Arc::clone(rewrite),
                    depth: args.depth.max(1),
                    deadline: Instant::now() + Duration::from_secs(args.duration.max(1)),
                    sent: AtomicU64::new(0),
                    limit: args.count.unwrap_or(u64::MAX),
                });
                let mut r = payshield::run(cfg, ps_address, args.connections.max(1), load).await?;
                let (line, ops) = r.line(name, "payshield", w, args.json);
                out.push(line);
                if let Some(native) = wire_ops {
                    let ratio = ops / native.max(1e-9);
                    out.push(if args.json {
                        serde_json::json!({"operation": name, "payshield_over_native": (ratio * 1000.0).round() / 1000.0}).to_string()
                    } else {
                        format!("{name:<13} ratio      payshield / native = {ratio:.2}")
                    });
                }
            }
            if let Some((shared, _)) = &local_target {
                let requests = Requests::new(name, workload, workers, &lockout)?;
                let w = requests.workload();
                let mut r = run_local(shared, requests, &args).await?;
                let (line, ops) = r.line(name, "in-process", w, args.json);
                out.push(line);
                if let Some(w) = wire_ops {
                    let ratio = w / ops.max(1e-9);
                    out.push(if args.json {
                        serde_json::json!({"operation": name, "wire_over_in_process": (ratio * 1000.0).round() / 1000.0}).to_string()
                    } else {
                        format!("{name:<13} ratio      over the wire / in process = {ratio:.2}")
                    });
                }
            }
        }
        if let Some((_, dir)) = local_target {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok::<(), String>(())
    })?;
    drop(spawned);
    Ok(out.join("\n"))
}
