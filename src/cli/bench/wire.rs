//! The over-the-wire side of `cofre bench`. Each connection is driven by one task that
//! owns its mutual-TLS stream: it keeps up to `depth` requests in flight, sends every
//! request it may send in one TLS write, takes whatever responses have arrived in one
//! read, and matches each response to its send time by request id. There is no task,
//! channel or allocation per request: the generator shares the machine with the daemon
//! it measures, so every cycle it spends is taken from the daemon's figures.
//!
//! A request id is the request's slot in the window (low 16 bits) and the slot's
//! generation (high 16 bits), so a response that matches no request in flight is
//! recognised and ends the connection rather than corrupting the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::cards::Expected;
use super::report::Report;
use super::requests::Requests;
use crate::client::ClientConfig;
use crate::protocol::{
    ABSOLUTE_MAX_FRAME, LENGTH_PREFIX, RESPONSE_HEADER_LEN, decode_response, frame_length,
};

/// Longest wait for the next response (or for a write) before the connection is given
/// up and its requests in flight are counted as errors.
const STALL: Duration = Duration::from_secs(10);
/// The window cannot be wider than the slot field of a request id.
const MAX_DEPTH: usize = 1 << 16;

/// What every connection of one operation's run shares.
pub(super) struct Load {
    pub(super) requests: Arc<Requests>,
    /// Requests in flight per connection.
    pub(super) depth: usize,
    /// No request is sent after this instant; those in flight are still awaited.
    pub(super) deadline: Instant,
    /// Requests sent by all connections, against `limit`.
    pub(super) sent: AtomicU64,
    pub(super) limit: u64,
    /// Time between two sends on one connection, when the rate is paced.
    pub(super) interval: Option<Duration>,
}

/// Opens `n` mutual-TLS connections as the client of `config`, to each of `addresses`
/// in turn (a pair of daemons gets every other connection).
pub(super) async fn connect(
    config: &ClientConfig,
    addresses: &[String],
    n: usize,
) -> Result<Vec<TlsStream<TcpStream>>, String> {
    let (tls, name) = crate::client::tls_connector(config).map_err(|e| e.to_string())?;
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let address = addresses
            .get(i % addresses.len().max(1))
            .ok_or("no daemon address")?;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("{address}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream = tokio::time::timeout(STALL, tls.connect(name.clone(), tcp))
            .await
            .map_err(|_| format!("{address}: no TLS handshake within {STALL:?}"))?
            .map_err(|e| format!("{address}: TLS: {e}"))?;
        streams.push(stream);
    }
    Ok(streams)
}

/// The requests in flight on one connection.
struct Window {
    /// Send time of the request in each slot; `None` while the slot is free.
    sent_at: Vec<Option<Instant>>,
    generation: Vec<u16>,
    /// Requests made in each slot so far (a dCVV2 slot is one card: its counter).
    made: Vec<u64>,
    /// The answer the request in each slot must get.
    expected: Vec<Expected>,
    free: Vec<usize>,
}

impl Window {
    fn new(depth: usize) -> Self {
        Self {
            sent_at: vec![None; depth],
            generation: vec![0; depth],
            made: vec![0; depth],
            expected: vec![Expected::OK; depth],
            free: (0..depth).rev().collect(),
        }
    }

    fn in_flight(&self) -> usize {
        self.sent_at.len() - self.free.len()
    }

    /// Takes a free slot for a request sent at `now`; returns the slot and the id. The
    /// generation skips 0, so no request id is ever 0 (the id of the daemon's
    /// frame-error answers).
    fn take(&mut self, now: Instant) -> Option<(usize, u32)> {
        let slot = self.free.pop()?;
        self.generation[slot] = self.generation[slot].wrapping_add(1).max(1);
        self.sent_at[slot] = Some(now);
        let id = (u32::from(self.generation[slot]) << 16) | slot as u32;
        Some((slot, id))
    }

    /// Gives back a slot whose request could not be built.
    fn untake(&mut self, slot: usize) {
        self.sent_at[slot] = None;
        self.free.push(slot);
    }

    /// Frees the slot a response id names and returns its send time and expected
    /// answer; `None` if the id names no request in flight.
    fn answer(&mut self, id: u32) -> Option<(Instant, Expected)> {
        let slot = (id & 0xFFFF) as usize;
        let generation = (id >> 16) as u16;
        if *self.generation.get(slot)? != generation {
            return None;
        }
        let sent = self.sent_at.get_mut(slot)?.take()?;
        self.free.push(slot);
        Some((sent, *self.expected.get(slot)?))
    }
}

/// Drives connection number `conn` until the deadline or the request limit, then waits
/// for the answers still in flight and closes the connection. A broken connection
/// counts its requests in flight as errors and ends early.
pub(super) async fn drive(
    mut stream: TlsStream<TcpStream>,
    conn: usize,
    load: Arc<Load>,
) -> Report {
    let depth = load.depth.clamp(1, MAX_DEPTH);
    let mut window = Window::new(depth);
    let mut report = Report::default();
    let mut out = Vec::with_capacity(depth * 96);
    let mut input: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut consumed = 0;
    let mut next_send = Instant::now();
    let mut stopping = false;
    let failure = loop {
        if !stopping {
            let now = Instant::now();
            stopping = now >= load.deadline;
            while !stopping && !window.free.is_empty() {
                if let Some(interval) = load.interval {
                    if next_send > now {
                        break;
                    }
                    next_send += interval;
                }
                if load.sent.fetch_add(1, Ordering::Relaxed) >= load.limit {
                    stopping = true;
                    break;
                }
                let Some((slot, id)) = window.take(now) else {
                    break;
                };
                let worker = conn * depth + slot;
                let n = window.made[slot];
                match load.requests.push_frame(&mut out, worker, n, id) {
                    Ok(expected) => window.expected[slot] = expected,
                    Err(e) => {
                        window.untake(slot);
                        report.failed(format!("client: {e}"), 1);
                        stopping = true;
                        break;
                    }
                }
                window.made[slot] = n + 1;
            }
        }
        if !out.is_empty() {
            let written = tokio::time::timeout(STALL, async {
                stream.write_all(&out).await?;
                stream.flush().await
            })
            .await;
            out.clear();
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Some(format!("connection: writing: {}", e.kind())),
                Err(_) => break Some("connection: write stalled".to_owned()),
            }
        }
        if window.in_flight() == 0 {
            if stopping {
                break None;
            }
            if load.interval.is_some() {
                tokio::time::sleep_until(next_send.into()).await;
            }
            continue;
        }
        // Wait for responses; when paced, wake up for the next send as well.
        if input.len() == input.capacity() {
            input.reserve(64 * 1024);
        }
        let wake = match load.interval {
            Some(_) if !stopping && !window.free.is_empty() => next_send,
            _ => Instant::now() + STALL,
        };
        let read = match tokio::time::timeout_at(wake.into(), stream.read_buf(&mut input)).await {
            Ok(r) => r,
            Err(_) if load.interval.is_some() && wake < Instant::now() + STALL / 2 => continue,
            Err(_) => break Some("connection: no response".to_owned()),
        };
        match read {
            Ok(0) => break Some("connection: closed by the daemon".to_owned()),
            Ok(_) => {}
            Err(e) => break Some(format!("connection: reading: {}", e.kind())),
        }
        let arrived = Instant::now();
        if let Err(e) = take_responses(&input, &mut consumed, &mut window, &mut report, arrived) {
            break Some(e);
        }
        if consumed == input.len() {
            input.clear();
            consumed = 0;
        } else if consumed >= 32 * 1024 {
            input.drain(..consumed);
            consumed = 0;
        }
    };
    if let Some(e) = failure {
        let lost = window.in_flight() as u64;
        if lost > 0 {
            report.failed(e, lost);
        }
    } else {
        let _ = tokio::time::timeout(STALL, stream.shutdown()).await;
    }
    report
}

/// Records every complete response in `input[*consumed..]`; a frame that is not a
/// valid response, or answers no request in flight, is an error.
fn take_responses(
    input: &[u8],
    consumed: &mut usize,
    window: &mut Window,
    report: &mut Report,
    arrived: Instant,
) -> Result<(), String> {
    loop {
        let rest = &input[*consumed..];
        let Some((prefix, after)) = rest.split_first_chunk::<LENGTH_PREFIX>() else {
            return Ok(());
        };
        let len = frame_length(*prefix, RESPONSE_HEADER_LEN, ABSOLUTE_MAX_FRAME)
            .map_err(|e| format!("protocol: bad response frame: {e}"))?;
        let Some(payload) = after.get(..len) else {
            return Ok(());
        };
        let (header, _) =
            decode_response(payload).map_err(|e| format!("protocol: bad response: {e}"))?;
        let (sent, expected) = window
            .answer(header.request_id)
            .ok_or("protocol: a response to no request in flight")?;
        report.record(
            header.status,
            expected,
            arrived.saturating_duration_since(sent),
        );
        *consumed += LENGTH_PREFIX + len;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::{Status, encode_response_with};

    fn response(id: u32, status: Status) -> Vec<u8> {
        let mut f = Vec::new();
        encode_response_with(&mut f, 0x0020, id, |_| status).unwrap();
        f
    }

    #[test]
    fn responses_free_their_slots_in_any_order_and_split_frames_wait() {
        let mut w = Window::new(4);
        let now = Instant::now();
        let ids: Vec<u32> = (0..4).map(|_| w.take(now).unwrap().1).collect();
        assert!(w.take(now).is_none(), "the window is full");
        let mut input = Vec::new();
        input.extend(response(ids[2], Status::Ok));
        input.extend(response(ids[0], Status::VerificationFailed));
        let whole = input.len();
        input.extend(&response(ids[3], Status::Ok)[..7]);
        let (mut consumed, mut report) = (0, Report::default());
        take_responses(&input, &mut consumed, &mut w, &mut report, now).unwrap();
        assert_eq!(consumed, whole, "the partial frame waits for its rest");
        assert_eq!(report.latencies_us.len(), 1);
        assert_eq!(
            report.errors.get("verification_failed (expected ok)"),
            Some(&1)
        );
        assert_eq!(w.in_flight(), 2);
        // A slot reused gets a new generation: the old id no longer matches.
        let (slot, id) = w.take(now).unwrap();
        assert_eq!(slot as u32, ids[0] & 0xFFFF);
        assert_ne!(id, ids[0]);
        assert!(w.answer(ids[0]).is_none());
        assert!(w.answer(id).is_some());
        // A response to nothing in flight, or a malformed frame, is an error.
        let stray = response(ids[2], Status::Ok);
        assert!(take_responses(&stray, &mut 0, &mut w, &mut report, now).is_err());
        assert!(take_responses(&[0, 0, 0, 1, 9], &mut 0, &mut w, &mut report, now).is_err());
    }
}
