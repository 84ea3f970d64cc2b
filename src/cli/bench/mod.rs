//! `cofre bench`: load against a daemon (N mutual-TLS connections, D requests in flight
//! on each, for a time or a count), or in process (no network, no TLS), or both in one
//! run to show the ratio "over the wire / crypto alone". `--spawn` starts a daemon on a
//! private copy of the example keys on a free loopback port and stops it afterwards.
//!
//! The requests are in `requests.rs`; the over-the-wire driver is `wire.rs`; the
//! in-process side runs the daemon's own request path (`hsm::local`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::ClientConfig;
use crate::protocol::Status;

mod requests;
mod wire;

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
/// What one operation measured.
#[derive(Debug, Default)]
struct Report {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    elapsed: Duration,
}

impl Report {
    fn percentile(sorted: &[u32], p: f64) -> u32 {
        if sorted.is_empty() {
            return 0;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    fn line(&mut self, operation: &str, mode: &str, json: bool) -> (String, f64) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len() as u64 + self.errors.values().sum::<u64>();
        let ops = n as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let p = |q| Self::percentile(&self.latencies_us, q);
        let errors: u64 = self.errors.values().sum();
        let text = if json {
            serde_json::json!({
                "operation": operation, "mode": mode, "requests": n,
                "ops_per_sec": ops.round(), "p50_us": p(0.5), "p90_us": p(0.9),
                "p99_us": p(0.99), "p999_us": p(0.999), "errors": errors,
                "errors_by_status": self.errors,
            })
            .to_string()
        } else {
            format!(
                "{operation:<13} {mode:<10} {ops:>10.0} ops/s  p50 {:>6} us  p90 {:>6} us  p99 {:>6} us  p99.9 {:>6} us  errors {errors}{}",
                p(0.5),
                p(0.9),
                p(0.99),
                p(0.999),
                if self.errors.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", self.errors)
                }
            )
        };
        (text, ops)
    }
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

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
    address: &str,
    name: &str,
    args: &BenchArgs,
) -> Result<Report, String> {
    let connections = args.connections.max(1);
    let streams = wire::connect(config, address, connections).await?;
    let load = Arc::new(wire::Load {
        requests: Arc::new(Requests::new(name)?),
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
    name: &str,
    args: &BenchArgs,
) -> Result<Report, String> {
    let workers = args.connections.max(1) * args.depth.max(1);
    let requests = Arc::new(Requests::new(name)?);
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
                let req = match requests.request(worker, n) {
                    Ok(r) => r,
                    Err(e) => {
                        *r.errors.entry(format!("client: {e}")).or_default() += 1;
                        break;
                    }
                };
                n += 1;
                let t0 = Instant::now();
                let status = crate::hsm::local::execute(
                    &shared,
                    "issuing-host-1",
                    req.op,
                    &req.body,
                    &mut scratch,
                )
                .await;
                if status == Status::Ok {
                    r.latencies_us
                        .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    *r.errors.entry(status.name().to_owned()).or_default() += 1;
                }
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

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        if name == "state" {
            continue;
        }
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(name))?;
        } else {
            std::fs::copy(e.path(), to.join(name))?;
        }
    }
    Ok(())
}

struct Spawned {
    child: std::process::Child,
    dir: PathBuf,
    addr: String,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_daemon(keys: &Path) -> Result<Spawned, String> {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("cofre-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(keys, &dir).map_err(|e| format!("copying {}: {e}", keys.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args(["hsm", "--config"])
        .arg(dir.join("hsm.toml"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .env("COFRE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = std::io::BufReader::new(stdout).lines().next();
    let addr = match line {
        Some(Ok(l)) => l.strip_prefix("listening on ").map(str::to_owned),
        _ => None,
    };
    let Some(addr) = addr else {
        let _ = child.kill();
        return Err("the spawned daemon did not start".into());
    };
    Ok(Spawned { child, dir, addr })
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark; returns the report.
pub fn run(args: BenchArgs) -> Result<String, String> {
    if args.api.api {
        return crate::cli::bench_api::run_from(&args);
    }
    let names: Vec<&str> = match args.operation.as_str() {
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
    let spawned = if args.spawn {
        Some(spawn_daemon(&args.keys)?)
    } else {
        None
    };
    let address = spawned
        .as_ref()
        .map_or_else(|| args.address.clone(), |s| s.addr.clone());
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
    if let Some(s) = &spawned
        && let Some(mb) = rss_mb(s.child.id())
    {
        out.push(if args.json {
            serde_json::json!({"daemon_idle_rss_mb": (mb * 10.0).round() / 10.0}).to_string()
        } else {
            format!("daemon idle RSS {mb:.1} MB")
        });
    }
    runtime.block_on(async {
        let wire_target = if wire {
            let mut cfg = ClientConfig::for_identity(vec![address.clone()], &args.keys.join("pki"), "issuing-host-1");
            cfg.connections = args.connections.max(1);
            cfg.max_in_flight = args.depth.max(1);
            Some(cfg)
        } else {
            None
        };
        let local_target = if args.in_process {
            let dir = std::env::temp_dir().join(format!("cofre-bench-local-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            copy_dir(&args.keys, &dir).map_err(|e| e.to_string())?;
            let config = crate::hsm::HsmConfig::load(&dir.join("hsm.toml"))?;
            let shared = crate::hsm::server::load(config)?;
            Some((Arc::new(shared), dir))
        } else {
            None
        };
        for name in &names {
            let mut wire_ops = None;
            if let Some(cfg) = &wire_target {
                let mut r = run_wire(cfg, &address, name, &args).await?;
                let (line, ops) = r.line(name, "wire", args.json);
                out.push(line);
                wire_ops = Some(ops);
            }
            if let Some((shared, _)) = &local_target {
                let mut r = run_local(shared, name, &args).await?;
                let (line, ops) = r.line(name, "in-process", args.json);
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
