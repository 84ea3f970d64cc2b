//! One signed call to the facade: `POST /token` with HTTP Basic for a bearer token, and
//! the call with the six headers the facade verifies, its `Signature` made by
//! [`crate::api::auth::signature`] (the facade's own function) over api key, request id,
//! timestamp and body.

use std::path::PathBuf;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::http::{Answer, BaseUrl, Failure, exchange};
use super::{Credentials, now_ms};
use crate::api::auth::signature;

/// The error code of an answer (the processor's shape or problem+json), or "".
pub(super) fn answer_code(answer: &Answer) -> String {
    serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| {
            v["error"]["code"]
                .as_str()
                .or_else(|| v["code"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// One call to make: where, as whom, what.
pub(super) struct Call<'a> {
    pub(super) url: &'a BaseUrl,
    pub(super) ca: Option<&'a PathBuf>,
    pub(super) creds: &'a Credentials,
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) request_id: &'a str,
    pub(super) body: &'a [u8],
}

impl Call<'_> {
    /// `POST /token` with HTTP Basic: the bearer token and its lifetime in seconds.
    pub(super) async fn token(&self) -> Result<(Zeroizing<String>, u64), Failure> {
        let creds = self.creds;
        let basic = Zeroizing::new({
            let mut pair = Zeroizing::new(format!("{}:", creds.api_key).into_bytes());
            pair.extend_from_slice(&creds.secret);
            base64::engine::general_purpose::STANDARD.encode(&pair[..])
        });
        let form = b"grant_type=client_credentials";
        let token_head = Zeroizing::new(format!(
            "POST /token HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.url.authority(),
            basic.as_str(),
            form.len()
        ));
        let grant = exchange(self.url, self.ca, &token_head, form).await?;
        let refused = || {
            Failure::Config(format!(
                "POST /token answered {} for client {:?}: {}",
                grant.status,
                creds.client_id,
                String::from_utf8_lossy(&grant.body)
            ))
        };
        let json = serde_json::from_slice::<serde_json::Value>(&grant.body)
            .ok()
            .filter(|_| grant.status == 200)
            .ok_or_else(refused)?;
        let token = json["access_token"]
            .as_str()
            .map(|t| Zeroizing::new(t.to_owned()))
            .ok_or_else(refused)?;
        let expires_in = json["expires_in"].as_u64().unwrap_or(0);
        Ok((token, expires_in))
    }

    /// The call itself, signed now.
    pub(super) async fn send(&self, token: &str) -> Result<Answer, Failure> {
        let creds = self.creds;
        let timestamp = now_ms().to_string();
        let sig = signature(
            &creds.secret,
            &creds.api_key,
            self.request_id,
            &timestamp,
            self.body,
        );
        let content = if self.body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        let head = Zeroizing::new(format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\napikey: {}\r\nX-ClientID: {}\r\n\
             Authorization: Bearer {token}\r\nTimestamp: {timestamp}\r\n\
             X-Client-Request-Id: {}\r\nSignature: {sig}\r\n{content}Content-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.method,
            self.path,
            self.url.authority(),
            creds.api_key,
            creds.client_id,
            self.request_id,
            self.body.len()
        ));
        exchange(self.url, self.ca, &head, self.body).await
    }
}
