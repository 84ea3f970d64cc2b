//! A small HTTP/1.1 client for the facade benchmark: one keep-alive connection, one
//! request at a time, every call signed as the processor's clients sign
//! ([`crate::api::auth::signature`]). Only what the facade answers is parsed: a status
//! line, headers with `Content-Length`, and the body.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::api::auth::signature;

/// Largest answer body read.
const MAX_BODY: usize = 1 << 20;

/// An API client's credentials and bearer token.
#[derive(Debug)]
pub struct Credentials {
    /// `X-ClientID`.
    pub client_id: String,
    /// `apikey`.
    pub api_key: String,
    /// The shared secret (the benchmark uses the example client's documented one).
    pub secret: String,
    /// The bearer token from `POST /token`.
    pub token: String,
    next_id: AtomicU64,
}

impl Credentials {
    /// Credentials without a token yet.
    pub fn new(client_id: &str, api_key: &str, secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            api_key: api_key.to_owned(),
            secret: secret.to_owned(),
            token: String::new(),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh request id (at most 40 characters).
    pub fn request_id(&self) -> String {
        format!(
            "bench-{}-{}",
            std::process::id(),
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body as JSON (`Null` if it is not JSON).
    pub json: Value,
}

impl Answer {
    /// The error `code` (processor shape or problem+json).
    pub fn code(&self) -> &str {
        self.json["error"]["code"]
            .as_str()
            .or_else(|| self.json["code"].as_str())
            .unwrap_or("")
    }
}

/// One keep-alive connection to the facade.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    host: String,
    buf: Vec<u8>,
}

impl Connection {
    /// Connects.
    pub async fn open(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (r, w) = stream.into_split();
        Ok(Self {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            host: addr.to_owned(),
            buf: Vec::with_capacity(2048),
        })
    }

    /// `POST /token` with HTTP Basic; stores the bearer token in `creds`.
    pub async fn token(&mut self, creds: &mut Credentials) -> Result<(), String> {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", creds.api_key, creds.secret));
        let body = b"grant_type=client_credentials";
        self.buf.clear();
        self.buf.extend_from_slice(
            format!(
                "POST /token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                self.host,
                body.len()
            )
            .as_bytes(),
        );
        self.buf.extend_from_slice(body);
        let a = self.exchange().await?;
        creds.token = a.json["access_token"]
            .as_str()
            .ok_or_else(|| format!("/token answered {}", a.status))?
            .to_owned();
        Ok(())
    }

    /// A signed call; `body` is `Null` for none.
    pub async fn call(
        &mut self,
        creds: &Credentials,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<Answer, String> {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let rid = creds.request_id();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
            .to_string();
        let sig = signature(creds.secret.as_bytes(), &creds.api_key, &rid, &ts, &bytes);
        self.buf.clear();
        self.buf.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\napikey: {}\r\nX-ClientID: {}\r\nAuthorization: Bearer {}\r\nTimestamp: {ts}\r\nX-Client-Request-Id: {rid}\r\nSignature: {sig}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                self.host,
                creds.api_key,
                creds.client_id,
                creds.token,
                bytes.len()
            )
            .as_bytes(),
        );
        self.buf.extend_from_slice(&bytes);
        self.exchange().await
    }

    async fn exchange(&mut self) -> Result<Answer, String> {
        self.writer
            .write_all(&self.buf)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed in the headers".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().map_err(|_| "bad Content-Length")?;
            }
        }
        if length > MAX_BODY {
            return Err(format!("answer of {length} bytes"));
        }
        let mut body = vec![0u8; length];
        self.reader
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        Ok(Answer {
            status,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        })
    }
}
