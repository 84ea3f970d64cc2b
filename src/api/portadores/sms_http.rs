//! [`HttpGateway`]: an [`SmsGateway`] that POSTs each message as JSON to the issuer's
//! SMS gateway over HTTP/1.1 (a small client on tokio: one request per connection,
//! `Connection: close`).
//!
//! Request: `POST <path>` with `Content-Type: application/json`, `Authorization:
//! Bearer <token>` when `[sms] gateway_token_file` is set, and the body
//! `{"id": "<outbox id>", "para": "+55...", "tipo": "senha", "blocoSenha": "<hex>"}`
//! (a PIN block under the SMS delivery key, ISO 9564 format 0, for the gateway's own
//! HSM to decipher) or `{"id", "para", "tipo": "texto", "texto": "..."}`. The `id` is
//! the same on every retry of a message: the gateway dedupes on it.
//!
//! Answer: any 2xx takes the message; 408, 429 and 5xx, a broken connection or the
//! time limit are temporary (tried again); any other status refuses the message. Only
//! the status line is read (at most 8 KiB of head); the body is ignored.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sms::{Content, GatewayError, Outgoing, SmsGateway};
use crate::api::store::BoxFuture;

/// Most bytes of an answer's head read.
const MAX_HEAD: usize = 8192;

/// The HTTP gateway.
#[derive(Clone)]
pub struct HttpGateway {
    host: String,
    port: u16,
    path: String,
    token: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HttpGateway(http://{}:{}{})",
            self.host, self.port, self.path
        )
    }
}

impl HttpGateway {
    /// A gateway at `http://host[:port][/path]`.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Self, String> {
        let bad = || format!("sms.gateway: not an http://host:port/path URL: {url}");
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 80),
        };
        let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !clean(host) || !clean(&path) || host.contains(['@', '/', '?', '#']) {
            return Err(bad());
        }
        if token
            .as_deref()
            .is_some_and(|t| !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err("sms.gateway_token_file: the token is one line of visible ASCII".into());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            path,
            token,
            timeout,
        })
    }

    fn request(&self, m: &Outgoing) -> Vec<u8> {
        let body = match &m.content {
            Content::PinBlock(block) => {
                json!({"id": m.id.to_string(), "para": m.to, "tipo": "senha", "blocoSenha": block})
            }
            Content::Text(text) => {
                json!({"id": m.id.to_string(), "para": m.to, "tipo": "texto", "texto": text})
            }
        }
        .to_string();
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.host,
            self.port,
            body.len()
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }

    async fn exchange(&self, m: &Outgoing) -> Result<u16, GatewayError> {
        let temporary = |e: std::io::Error| GatewayError::Temporary(e.kind().to_string());
        let mut s = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(temporary)?;
        s.write_all(&self.request(m)).await.map_err(temporary)?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 1024];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = s.read(&mut buf).await.map_err(temporary)?;
            if n == 0 {
                return Err(GatewayError::Temporary(
                    "the gateway closed without an answer".into(),
                ));
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_HEAD {
                return Err(GatewayError::Temporary(
                    "the gateway's answer head is too long".into(),
                ));
            }
        }
        status_of(&head)
            .ok_or_else(|| GatewayError::Temporary("the gateway's answer is not HTTP".into()))
    }
}

/// The status code of an HTTP/1.x status line.
fn status_of(head: &[u8]) -> Option<u16> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok()
}

/// What an answer's status means for the message.
fn verdict(status: u16) -> Result<(), GatewayError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(GatewayError::Temporary(format!("HTTP {status}"))),
        other => Err(GatewayError::Refused(format!("HTTP {other}"))),
    }
}

impl SmsGateway for HttpGateway {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<(), GatewayError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.exchange(message)).await {
                Ok(Ok(status)) => verdict(status),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(GatewayError::Temporary(
                    "the gateway did not answer in time".into(),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_status_lines_and_verdicts() {
        let g =
            HttpGateway::new("http://127.0.0.1:8090/sms/v1", None, Duration::from_secs(1)).unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.path.as_str()),
            ("127.0.0.1", 8090, "/sms/v1")
        );
        let g = HttpGateway::new(
            "http://gw.example",
            Some("t0k".into()),
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!((g.port, g.path.as_str()), (80, "/"));
        for bad in [
            "https://x",
            "http://",
            "http://a:b/",
            "http://a b/",
            "http://u@h/",
            "http://h:99999/",
        ] {
            assert!(
                HttpGateway::new(bad, None, Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
        assert!(
            HttpGateway::new(
                "http://h/",
                Some("a\r\nX: y".into()),
                Duration::from_secs(1)
            )
            .is_err()
        );
        assert_eq!(status_of(b"HTTP/1.1 202 Accepted\r\n"), Some(202));
        assert_eq!(status_of(b"HTTP/1.0 500\r\n"), Some(500));
        assert_eq!(status_of(b"SSH-2.0\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 2x0 OK\r\n"), None);
        assert_eq!(status_of(b"HTTP/1.1 200 OK"), None);
        assert!(verdict(204).is_ok());
        assert!(matches!(verdict(503), Err(GatewayError::Temporary(_))));
        assert!(matches!(verdict(429), Err(GatewayError::Temporary(_))));
        assert!(matches!(verdict(400), Err(GatewayError::Refused(_))));
        let m = Outgoing {
            id: 7,
            to: "+5583999990000".into(),
            content: Content::Text("oi".into()),
        };
        let text = String::from_utf8(g.request(&m)).unwrap();
        assert!(
            text.starts_with("POST / HTTP/1.1\r\n")
                && text.contains("Authorization: Bearer t0k\r\n")
        );
        assert!(
            text.ends_with(r#"{"id":"7","para":"+5583999990000","texto":"oi","tipo":"texto"}"#),
            "{text}"
        );
    }
}
