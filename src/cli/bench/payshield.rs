//! `cofre bench --spawn --payshield`: the same realistic workload sent through the
//! payShield listener (`protocol/payshield.md`) as `EC` (for `pin-verify-0`) and `CY`
//! (for `cvv-verify`), beside the native protocol's figures on the same daemon, with
//! the ratio. Each native request of the workload is rewritten as the command a switch
//! would send (the card named by its account number, keys as `S` key blocks from the
//! spawned copy's key store); answers come back in order, so each connection keeps a
//! queue of send times.
//!
//! Answers are matched against the workload's prediction through the native status
//! each error code stands for (`00` ok, `01` verification_failed, `39` pin_locked).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cards::{Expected, TOKEN};
use super::report::Report;
use super::requests::{Requests, hexkey};
use crate::client::ClientConfig;
use crate::crypto::token::{Alphabet, TokenKey};
use crate::protocol::{Fields, Opcode, Status, Tag};

/// The S key blocks of the example keys the workload uses.
pub(super) struct Blocks {
    pub(super) zpk: String,
    pub(super) pvk: String,
    pub(super) cvk: String,
}

impl Blocks {
    /// Made from the key store of the daemon's copy (`dir`), under its LMK.
    pub(super) fn from_copy(config: &crate::hsm::HsmConfig) -> Result<Self, String> {
        let lmk = crate::keys::LmkSource::Components(config.lmk_components.clone())
            .load()
            .map_err(|e| e.to_string())?;
        let store =
            crate::keys::KeyStore::load(&config.key_store, &lmk).map_err(|e| e.to_string())?;
        let mut rng = rand::rng();
        let mut block = |id: &str| {
            store
                .payshield_block(&lmk, id, None, &mut rng)
                .map(|(b, _)| b)
                .map_err(|e| e.to_string())
        };
        Ok(Self {
            zpk: block("zpk.example")?,
            pvk: block("pvk.example")?,
            cvk: block("cvk.example")?,
        })
    }
}

/// Rewrites native requests as payShield commands.
pub(super) struct Rewrite {
    blocks: Blocks,
    token: TokenKey,
}

impl Rewrite {
    pub(super) fn new(blocks: Blocks) -> Result<Self, String> {
        let token = TokenKey::new(&hexkey(TOKEN)?).map_err(|e| e.to_string())?;
        Ok(Self { blocks, token })
    }

    fn pan(&self, f: &Fields<'_>) -> Result<String, String> {
        let e = |e: crate::protocol::FieldError| e.to_string();
        if let Some(pan) = f.str(Tag::Pan).map_err(e)? {
            return Ok(pan.to_owned());
        }
        let token = f.req_str(Tag::Token).map_err(e)?;
        let pan = self
            .token
            .detokenise(token, Alphabet::Numeric)
            .map_err(|e| e.to_string())?;
        Ok(pan.digits().to_owned())
    }

    /// Appends the command for one native request (header `0000`).
    fn push(&self, out: &mut Vec<u8>, op: Opcode, body: &[u8]) -> Result<(), String> {
        let f = Fields::parse_strict(body).map_err(|e| e.to_string())?;
        let e = |e: crate::protocol::FieldError| e.to_string();
        let pan = self.pan(&f)?;
        let message = match op {
            Opcode::PinVerify => {
                let account = pan
                    .get(pan.len().saturating_sub(13)..pan.len().saturating_sub(1))
                    .ok_or("short PAN")?;
                format!(
                    "0000EC{}{}{}01{account}{}{}",
                    self.blocks.zpk,
                    self.blocks.pvk,
                    hex::encode_upper(f.req_bytes(Tag::PinBlock).map_err(e)?),
                    f.u8(Tag::Pvki).map_err(e)?.unwrap_or(1),
                    f.req_str(Tag::Pvv).map_err(e)?,
                )
            }
            Opcode::CvvVerify => format!(
                "0000CY{}{}{pan};{}{}",
                self.blocks.cvk,
                f.req_str(Tag::Cvv).map_err(e)?,
                f.req_str(Tag::Expiry).map_err(e)?,
                f.req_str(Tag::ServiceCode).map_err(e)?,
            ),
            other => return Err(format!("{other} has no payShield command here")),
        };
        let len = u16::try_from(message.len()).map_err(|e| e.to_string())?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(message.as_bytes());
        Ok(())
    }
}

/// The native status an error code stands for (others: a code of their own).
fn status_of(error: &[u8]) -> u16 {
    match error {
        b"00" => Status::Ok.code(),
        b"01" => Status::VerificationFailed.code(),
        b"39" => Status::PinLocked.code(),
        other => 1000 + u16::from(other.first().copied().unwrap_or(0)),
    }
}

/// What every connection shares.
pub(super) struct Load {
    pub(super) requests: Arc<Requests>,
    pub(super) rewrite: Arc<Rewrite>,
    pub(super) depth: usize,
    pub(super) deadline: Instant,
    pub(super) sent: AtomicU64,
    pub(super) limit: u64,
}

const STALL: Duration = Duration::from_secs(10);

/// `connections` connections to the payShield listener at `address`, each keeping
/// `depth` commands in flight until the deadline.
pub(super) async fn run(
    config: &ClientConfig,
    address: &str,
    connections: usize,
    load: Arc<Load>,
) -> Result<Report, String> {
    let streams = super::wire::connect(config, &[address.to_owned()], connections).await?;
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(conn, s)| tokio::spawn(drive(s, conn, Arc::clone(&load))))
        .collect();
    let mut total = Report::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| e.to_string())?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

async fn drive<S>(mut stream: S, conn: usize, load: Arc<Load>) -> Report
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let depth = load.depth.max(1);
    let mut report = Report::default();
    let mut queue: VecDeque<(Instant, Expected)> = VecDeque::with_capacity(depth);
    let mut made = vec![0u64; depth];
    // The slot of the k-th command: its previous command (k - depth) was answered, since
    // fewer than `depth` are in flight, so each worker's commands stay in order.
    let mut k = 0usize;
    let mut out = Vec::new();
    let mut input: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut stopping = false;
    let failure = loop {
        let now = Instant::now();
        stopping |= now >= load.deadline;
        while !stopping && queue.len() < depth {
            if load.sent.fetch_add(1, Ordering::Relaxed) >= load.limit {
                stopping = true;
                break;
            }
            let slot = k % depth;
            k += 1;
            let worker = conn * depth + slot;
            let built =
                load.requests
                    .request(worker, made[slot])
                    .and_then(|(op, body, expected)| {
                        load.rewrite.push(&mut out, op, &body).map(|()| expected)
                    });
            match built {
                Ok(expected) => queue.push_back((now, expected)),
                Err(e) => {
                    report.failed(format!("client: {e}"), 1);
                    stopping = true;
                    break;
                }
            }
            made[slot] += 1;
        }
        if !out.is_empty() {
            let w = tokio::time::timeout(STALL, async {
                stream.write_all(&out).await?;
                stream.flush().await
            })
            .await;
            out.clear();
            if !matches!(w, Ok(Ok(()))) {
                break Some("connection: write failed".to_owned());
            }
        }
        if queue.is_empty() {
            break None;
        }
        match tokio::time::timeout(STALL, stream.read_buf(&mut input)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break Some("connection: no answer".to_owned()),
        }
        let arrived = Instant::now();
        let mut consumed = 0;
        while let Some((prefix, after)) = input[consumed..].split_first_chunk::<2>() {
            let len = usize::from(u16::from_be_bytes(*prefix));
            let Some(message) = after.get(..len) else {
                break;
            };
            let Some((sent, expected)) = queue.pop_front() else {
                return report;
            };
            let status = message.get(6..8).map_or(1999, status_of);
            report.record(status, expected, arrived.saturating_duration_since(sent));
            consumed += 2 + len;
        }
        input.drain(..consumed);
    };
    if let Some(e) = failure {
        let lost = queue.len() as u64;
        if lost > 0 {
            report.failed(e, lost);
        }
    }
    report
}
