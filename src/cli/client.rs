//! `cofre client <operation> [--<field> <value>]...`: one protocol call from a shell.
//!
//! The operation is its protocol name (`pin.verify`, `health`, ...); each field is given
//! by its protocol name with `-` or `_` (`--pin-block`), its value in the field's type:
//! decimal for numbers, `true`/`false`, hex for bytes, text otherwise. Every operation
//! of protocol/README.md is reachable this way, and nothing needs updating when one is
//! added.
//!
//! Output: the status then `name=value` pairs on one line (bytes in upper-case hex), or
//! with `--json` one JSON object. The exit status is 0 for `ok`, 1 for any other status
//! (the line is still printed, on stderr) and for connection or usage errors.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::client::{Client, ClientConfig};
use crate::protocol::{FieldType, Opcode, Status, Tag};

/// Arguments of `cofre client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Daemon address; repeat for failover (tried in order).
    #[arg(long = "address", default_value = "127.0.0.1:7300")]
    pub addresses: Vec<String>,
    /// Client identity: uses `<pki>/client-<identity>.pem` and its key.
    #[arg(long, default_value = "issuing-host-1")]
    pub identity: String,
    /// Directory of the example PKI.
    #[arg(long, default_value = "keys-example/pki")]
    pub pki: PathBuf,
    /// CA certificate (overrides `<pki>/ca.pem`).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Client certificate (overrides the identity's).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (overrides the identity's).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// The operation's protocol name, e.g. `pin.verify`.
    pub operation: String,
    /// Fields: `--<name> <value>` pairs.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub fields: Vec<String>,
}

/// A parsed field value.
enum Value {
    U8(u8),
    U32(u32),
    U64(u64),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
}

fn parse_fields(args: &[String]) -> Result<Vec<(Tag, Value)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(name) = it.next() {
        let bare = name
            .strip_prefix("--")
            .ok_or_else(|| format!("expected --<field>, got {name:?}"))?
            .replace('-', "_");
        let tag = Tag::ALL
            .iter()
            .copied()
            .find(|t| t.name() == bare)
            .ok_or_else(|| {
                format!("unknown field --{bare} (see protocol/README.md, \"Field tags\")")
            })?;
        let raw = it.next().ok_or_else(|| format!("--{bare} needs a value"))?;
        let bad = || format!("--{bare}: not a valid {:?} value", tag.field_type());
        let v = match tag.field_type() {
            FieldType::U8 => Value::U8(raw.parse().map_err(|_| bad())?),
            FieldType::U32 => Value::U32(raw.parse().map_err(|_| bad())?),
            FieldType::U64 => Value::U64(raw.parse().map_err(|_| bad())?),
            FieldType::Bool => Value::Bool(raw.parse().map_err(|_| bad())?),
            FieldType::Str | FieldType::Text => Value::Str(raw.clone()),
            FieldType::Bytes => Value::Bytes(hex::decode(raw).map_err(|_| bad())?),
        };
        out.push((tag, v));
    }
    Ok(out)
}

fn render(r: &crate::client::Response, json: bool) -> String {
    let status = r.status().map_or_else(
        || format!("status_{}", r.status_code),
        |s| s.name().to_owned(),
    );
    let fields = r.fields();
    let values: Vec<(String, serde_json::Value, String)> = fields
        .iter()
        .map(|(tag, v)| {
            let (j, text) = match tag.field_type() {
                FieldType::U8 | FieldType::U32 | FieldType::U64 => {
                    let n = v.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
                    (serde_json::Value::from(n), n.to_string())
                }
                FieldType::Bool => {
                    let b = v.first() == Some(&1);
                    (serde_json::Value::from(b), b.to_string())
                }
                FieldType::Str | FieldType::Text => {
                    let s = String::from_utf8_lossy(v).into_owned();
                    (serde_json::Value::from(s.clone()), s)
                }
                FieldType::Bytes => {
                    let h = hex::encode_upper(v);
                    (serde_json::Value::from(h.clone()), h)
                }
            };
            (tag.name().to_owned(), j, text)
        })
        .collect();
    if json {
        let mut map = serde_json::Map::new();
        map.insert("status".into(), status.into());
        for (name, j, _) in values {
            map.insert(name, j);
        }
        serde_json::Value::Object(map).to_string()
    } else {
        let mut line = status;
        for (name, _, text) in values {
            if text.contains(' ') || text.contains('\n') {
                line.push_str(&format!(" {name}={text:?}"));
            } else {
                line.push_str(&format!(" {name}={text}"));
            }
        }
        line
    }
}

/// Runs one call and returns the line to print.
pub fn run(args: ClientArgs) -> Result<String, String> {
    let op = Opcode::from_name(&args.operation).ok_or_else(|| {
        let names: Vec<&str> = Opcode::ALL.iter().map(|o| o.name()).collect();
        format!(
            "unknown operation {:?} (one of: {})",
            args.operation,
            names.join(", ")
        )
    })?;
    let fields = parse_fields(&args.fields)?;
    let mut config = ClientConfig::for_identity(args.addresses.clone(), &args.pki, &args.identity);
    if let Some(ca) = args.ca {
        config.ca = ca;
    }
    if let Some(c) = args.cert {
        config.cert = c;
    }
    if let Some(k) = args.key {
        config.key = k;
    }
    config.timeout = Duration::from_secs(args.timeout.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let response = runtime.block_on(async {
        let client = Client::connect(config).await.map_err(|e| e.to_string())?;
        client
            .call(op, |w| {
                for (tag, v) in &fields {
                    match v {
                        Value::U8(n) => w.u8(*tag, *n),
                        Value::U32(n) => w.u32(*tag, *n),
                        Value::U64(n) => w.u64(*tag, *n),
                        Value::Bool(b) => w.bool(*tag, *b),
                        Value::Str(s) => w.str(*tag, s),
                        Value::Bytes(b) => w.bytes(*tag, b),
                    };
                }
            })
            .await
            .map_err(|e| e.to_string())
    })?;
    let line = render(&response, args.json);
    if response.status() == Some(Status::Ok) {
        Ok(line)
    } else {
        Err(line)
    }
}
