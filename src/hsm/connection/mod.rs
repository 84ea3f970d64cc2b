//! One client connection: the TLS handshake, a reader that parses and executes
//! requests, and a writer task that sends the answers. Requests that touch disk run
//! off the reader, so later fast requests overtake them (responses carry request ids).
//!
//! The reader takes whatever the socket has in one read and executes every complete
//! request in it before reading again; the answers of those executed at once go to the
//! writer together, in one buffer. So a pipelining client costs one read, one buffer
//! and one write per batch, not per request, and the role, key ring and clock are
//! looked up once per batch.
//!
//! Limits, in the order a connection meets them: the handshake must finish within
//! `handshake_timeout` (its place among the handshakes in progress was given by
//! [`super::admission`]); then the connection waits for one of `max_connections`
//! slots; a frame must be complete within `read_timeout` of its first byte, however
//! the peer trickles it; between frames the connection may idle for `idle_timeout`;
//! answers wait in at most `answer_buffer` bytes (see [`outbox`]).
//!
//! Memory one connection holds at most, besides its task and TLS state: the input
//! buffer (`max_frame` + 16 KiB), the answer budget (`answer_buffer`), TLS data waiting
//! for the socket ([`TLS_BUFFER`]), and the answers of counted requests waiting for the
//! budget (under 1 KiB each, at most `max_in_flight`).

mod outbox;
mod reader;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::admission::HandshakeSlot;
use super::state::Shared;
use super::tls;
use crate::protocol::{LENGTH_PREFIX, REQUEST_HEADER_LEN, frame_length};
use reader::{HAND_OVER_AT, Reader};

/// Room asked for before each read when no partial frame says how much is needed.
const READ_CHUNK: usize = 16 * 1024;
/// TLS records waiting for a socket that does not drain (rustls' own buffer).
pub const TLS_BUFFER: usize = 16 * 1024;

/// Serves one accepted TCP connection until the peer leaves, a limit closes it, or
/// shutdown is signalled (in-flight requests are answered first).
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    handshake: HandshakeSlot,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = shared.config.limits.clone();
    let acceptor = TlsAcceptor::from(shared.tls());
    let done = tokio::select! {
        r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => r,
        _ = shutdown.changed() => return,
    };
    let Ok(Ok(mut stream)) = done else {
        shared.metrics.handshake_failures.inc();
        return;
    };
    drop(handshake);
    stream.get_mut().1.set_buffer_limit(Some(TLS_BUFFER));
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(tls::identity)
        .unwrap_or_default();
    // The connection slot is taken now that the peer is authenticated; until one is
    // free the connection waits, unread.
    let slot = match Arc::clone(&slots).try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            shared.metrics.connections_waiting.inc();
            let slot = tokio::select! {
                s = slots.acquire_owned() => s.ok(),
                _ = shutdown.changed() => None,
            };
            shared.metrics.connections_waiting.dec();
            let Some(slot) = slot else { return };
            slot
        }
    };
    shared.metrics.connections.inc();
    tracing::debug!(identity, "connection open");

    let (mut rd, wr) = tokio::io::split(stream);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (outbox, writer) = outbox::outbox(limits.answer_buffer);
    let writer = tokio::spawn(writer.run(wr, Arc::clone(&in_flight)));
    let reader = Reader {
        shared: Arc::clone(&shared),
        identity: Arc::from(identity.as_str()),
        outbox,
        in_flight,
    };
    // Bytes read and not yet consumed are input[consumed..]; the buffer never holds
    // more than one frame beyond what a read brought (frames are checked against
    // max_frame before room is made for them).
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut consumed = 0;
    // When the first byte of the incomplete frame at the end of `input` arrived.
    let mut frame_started: Option<Instant> = None;
    'connection: loop {
        let mut batch = reader.batch();
        let mut needed = READ_CHUNK;
        while let Some((prefix, after)) = input[consumed..].split_first_chunk::<LENGTH_PREFIX>() {
            let len = match frame_length(*prefix, REQUEST_HEADER_LEN, limits.max_frame) {
                Ok(len) => len,
                Err(e) => {
                    // The stream cannot be re-synchronised: answer with id 0 and close.
                    reader.fatal(&e, &mut batch);
                    reader.hand_over(&mut batch).await;
                    break 'connection;
                }
            };
            let Some(payload) = after.get(..len) else {
                needed = len - after.len();
                break;
            };
            reader.request(payload, &mut batch);
            consumed += LENGTH_PREFIX + len;
            if batch.pending.buf.len() >= HAND_OVER_AT && !reader.hand_over(&mut batch).await {
                break 'connection;
            }
        }
        if !reader.hand_over(&mut batch).await {
            break;
        }
        // A pipelining peer keeps the socket readable, so without this the reader
        // would run batch after batch without returning to the scheduler: the writer
        // and other connections would wait on its thread while the other threads idle.
        tokio::task::yield_now().await;
        let completed_some = consumed > 0;
        if consumed == input.len() {
            input.clear();
            // Room made for one large frame is not kept by an idle connection.
            input.shrink_to(READ_CHUNK);
            consumed = 0;
        } else if consumed > 0 {
            input.drain(..consumed);
            consumed = 0;
        }
        // Between frames the idle timeout applies; inside one, the read timeout counts
        // from the frame's first byte, not from the last read.
        let deadline = if input.is_empty() {
            frame_started = None;
            Instant::now() + limits.idle_timeout
        } else {
            if completed_some || frame_started.is_none() {
                frame_started = Some(batch.read_at);
            }
            frame_started.unwrap_or(batch.read_at) + limits.read_timeout
        };
        input.reserve(needed);
        tokio::select! {
            _ = shutdown.changed() => break,
            r = tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut input)) => {
                if !matches!(r, Ok(Ok(n)) if n > 0) {
                    break;
                }
            }
        }
    }
    drop(reader);
    let _ = writer.await;
    drop(slot);
    shared.metrics.connections.dec();
    tracing::debug!(identity, "connection closed");
}
