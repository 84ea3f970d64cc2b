//! The connection over an in-memory pipe with a scripted daemon: pipelining with
//! answers out of order, the in-flight cap, timeouts, and a daemon that goes away or
//! sends garbage. No TLS and no daemon: the bytes are the protocol's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::protocol::{Opcode, REQUEST_HEADER_LEN, Status, Tag, decode_request, encode_response};

const LONG: Duration = Duration::from_secs(5);

fn pipe(max_in_flight: usize) -> (Connection, DuplexStream) {
    let (client, daemon) = tokio::io::duplex(1 << 16);
    (Connection::start(client, max_in_flight), daemon)
}

/// The scripted daemon reads one request: its opcode and id.
async fn read_request(s: &mut DuplexStream) -> Option<(u16, u32)> {
    let mut prefix = [0; 4];
    s.read_exact(&mut prefix).await.ok()?;
    let len = frame_length(prefix, REQUEST_HEADER_LEN, ABSOLUTE_MAX_FRAME).ok()?;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.ok()?;
    let (h, _) = decode_request(&payload).ok()?;
    Some((h.opcode, h.request_id))
}

/// Answers `ok` with the request id as the `kcv` field, so callers can check they got
/// their own answer.
async fn answer(s: &mut DuplexStream, opcode: u16, id: u32) {
    let mut buf = Vec::new();
    encode_response(&mut buf, opcode, id, Status::Ok, |w| {
        w.str(Tag::Kcv, &id.to_string());
    })
    .unwrap();
    s.write_all(&buf).await.unwrap();
}

fn call_health(
    c: &Arc<Connection>,
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<Response, ClientError>> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.call(Opcode::Health.code(), |_| {}, timeout).await })
}

#[tokio::test]
async fn pipelined_answers_in_reverse_order_reach_their_callers() {
    let (conn, mut daemon) = pipe(16);
    let conn = Arc::new(conn);
    let calls: Vec<_> = (0..10).map(|_| call_health(&conn, LONG)).collect();
    let mut requests = Vec::new();
    for _ in 0..10 {
        requests.push(read_request(&mut daemon).await.unwrap());
    }
    for (op, id) in requests.iter().rev() {
        answer(&mut daemon, *op, *id).await;
    }
    let mut ids = Vec::new();
    for c in calls {
        let r = c.await.unwrap().unwrap();
        ids.push(r.str(Tag::Kcv).unwrap());
    }
    let mut sent: Vec<String> = requests.iter().map(|(_, id)| id.to_string()).collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent, "every caller got exactly one answer, its own");
    assert!(conn.is_alive());
}

#[tokio::test]
async fn in_flight_requests_are_capped() {
    let (conn, mut daemon) = pipe(2);
    let conn = Arc::new(conn);
    let calls: Vec<_> = (0..5).map(|_| call_health(&conn, LONG)).collect();
    let mut answered = 0;
    while answered < 5 {
        let mut held = Vec::new();
        while held.len() < 2.min(5 - answered) {
            held.push(read_request(&mut daemon).await.unwrap());
        }
        // With two unanswered, a third request must not arrive.
        let mut byte = [0u8; 1];
        let third = tokio::time::timeout(Duration::from_millis(50), daemon.read(&mut byte)).await;
        assert!(third.is_err(), "more than max_in_flight requests were sent");
        for (op, id) in held {
            answer(&mut daemon, op, id).await;
            answered += 1;
        }
    }
    for c in calls {
        assert!(c.await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn a_daemon_that_goes_away_fails_every_waiting_caller() {
    let (conn, mut daemon) = pipe(16);
    let conn = Arc::new(conn);
    let calls: Vec<_> = (0..3).map(|_| call_health(&conn, LONG)).collect();
    for _ in 0..3 {
        read_request(&mut daemon).await.unwrap();
    }
    drop(daemon);
    for c in calls {
        let e = c.await.unwrap().unwrap_err();
        assert!(matches!(e, ClientError::Connection(_)), "{e}");
    }
    assert!(!conn.is_alive());
    // A later call fails at once rather than waiting for its timeout.
    let e = conn
        .call(Opcode::Health.code(), |_| {}, LONG)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connection(_)), "{e}");
}

#[tokio::test]
async fn an_oversized_response_frame_is_a_protocol_error() {
    let (conn, mut daemon) = pipe(16);
    let conn = Arc::new(conn);
    let call = call_health(&conn, LONG);
    read_request(&mut daemon).await.unwrap();
    let too_long = u32::try_from(ABSOLUTE_MAX_FRAME + 1).unwrap();
    daemon.write_all(&too_long.to_be_bytes()).await.unwrap();
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, ClientError::Protocol(_)), "{e}");
    assert!(!conn.is_alive());
}

#[tokio::test]
async fn a_silent_daemon_is_a_timeout_and_the_late_answer_is_dropped() {
    let (conn, mut daemon) = pipe(16);
    let conn = Arc::new(conn);
    let short = Duration::from_millis(50);
    let call = call_health(&conn, short);
    let (op, id) = read_request(&mut daemon).await.unwrap();
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, ClientError::Timeout(d) if d == short), "{e}");
    assert_eq!(lock(&conn.router).waiting(), 0);
    // The late answer harms nobody, and the connection goes on.
    answer(&mut daemon, op, id).await;
    let next = call_health(&conn, LONG);
    let (op, id) = read_request(&mut daemon).await.unwrap();
    answer(&mut daemon, op, id).await;
    let r = next.await.unwrap().unwrap();
    assert_eq!(r.str(Tag::Kcv), Some(id.to_string()));
}

#[tokio::test]
async fn a_request_that_cannot_be_encoded_is_refused_before_sending() {
    let (conn, mut daemon) = pipe(16);
    let e = conn
        .call(
            Opcode::Tokenise.code(),
            |w| {
                w.str(Tag::Pan, "4111\n1111");
            },
            LONG,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::InvalidRequest(_)), "{e}");
    assert!(!e.to_string().contains("4111"), "{e}");
    assert_eq!(lock(&conn.router).waiting(), 0);
    drop(conn);
    // Nothing was sent; dropping the connection closes the stream.
    let mut rest = Vec::new();
    daemon.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
