//! Request ids and the table of callers waiting for a response: the pure half of a
//! pipelined connection. No sockets and no clock, so every routing rule (fresh ids,
//! out-of-order answers, late answers, a dying connection) is testable without I/O.

use std::collections::HashMap;

use tokio::sync::oneshot;

use super::{ClientError, Response};
use crate::protocol::{Status, VERSION};

/// What a waiting caller receives.
pub(super) type Outcome = Result<Response, ClientError>;

#[derive(Debug)]
struct Waiter {
    opcode: u16,
    tx: oneshot::Sender<Outcome>,
}

/// The waiting callers of one connection, by request id.
#[derive(Debug, Default)]
pub(super) struct Router {
    last_id: u32,
    waiters: HashMap<u32, Waiter>,
    /// Set once the connection is dead: new requests are refused with this error.
    closed: Option<ClientError>,
}

impl Router {
    /// Registers a caller under a fresh request id and returns the id and the receiver
    /// of its outcome. Ids skip 0 (the daemon's "could not delimit your frame" answers
    /// carry id 0) and any id still waiting, so after a wrap-around a late answer can
    /// never reach the wrong caller.
    pub(super) fn register(
        &mut self,
        opcode: u16,
    ) -> Result<(u32, oneshot::Receiver<Outcome>), ClientError> {
        if let Some(e) = &self.closed {
            return Err(e.clone());
        }
        // Terminates: the semaphore keeps the table far below 2^32 - 1 entries.
        let id = loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0 && !self.waiters.contains_key(&self.last_id) {
                break self.last_id;
            }
        };
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(id, Waiter { opcode, tx });
        Ok((id, rx))
    }

    /// Forgets a caller that gave up (timeout, cancelled future, request not encodable);
    /// its answer, if one comes, is then dropped.
    pub(super) fn cancel(&mut self, id: u32) {
        self.waiters.remove(&id);
    }

    /// Routes one response payload (after the length prefix) to its caller. `Err` means
    /// the connection cannot go on (an undecodable frame, or the daemon's id-0 refusal
    /// that precedes its close); the caller of `route` then [`Router::close`]s.
    pub(super) fn route(&mut self, payload: Vec<u8>) -> Result<(), ClientError> {
        let (header, response) = Response::decode(payload)?;
        let Some(waiter) = self.waiters.remove(&header.request_id) else {
            if header.request_id == 0 {
                return Err(ClientError::Connection(format!(
                    "the daemon refused a frame and is closing the connection ({}: {})",
                    response
                        .status()
                        .map_or("unknown status", |s: Status| s.name()),
                    response.message()
                )));
            }
            // The caller timed out or went away: nobody wants this answer.
            return Ok(());
        };
        let outcome = if header.version != VERSION {
            Err(ClientError::Protocol(format!(
                "response in protocol version {}",
                header.version
            )))
        } else if header.opcode != waiter.opcode {
            Err(ClientError::Protocol(format!(
                "response opcode 0x{:04X} to a request with opcode 0x{:04X}",
                header.opcode, waiter.opcode
            )))
        } else {
            Ok(response)
        };
        // The receiver may be gone (cancelled in the meantime): nothing to do then.
        let _ = waiter.tx.send(outcome);
        Ok(())
    }

    /// Marks the connection dead: every waiting caller gets `error`, and so does every
    /// later [`Router::register`].
    pub(super) fn close(&mut self, error: ClientError) {
        for (_, w) in self.waiters.drain() {
            let _ = w.tx.send(Err(error.clone()));
        }
        self.closed.get_or_insert(error);
    }

    /// Whether [`Router::close`] was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    #[cfg(test)]
    pub(super) fn set_last_id(&mut self, id: u32) {
        self.last_id = id;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::protocol::{LENGTH_PREFIX, Opcode, Tag, encode_response};

    fn payload(op: Opcode, id: u32, status: Status, kcv: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_response(&mut buf, op.code(), id, status, |w| {
            w.str(Tag::Kcv, kcv);
        })
        .unwrap();
        buf.split_off(LENGTH_PREFIX)
    }

    #[test]
    fn out_of_order_answers_reach_their_own_callers() {
        let mut r = Router::default();
        let (a, mut rx_a) = r.register(Opcode::KeyRotate.code()).unwrap();
        let (b, mut rx_b) = r.register(Opcode::KeyRotate.code()).unwrap();
        assert_ne!(a, b);
        r.route(payload(Opcode::KeyRotate, b, Status::Ok, "BBBBBB"))
            .unwrap();
        r.route(payload(Opcode::KeyRotate, a, Status::Ok, "AAAAAA"))
            .unwrap();
        let got_a = rx_a.try_recv().unwrap().unwrap();
        let got_b = rx_b.try_recv().unwrap().unwrap();
        assert_eq!(got_a.str(Tag::Kcv).as_deref(), Some("AAAAAA"));
        assert_eq!(got_b.str(Tag::Kcv).as_deref(), Some("BBBBBB"));
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn ids_skip_zero_and_ids_still_waiting() {
        let mut r = Router::default();
        r.set_last_id(u32::MAX - 1);
        let (first, _rx1) = r.register(1).unwrap();
        assert_eq!(first, u32::MAX);
        let (second, _rx2) = r.register(1).unwrap();
        assert_eq!(second, 1, "0 is reserved");
        // Wrap around onto ids that are still waiting: they are skipped.
        r.set_last_id(u32::MAX - 1);
        let (third, _rx3) = r.register(1).unwrap();
        assert_eq!(third, 2);
    }

    #[test]
    fn late_and_unknown_answers_are_dropped() {
        let mut r = Router::default();
        let (id, rx) = r.register(Opcode::Health.code()).unwrap();
        r.cancel(id);
        drop(rx);
        r.route(payload(Opcode::Health, id, Status::Ok, "000000"))
            .unwrap();
        r.route(payload(Opcode::Health, 4242, Status::Ok, "000000"))
            .unwrap();
        assert!(!r.is_closed());
    }

    #[test]
    fn a_mismatched_opcode_or_version_fails_only_that_caller() {
        let mut r = Router::default();
        let (id, mut rx) = r.register(Opcode::Health.code()).unwrap();
        r.route(payload(Opcode::KeyList, id, Status::Ok, "000000"))
            .unwrap();
        assert!(matches!(
            rx.try_recv().unwrap(),
            Err(ClientError::Protocol(_))
        ));
        let (id, mut rx) = r.register(Opcode::Health.code()).unwrap();
        let mut p = payload(Opcode::Health, id, Status::Ok, "000000");
        p[0] = 9;
        r.route(p).unwrap();
        assert!(matches!(
            rx.try_recv().unwrap(),
            Err(ClientError::Protocol(_))
        ));
        assert!(!r.is_closed());
    }

    #[test]
    fn an_id_zero_refusal_or_a_bad_frame_ends_the_connection() {
        let mut r = Router::default();
        let e = r
            .route(payload(Opcode::Health, 0, Status::MalformedField, "000000"))
            .unwrap_err();
        assert!(matches!(e, ClientError::Connection(ref m) if m.contains("malformed_field")));
        let e = r.route(vec![1, 1, 0, 1]).unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e}");
        // Kind 1 (a request) where a response belongs.
        let mut p = payload(Opcode::Health, 1, Status::Ok, "000000");
        p[1] = 1;
        assert!(r.route(p).is_err());
    }

    #[test]
    fn closing_fails_every_waiter_and_every_later_request() {
        let mut r = Router::default();
        let (_, mut rx1) = r.register(1).unwrap();
        let (_, mut rx2) = r.register(1).unwrap();
        r.close(ClientError::Connection("gone".into()));
        for rx in [&mut rx1, &mut rx2] {
            assert!(matches!(
                rx.try_recv().unwrap(),
                Err(ClientError::Connection(_))
            ));
        }
        assert!(r.is_closed());
        assert!(matches!(r.register(1), Err(ClientError::Connection(_))));
    }
}
