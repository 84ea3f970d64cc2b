//! `cofre api call METHOD PATH [--body JSON|@FILE|-]`: one signed call to the REST
//! facade, as its clients must make it (`docs/facade.md`, "Request signing"): `POST
//! /token` with HTTP Basic for a bearer token, then the call with `apikey`,
//! `X-ClientID`, `Authorization`, `Timestamp`, `X-Client-Request-Id` and `Signature`
//! ([`crate::api::auth::signature`]). Prints `HTTP <status>` and the answer's body (JSON
//! pretty-printed).
//!
//! Credentials: by default the client `example-client` of `keys-example/api.toml`, its
//! secret opened from the clients file with the facade key that file names (the INSECURE
//! example set); `--client` picks another client of that file, or `--api-key` with
//! `--secret-file` gives them directly (for a client that does not hold the facade key).
//! The secret is read from files only, never from an argument, and never printed.
//!
//! The facade is `--url` (default: `http://` + the configuration's `listen`). An
//! `https://` URL is served over TLS verified against `--ca` (PEM). The bearer token is
//! kept between runs in the user's runtime directory until it expires (`token.rs`; off
//! with `--no-token-cache`).
//!
//! Exit status: 0 for a 1xx-3xx answer, 1 for a 4xx or 5xx answer (its body is printed
//! all the same), 64 for a bad argument, configuration or credential, 69 when the
//! facade cannot be reached or answers something that is not HTTP.

mod http;
mod signed;
mod token;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use zeroize::Zeroizing;

use crate::api::auth::{MAX_REQUEST_ID, open_secret};
use crate::api::clients::{load_facade_key, read_entries};
use crate::api::config::ApiConfig;
use http::Failure;
pub use http::{Answer, BaseUrl, parse_answer};
use signed::{Call, answer_code};
use token::TokenCache;

const EXIT_HTTP_ERROR: u8 = 1;
const EXIT_CONFIG: u8 = 64;
const EXIT_UNAVAILABLE: u8 = 69;

/// Arguments of `cofre api call`.
#[derive(Debug, Args)]
pub struct ApiCallArgs {
    /// HTTP method: GET, POST, PUT, PATCH or DELETE.
    pub method: String,
    /// Path and query, e.g. `/customer` or `/api/v1/portadores?cpf=...`.
    pub path: String,
    /// The JSON body: inline, `@FILE`, or `-` for standard input.
    #[arg(long)]
    pub body: Option<String>,
    /// The JSON body from a file (same as `--body @FILE`).
    #[arg(long, conflicts_with = "body")]
    pub body_file: Option<PathBuf>,
    /// The facade's configuration: where the clients file and the facade key are, and
    /// the default address.
    #[arg(long, default_value = "keys-example/api.toml")]
    pub config: PathBuf,
    /// The client (`X-ClientID`) whose credentials sign the call.
    #[arg(long, default_value = "example-client")]
    pub client: String,
    /// The client's api key, with --secret-file: credentials given directly instead of
    /// read from the clients file.
    #[arg(long, requires = "secret_file")]
    pub api_key: Option<String>,
    /// A file holding the client's secret (with --api-key).
    #[arg(long, requires = "api_key")]
    pub secret_file: Option<PathBuf>,
    /// The facade, `http://host:port` or `https://host:port` (default: the
    /// configuration's `listen`, over HTTP).
    #[arg(long)]
    pub url: Option<String>,
    /// CA certificate (PEM) that an `https://` facade's certificate must chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Set a field of the body before signing: `PATH=VALUE`, PATH dotted through
    /// objects (`accountData.customerNumber=0000000000000000001`), VALUE a JSON string.
    /// Repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Print only this field of a successful answer (dotted path; a string printed bare),
    /// for scripts: `CARD=$(cofre api call ... --get cardNumber)`.
    #[arg(long, value_name = "PATH")]
    pub get: Option<String>,
    /// Neither use nor keep a bearer token between runs (see the module comment).
    #[arg(long)]
    pub no_token_cache: bool,
    /// `X-Client-Request-Id` (1-40 characters; a repeat with the same body replays the
    /// first answer). Default: a fresh one.
    #[arg(long)]
    pub request_id: Option<String>,
}

/// Sets `path` (dotted through objects, made as needed) to the string `value`.
pub fn set_field(body: &mut serde_json::Value, path: &str, value: &str) -> Result<(), String> {
    let mut at = body;
    for name in path.split('.') {
        if name.is_empty() {
            return Err(format!("--set {path:?}: empty name in the path"));
        }
        if at.is_null() {
            *at = serde_json::Value::Object(serde_json::Map::new());
        }
        at = at
            .as_object_mut()
            .ok_or_else(|| format!("--set {path:?}: {name:?} is not inside an object"))?
            .entry(name)
            .or_insert(serde_json::Value::Null);
    }
    *at = serde_json::Value::String(value.to_owned());
    Ok(())
}

/// The value at a dotted path, if there is one.
pub fn get_field<'a>(body: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(body, |at, name| at.get(name))
}

/// The body to send, from `--body` (inline, `@FILE`, `-`) or `--body-file`, with the
/// `--set` fields; checked to be JSON and sent compact, as signed.
fn read_body(args: &ApiCallArgs) -> Result<Vec<u8>, String> {
    let text = match (&args.body, &args.body_file) {
        (None, None) if args.set.is_empty() => return Ok(Vec::new()),
        (None, None) => b"{}".to_vec(),
        (_, Some(f)) => {
            std::fs::read(f).map_err(|e| format!("--body-file {}: {e}", f.display()))?
        }
        (Some(b), None) if b == "-" => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .map_err(|e| format!("--body -: standard input: {e}"))?;
            v
        }
        (Some(b), None) => match b.strip_prefix('@') {
            Some(f) => std::fs::read(f).map_err(|e| format!("--body @{f}: {e}"))?,
            None => b.clone().into_bytes(),
        },
    };
    let mut value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    for s in &args.set {
        let (path, v) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s:?}: expected PATH=VALUE"))?;
        set_field(&mut value, path, v)?;
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// The client's id, api key and secret.
struct Credentials {
    client_id: String,
    api_key: String,
    secret: Zeroizing<Vec<u8>>,
}

fn credentials(args: &ApiCallArgs, config: &ApiConfig) -> Result<Credentials, String> {
    if let (Some(api_key), Some(file)) = (&args.api_key, &args.secret_file) {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| format!("--secret-file {}: {e}", file.display()))?,
        );
        return Ok(Credentials {
            client_id: args.client.clone(),
            api_key: api_key.clone(),
            secret: Zeroizing::new(text.trim().as_bytes().to_vec()),
        });
    }
    let entry = read_entries(&config.clients)?
        .into_iter()
        .find(|e| e.client_id == args.client)
        .ok_or_else(|| {
            format!(
                "no client {:?} in {}",
                args.client,
                config.clients.display()
            )
        })?;
    let key = load_facade_key(config.facade_key.as_deref())?;
    let secret = open_secret(&key, &entry.secret).map_err(|e| e.to_string())?;
    Ok(Credentials {
        client_id: entry.client_id,
        api_key: entry.api_key,
        secret,
    })
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

async fn call(args: &ApiCallArgs) -> Result<Answer, Failure> {
    let method = args.method.to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        return Err(Failure::Config(format!(
            "method {:?}: one of GET, POST, PUT, PATCH, DELETE",
            args.method
        )));
    }
    if !args.path.starts_with('/') || args.path.contains([' ', '\r', '\n']) {
        return Err(Failure::Config(format!(
            "path {:?}: must start with / and hold no spaces",
            args.path
        )));
    }
    let body = read_body(args).map_err(Failure::Config)?;
    let config = ApiConfig::load(&args.config).map_err(Failure::Config)?;
    let url = match &args.url {
        Some(u) => BaseUrl::parse(u).map_err(Failure::Config)?,
        None => BaseUrl {
            https: false,
            host: config.listen.ip().to_string(),
            port: config.listen.port(),
        },
    };
    let url = match url.host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => BaseUrl {
            host: format!("[{}]", url.host),
            ..url
        },
        Err(_) => url,
    };
    let creds = credentials(args, &config).map_err(Failure::Config)?;
    let request_id = match &args.request_id {
        Some(r) if (1..=MAX_REQUEST_ID).contains(&r.len()) && r.is_ascii() => r.clone(),
        Some(_) => {
            return Err(Failure::Config(format!(
                "--request-id: 1 to {MAX_REQUEST_ID} ASCII characters"
            )));
        }
        None => format!("cli-{}-{}", now_ms(), std::process::id()),
    };
    let cache = if args.no_token_cache {
        None
    } else {
        TokenCache::new(&url.authority(), &creds.client_id, &creds.api_key)
    };
    let call = Call {
        url: &url,
        ca: args.ca.as_ref(),
        creds: &creds,
        method: &method,
        path: &args.path,
        request_id: &request_id,
        body: &body,
    };
    if let Some(token) = cache.as_ref().and_then(|c| c.load(now_ms())) {
        let answer = call.send(&token).await?;
        if !(answer.status == 401 && answer_code(&answer) == "invalid_token") {
            return Ok(answer);
        }
        // The facade no longer knows the kept token (it restarted): the call was refused
        // before it ran, so it is sent again with a new token.
        if let Some(c) = &cache {
            c.forget();
        }
    }
    let (token, expires_in) = call.token().await?;
    if let Some(c) = &cache {
        c.store(
            &token,
            now_ms().saturating_add(u128::from(expires_in) * 1000),
        );
    }
    call.send(&token).await
}

/// The answer as printed: `HTTP <status>`, then the body (JSON pretty-printed, anything
/// else as text).
pub fn render(answer: &Answer) -> String {
    let body = match serde_json::from_slice::<serde_json::Value>(&answer.body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&answer.body).into_owned(),
    };
    if body.is_empty() {
        format!("HTTP {}", answer.status)
    } else {
        format!("HTTP {}\n{body}", answer.status)
    }
}

/// Prints a line on standard output; a reader that went away (`| head`) is not an error
/// worth a panic: the exit status still tells the answer.
fn print_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Runs `cofre api call`.
pub fn run(args: ApiCallArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cofre api call: async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(call(&args)) {
        Ok(answer) => {
            let field = args
                .get
                .as_ref()
                .filter(|_| answer.status < 400)
                .map(|path| {
                    serde_json::from_slice::<serde_json::Value>(&answer.body)
                        .ok()
                        .and_then(|v| get_field(&v, path).cloned())
                        .ok_or(path)
                });
            match field {
                Some(Ok(serde_json::Value::String(s))) => print_out(&s),
                Some(Ok(v)) => print_out(&v.to_string()),
                Some(Err(path)) => {
                    eprintln!("{}", render(&answer));
                    eprintln!("cofre api call: the answer has no field {path}");
                    return ExitCode::from(EXIT_HTTP_ERROR);
                }
                None if args.get.is_some() => eprintln!("{}", render(&answer)),
                None => print_out(&render(&answer)),
            }
            if answer.status >= 400 {
                ExitCode::from(EXIT_HTTP_ERROR)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(Failure::Config(e)) => {
            eprintln!("cofre api call: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Unavailable(e)) => {
            eprintln!("cofre api call: {e}");
            ExitCode::from(EXIT_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fields_set_and_got_by_dotted_path() {
        let mut body = serde_json::json!({"accountData": {"logo": 1}, "n": 5});
        set_field(&mut body, "accountData.customerNumber", "0001").unwrap();
        set_field(&mut body, "new.inner", "x").unwrap();
        assert_eq!(body["accountData"]["customerNumber"], "0001");
        assert_eq!(body["accountData"]["logo"], 1);
        assert_eq!(body["new"]["inner"], "x");
        assert!(set_field(&mut body, "n.deeper", "x").is_err());
        assert!(set_field(&mut body, "a..b", "x").is_err());
        assert_eq!(get_field(&body, "new.inner"), Some(&serde_json::json!("x")));
        assert_eq!(get_field(&body, "new.none"), None);
        assert_eq!(get_field(&body, "n.deeper"), None);
    }

    #[test]
    fn rendering_pretty_json_or_text() {
        let a = Answer {
            status: 200,
            body: b"{\"b\":[1],\"a\":\"x\"}".to_vec(),
        };
        assert_eq!(
            render(&a),
            "HTTP 200\n{\n  \"a\": \"x\",\n  \"b\": [\n    1\n  ]\n}"
        );
        let a = Answer {
            status: 204,
            body: Vec::new(),
        };
        assert_eq!(render(&a), "HTTP 204");
        let a = Answer {
            status: 502,
            body: b"bad gateway".to_vec(),
        };
        assert_eq!(render(&a), "HTTP 502\nbad gateway");
    }
}
