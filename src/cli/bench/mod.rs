//! `cofre bench`: load against a daemon (N mutual-TLS connections, D requests in flight
//! on each, for a time or a count), or in process (no network, no TLS), or both in one
//! run to show the ratio "over the wire / crypto alone". `--spawn` starts a daemon on a
//! private copy of the example keys on a free loopback port and stops it afterwards.
//!
//! Requests are built once from the published example keys (keys-example/README.md),
//! with values that verify (the PIN verifications succeed, so no failure is counted;
//! dCVV2 verifications each use a fresh code, so each one commits its use durably).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::client::{Client, ClientConfig};
use crate::crypto::cipher::BlockCipher;
use crate::crypto::pan::Pan;
use crate::crypto::pinblock::{self, Format};
use crate::crypto::{ClearKey, Pin, cvv, dcvv2, pvv};
use crate::protocol::{FieldsWriter, Opcode, Status, Tag};

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
}

const OPERATIONS: &[&str] = &[
    "pin-verify-0",
    "pin-verify-4",
    "cvv-verify",
    "tokenise",
    "dcvv2",
    "mix",
];
const PAN: &str = "4111111111111111";

/// A pre-built request.
#[derive(Clone)]
struct Request {
    op: Opcode,
    body: Vec<u8>,
}

fn body(f: impl FnOnce(&mut FieldsWriter<'_>)) -> Vec<u8> {
    let mut b = Vec::new();
    let mut w = FieldsWriter::new(&mut b);
    f(&mut w);
    b
}

fn hexkey(h: &str) -> Result<ClearKey, String> {
    ClearKey::from_hex(h).map_err(|e| e.to_string())
}

/// Builds the fixed requests of one operation.
fn fixed(name: &str) -> Result<Vec<Request>, String> {
    let e = |e: crate::crypto::Error| e.to_string();
    let pan = Pan::new(PAN).map_err(e)?;
    let pin = Pin::new("1234").map_err(e)?;
    let pvk = pvv::Pvk::new(&hexkey("0123456789ABCDEFFEDCBA9876543210")?).map_err(e)?;
    let pvv = pvv::visa_pvv(&pvk, 1, &pin, &pan).map_err(e)?.to_string();
    let verify = |format: Format, key: &str, cipher: BlockCipher| -> Result<Request, String> {
        let block =
            pinblock::encipher(format, &cipher, &pin, Some(&pan), &mut rand::rng()).map_err(e)?;
        Ok(Request {
            op: Opcode::PinVerify,
            body: body(|w| {
                w.str(Tag::Pan, PAN)
                    .str(Tag::Key, key)
                    .u8(Tag::Format, format.number())
                    .bytes(Tag::PinBlock, block.as_bytes())
                    .str(Tag::Pvk, "pvk.example")
                    .str(Tag::Pvv, &pvv);
            }),
        })
    };
    let tdes = BlockCipher::tdes(
        &hex::decode("0123456789ABCDEFFEDCBA9876543210").map_err(|e| e.to_string())?,
    )
    .map_err(e)?;
    let aes = BlockCipher::aes(
        &hex::decode("00112233445566778899AABBCCDDEEFF").map_err(|e| e.to_string())?,
    )
    .map_err(e)?;
    let cvk = cvv::Cvk::new(&hexkey("0123456789ABCDEFFEDCBA9876543210")?).map_err(e)?;
    let code = cvv::generate(&cvk, &pan, "2812", "201")
        .map_err(e)?
        .expose_secret();
    let cvv_req = Request {
        op: Opcode::CvvVerify,
        body: body(|w| {
            w.str(Tag::Pan, PAN)
                .str(Tag::Key, "cvk.example")
                .str(Tag::Expiry, "2812")
                .str(Tag::ServiceCode, "201")
                .str(Tag::Cvv, &code);
        }),
    };
    let tok = Request {
        op: Opcode::Tokenise,
        body: body(|w| {
            w.str(Tag::Pan, PAN);
        }),
    };
    Ok(match name {
        "pin-verify-0" => vec![verify(Format::Iso0, "zpk.example", tdes)?],
        "pin-verify-4" => vec![verify(Format::Iso4, "zpk.example.aes", aes)?],
        "cvv-verify" => vec![cvv_req],
        "tokenise" => vec![tok],
        "mix" => {
            let p0 = verify(Format::Iso0, "zpk.example", tdes)?;
            let p4 = verify(Format::Iso4, "zpk.example.aes", aes)?;
            vec![
                p0.clone(),
                p0.clone(),
                p0.clone(),
                p0,
                p4,
                cvv_req.clone(),
                cvv_req,
                tok.clone(),
                tok,
            ]
        }
        _ => Vec::new(),
    })
}

/// dCVV2 requests for worker `worker`, request `n`: even n generate, odd n verify a
/// fresh code (its own card per worker, counters rising), so every verify commits.
fn dcvv2_request(worker: usize, n: u64, key: &ClearKey) -> Result<Request, String> {
    let body_digits = format!("4000{worker:011}");
    let check = crate::crypto::pan::luhn_check_digit(body_digits.as_bytes()).ok_or("luhn")?;
    let card = format!("{body_digits}{check}");
    let counter = n / 2 + 1;
    if n.is_multiple_of(2) {
        Ok(Request {
            op: Opcode::Dcvv2Generate,
            body: body(|w| {
                w.str(Tag::Pan, &card)
                    .str(Tag::Key, "dcvv2.example")
                    .str(Tag::Expiry, "2812")
                    .u64(Tag::Counter, counter);
            }),
        })
    } else {
        let code = dcvv2::dcvv2(key, &card, "2812", counter).map_err(|e| e.to_string())?;
        Ok(Request {
            op: Opcode::Dcvv2Verify,
            body: body(|w| {
                w.str(Tag::Pan, &card)
                    .str(Tag::Key, "dcvv2.example")
                    .str(Tag::Expiry, "2812")
                    .u64(Tag::Counter, counter)
                    .u8(Tag::Window, 0)
                    .str(Tag::Dcvv2, code.expose_secret());
            }),
        })
    }
}

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

enum Target {
    Wire(Client),
    Local(Arc<crate::hsm::Shared>),
}

async fn run_operation(
    target: &Arc<Target>,
    name: &str,
    args: &BenchArgs,
    workers: usize,
) -> Result<Report, String> {
    let reqs = Arc::new(fixed(name)?);
    let dkey = Arc::new(hexkey(
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
    )?);
    let deadline = Instant::now() + Duration::from_secs(args.duration.max(1));
    let limit = args.count.unwrap_or(u64::MAX);
    let budget = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (target, reqs, dkey, budget) = (
            Arc::clone(target),
            Arc::clone(&reqs),
            Arc::clone(&dkey),
            Arc::clone(&budget),
        );
        let is_dcvv2 = name == "dcvv2";
        let unique = std::process::id() as usize * 1000 + worker;
        let interval = args
            .rate
            .filter(|r| *r > 0.0)
            .map(|r| Duration::from_secs_f64(workers as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut r = Report::default();
            let mut scratch = Vec::new();
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                let scheduled = match interval {
                    Some(i) => {
                        tokio::time::sleep_until(next.into()).await;
                        let s = next;
                        next += i;
                        s
                    }
                    None => Instant::now(),
                };
                if budget.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
                let req = if is_dcvv2 {
                    match dcvv2_request(unique, n, &dkey) {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                } else {
                    reqs[(n as usize + worker) % reqs.len()].clone()
                };
                n += 1;
                // From the actual send: the timer's 1 ms granularity would otherwise be
                // counted as daemon latency.
                let _ = scheduled;
                let t0 = Instant::now();
                let status = match &*target {
                    Target::Wire(c) => match c
                        .call(req.op, |w| {
                            w.encoded(&req.body);
                        })
                        .await
                    {
                        Ok(resp) => resp.status().map_or_else(
                            || format!("status_{}", resp.status_code),
                            |s| s.name().to_owned(),
                        ),
                        Err(e) => format!("client: {e}"),
                    },
                    Target::Local(shared) => crate::hsm::local::execute(
                        shared,
                        "issuing-host-1",
                        req.op,
                        &req.body,
                        &mut scratch,
                    )
                    .await
                    .name()
                    .to_owned(),
                };
                if status == Status::Ok.name() {
                    r.latencies_us
                        .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    *r.errors.entry(status).or_default() += 1;
                }
            }
            r
        }));
    }
    let mut total = Report::default();
    for t in tasks {
        let r = t.await.map_err(|e| e.to_string())?;
        total.latencies_us.extend(r.latencies_us);
        for (k, v) in r.errors {
            *total.errors.entry(k).or_default() += v;
        }
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
        let workers = args.connections.max(1) * args.depth.max(1);
        let wire_target = if wire {
            let mut cfg = ClientConfig::for_identity(vec![address.clone()], &args.keys.join("pki"), "issuing-host-1");
            cfg.connections = args.connections.max(1);
            cfg.max_in_flight = args.depth.max(1);
            Some(Arc::new(Target::Wire(Client::connect(cfg).await.map_err(|e| e.to_string())?)))
        } else {
            None
        };
        let local_target = if args.in_process {
            let dir = std::env::temp_dir().join(format!("cofre-bench-local-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            copy_dir(&args.keys, &dir).map_err(|e| e.to_string())?;
            let config = crate::hsm::HsmConfig::load(&dir.join("hsm.toml"))?;
            let shared = crate::hsm::server::load(config)?;
            Some((Arc::new(Target::Local(Arc::new(shared))), dir))
        } else {
            None
        };
        for name in &names {
            let mut wire_ops = None;
            if let Some(t) = &wire_target {
                let mut r = run_operation(t, name, &args, workers).await?;
                let (line, ops) = r.line(name, "wire", args.json);
                out.push(line);
                wire_ops = Some(ops);
            }
            if let Some((t, _)) = &local_target {
                let mut r = run_operation(t, name, &args, workers).await?;
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
