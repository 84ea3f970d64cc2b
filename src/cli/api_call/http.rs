//! The HTTP/1.1 exchange of `cofre api call`: the facade's URL, one request per
//! connection (`Connection: close`, over TLS for `https://`), and a total parser of the
//! answer read to the connection's end.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest answer read (headers and body).
const MAX_ANSWER: usize = 16 << 20;

/// Where the facade is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Over TLS.
    pub https: bool,
    /// `host` (a name or an IP address; IPv6 in brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl BaseUrl {
    /// Parses `http://host[:port]` or `https://host[:port]`, with no path.
    pub fn parse(url: &str) -> Result<Self, String> {
        let bad = || format!("--url {url:?}: expected http://host:port or https://host:port");
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => {
                let port = rest[i + 1..].parse::<u16>().map_err(|_| bad())?;
                (&rest[..i], port)
            }
            _ => (rest, default_port),
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            https,
            host: host.to_owned(),
            port,
        })
    }

    /// `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An answer: status and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

/// Parses a whole HTTP/1.1 answer read up to the connection's close. Total: anything
/// that is not a complete answer is an error naming what is wrong.
pub fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer's headers do not end")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "the answer's headers are not text")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next());
    let status = code
        .filter(|_| version.starts_with("HTTP/1."))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header line {line:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("the answer ends before its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line does not end")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("a chunk ends early")?;
        out.extend_from_slice(chunk);
        data = data
            .get(size..)
            .and_then(|d| d.strip_prefix(b"\r\n"))
            .ok_or("a chunk does not end with CRLF")?;
    }
}
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Failures: configuration (exit 64) or the exchange (exit 69).
pub enum Failure {
    /// A bad argument, configuration or credential (exit 64).
    Config(String),
    /// The facade cannot be reached or does not answer HTTP (exit 69).
    Unavailable(String),
}

async fn connect(url: &BaseUrl, ca: Option<&PathBuf>) -> Result<Box<dyn Stream>, Failure> {
    let tls = if url.https {
        let ca = ca.ok_or_else(|| {
            Failure::Config("an https:// facade needs --ca (its CA certificate, PEM)".into())
        })?;
        let shown = ca.display().to_string();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca)
            .map_err(|e| Failure::Config(format!("--ca {shown}: {e}")))?
        {
            let cert = cert.map_err(|e| Failure::Config(format!("--ca {shown}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Failure::Config(format!("--ca {shown}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Failure::Config(format!("--ca {shown}: no certificate")));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Failure::Config(format!("--url host {host:?}: {e}")))?;
        Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
    } else {
        None
    };
    let tcp = tokio::net::TcpStream::connect(url.authority())
        .await
        .map_err(|e| Failure::Unavailable(format!("connect {}: {e}", url.authority())))?;
    Ok(match tls {
        Some((connector, name)) => Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| Failure::Unavailable(format!("TLS with {}: {e}", url.authority())))?,
        ),
        None => Box::new(tcp),
    })
}

/// One request on its own connection (`Connection: close`), the answer read to the end.
pub async fn exchange(
    url: &BaseUrl,
    ca: Option<&PathBuf>,
    head: &str,
    body: &[u8],
) -> Result<Answer, Failure> {
    let mut stream = connect(url, ca).await?;
    let unavailable = |e: std::io::Error| Failure::Unavailable(format!("{}: {e}", url.authority()));
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    stream.write_all(&request).await.map_err(unavailable)?;
    stream.flush().await.map_err(unavailable)?;
    let mut raw = Vec::new();
    let read = (&mut stream)
        .take(MAX_ANSWER as u64 + 1)
        .read_to_end(&mut raw)
        .await;
    // A TLS peer that closes without close_notify still delivered a whole answer.
    if let Err(e) = read
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        return Err(unavailable(e));
    }
    if raw.len() > MAX_ANSWER {
        return Err(Failure::Unavailable(format!(
            "the answer is larger than {MAX_ANSWER} bytes"
        )));
    }
    parse_answer(&raw).map_err(Failure::Unavailable)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn base_urls() {
        let u = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "127.0.0.1", 8080)
        );
        let u = BaseUrl::parse("https://facade.example/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (true, "facade.example", 443)
        );
        let u = BaseUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 8080));
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h:80/path",
            "http://user@h",
            "http://h:x",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_with_length_chunks_or_to_the_end() {
        let a =
            parse_answer(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (201, &b"{\"a\":1}"[..]));
        let a = parse_answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(a.body, b"{\"a\":1}");
        let a = parse_answer(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"nope"[..]));
    }

    #[test]
    fn broken_answers_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert!(
                parse_answer(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
