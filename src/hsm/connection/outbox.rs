//! Answers on their way out of one connection, bounded in bytes.
//!
//! Every answer buffer takes permits for its length from the connection's byte budget
//! (`limits.answer_buffer`) before it is queued, and gives them back once the writer has
//! handed it to TLS. A peer that stops reading therefore holds at most that many bytes
//! of answers in the daemon: the reader, waiting for permits, stops reading, and TCP
//! pushes back on the peer. The writer merges what is queued into one TLS write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Answers queued for the writer: the bytes, how many frames, and their permits.
type Queued = (Vec<u8>, usize, OwnedSemaphorePermit);

/// The sending side (cloned by every task with an answer to give).
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    limit: usize,
}

/// The writer's side.
#[derive(Debug)]
pub struct Writer {
    rx: mpsc::UnboundedReceiver<Queued>,
}

/// A byte-bounded queue of `limit` bytes.
pub fn outbox(limit: usize) -> (Outbox, Writer) {
    let (tx, rx) = mpsc::unbounded_channel();
    let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
    (
        Outbox {
            tx,
            budget: Arc::new(Semaphore::new(limit)),
            limit,
        },
        Writer { rx },
    )
}

impl Outbox {
    /// Queues `frames` answers in `buf`, waiting while the budget is spent. A buffer
    /// larger than the whole budget waits for all of it. `false` once the writer is gone.
    pub async fn send(&self, buf: Vec<u8>, frames: usize) -> bool {
        let want = u32::try_from(buf.len().clamp(1, self.limit)).unwrap_or(u32::MAX);
        let Ok(permit) = Arc::clone(&self.budget).acquire_many_owned(want).await else {
            return false;
        };
        self.tx.send((buf, frames, permit)).is_ok()
    }

    /// Bytes of answers queued or being written now.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.limit - self.budget.available_permits()
    }
}

/// Merged writes stop growing at this size.
const MERGE_UP_TO: usize = 64 * 1024;

impl Writer {
    /// Writes answers until every sender is gone, then shuts the stream down. Each
    /// answer leaves the in-flight count as it is handed to TLS (before the bytes go
    /// out), so a client that has read every answer may send its next window at once.
    pub async fn run<W: AsyncWrite + Unpin>(mut self, mut wr: W, in_flight: Arc<AtomicUsize>) {
        while let Some((mut buf, mut n, permit)) = self.rx.recv().await {
            let mut permits = vec![permit];
            while buf.len() < MERGE_UP_TO {
                match self.rx.try_recv() {
                    Ok((more, k, p)) => {
                        buf.extend_from_slice(&more);
                        n += k;
                        permits.push(p);
                    }
                    Err(_) => break,
                }
            }
            in_flight.fetch_sub(n, Ordering::AcqRel);
            let ok = wr.write_all(&buf).await.is_ok() && wr.flush().await.is_ok();
            drop(permits);
            if !ok {
                // Keep draining (and freeing the budget) so senders never wait on a
                // dead peer.
                while self.rx.recv().await.is_some() {}
                return;
            }
        }
        let _ = wr.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_budget_holds_senders_until_the_writer_writes() {
        let (outbox, writer) = outbox(100);
        assert!(outbox.send(vec![1; 60], 1).await);
        assert_eq!(outbox.queued_bytes(), 60);
        // 60 + 60 > 100: the second waits.
        let second = tokio::spawn({
            let o = outbox.clone();
            async move { o.send(vec![2; 60], 1).await }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        // A buffer larger than the budget waits for all of it, not forever.
        let (client, mut server) = tokio::io::duplex(1024);
        let in_flight = Arc::new(AtomicUsize::new(3));
        let w = tokio::spawn(writer.run(client, Arc::clone(&in_flight)));
        assert!(second.await.unwrap());
        assert!(outbox.send(vec![3; 500], 1).await);
        drop(outbox);
        w.await.unwrap();
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got)
            .await
            .unwrap();
        assert_eq!(got.len(), 620);
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
    }
}
