//! `cofre client [options] <operation> [--<field> <value>]...`: one protocol call from a
//! shell.
//!
//! The operation is its protocol name (`health`, `pin.verify`, `key.list`, ...); each
//! field is given by its protocol name, `_` or `-` alike (`--pin-block`), with its value
//! in the field's type: decimal for numbers, `true`/`false`, upper- or lower-case hex for
//! bytes, text otherwise. Every operation of protocol/README.md is reachable this way,
//! and nothing here needs updating when one is added. Options before the operation
//! configure the client (`--key` there is the client's private key; after the
//! operation it is the request's `key` field); `--json` may also come after it.
//!
//! Output: the status then `name=value` pairs on one line (bytes in upper-case hex,
//! values with spaces quoted), or with `--json` one JSON object with `status` and every
//! field by its name. Exit status: any answer of the daemon is printed, but only `ok`
//! exits 0. Other statuses (`verification_failed` included, so scripts can test a
//! verification by the exit status) return the line as the error, which the binary
//! prints on stderr after `cofre: ` and exits 1; so do connection and usage errors.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::client::{Client, ClientConfig, Response};
use crate::protocol::{FieldType, Opcode, Tag};

/// Arguments of `cofre client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Daemon address; repeat for failover (tried in order).
    #[arg(long = "address", default_value = "127.0.0.1:7300")]
    pub addresses: Vec<String>,
    /// Client identity: uses `<pki>/client-<identity>.pem` and its key.
    #[arg(long, default_value = "issuing-host-1")]
    pub identity: String,
    /// Directory of the certificates (relative to the current directory).
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
    /// Name the daemon's certificate must carry.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the answer (and for each connection attempt).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// The operation and its fields, by protocol name: `pin.verify --pan ... --key ...`.
    ///
    /// Everything after the operation is a field, `--key` included: one argument list,
    /// so that clap never takes a field for one of the options above.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPERATION [--FIELD VALUE]"
    )]
    pub call: Vec<String>,
}

/// A parsed field value.
#[derive(Debug, PartialEq)]
enum Value {
    U8(u8),
    U32(u32),
    U64(u64),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
}

/// The fields of the command line, and whether `--json` was among them.
fn parse_fields(args: &[String]) -> Result<(Vec<(Tag, Value)>, bool), String> {
    let mut out = Vec::new();
    let mut json = false;
    let mut it = args.iter();
    while let Some(name) = it.next() {
        if name == "--json" {
            json = true;
            continue;
        }
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
        // The value is not repeated: it may be a PAN or a PIN block.
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
    Ok((out, json))
}

/// One field's value as JSON and as text.
fn field_value(tag: Tag, v: &[u8]) -> (serde_json::Value, String) {
    match tag.field_type() {
        FieldType::U8 | FieldType::U32 | FieldType::U64 => {
            let n = v.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            (n.into(), n.to_string())
        }
        FieldType::Bool => {
            let b = v.first() == Some(&1);
            (b.into(), b.to_string())
        }
        FieldType::Str | FieldType::Text => {
            let s = String::from_utf8_lossy(v).into_owned();
            (s.clone().into(), s)
        }
        FieldType::Bytes => {
            let h = hex::encode_upper(v);
            (h.clone().into(), h)
        }
    }
}

fn render(r: &Response, json: bool) -> String {
    let fields = r.fields();
    let values = fields
        .iter()
        .map(|(tag, v)| (tag.name(), field_value(tag, v)));
    if json {
        let mut map = serde_json::Map::new();
        map.insert("status".into(), r.status_name().into());
        for (name, (j, _)) in values {
            map.insert(name.to_owned(), j);
        }
        serde_json::Value::Object(map).to_string()
    } else {
        let mut line = r.status_name();
        let mut table = None;
        for (name, (_, text)) in values {
            if tag_is_listing(name) {
                table = Some(listing_table(&text));
                continue;
            }
            let quote = text.is_empty() || text.contains([' ', '\n', '"', '=']);
            line.push(' ');
            line.push_str(name);
            line.push('=');
            line.push_str(&if quote { format!("{text:?}") } else { text });
        }
        if let Some(table) = table {
            line.push('\n');
            line.push_str(&table);
        }
        line
    }
}

fn tag_is_listing(name: &str) -> bool {
    name == Tag::Listing.name()
}

/// Column titles of `key.list`'s table, in the order of the listing's words.
const LISTING_COLUMNS: [&str; 8] = [
    "ID",
    "VERSION",
    "KIND",
    "ALGORITHM",
    "STATUS",
    "KCV",
    "EXPORTABLE",
    "CREATED",
];

/// `key.list`'s listing (protocol/README.md: `id vN kind algorithm status kcv=X
/// exportable=B created=T`, one key version a line) as an aligned table with a title
/// row. A line of another shape is kept as it came, below the table, so nothing the
/// daemon says is lost.
fn listing_table(listing: &str) -> String {
    let mut rows: Vec<Vec<&str>> = vec![LISTING_COLUMNS.to_vec()];
    let mut other = Vec::new();
    for line in listing.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let row: Option<Vec<&str>> = (words.len() == LISTING_COLUMNS.len()).then(|| {
            words
                .iter()
                .map(|w| {
                    ["kcv=", "exportable=", "created="]
                        .iter()
                        .find_map(|p| w.strip_prefix(p))
                        .unwrap_or(w)
                })
                .collect()
        });
        match row {
            Some(r) => rows.push(r),
            None => other.push(line),
        }
    }
    let widths: Vec<usize> = (0..LISTING_COLUMNS.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    out.extend(other.into_iter().map(str::to_owned));
    out.join("\n")
}

fn config(args: &ClientArgs) -> ClientConfig {
    let mut config = ClientConfig::for_identity(args.addresses.clone(), &args.pki, &args.identity);
    if let Some(ca) = &args.ca {
        config.ca.clone_from(ca);
    }
    if let Some(c) = &args.cert {
        config.cert.clone_from(c);
    }
    if let Some(k) = &args.key {
        config.key.clone_from(k);
    }
    config.server_name.clone_from(&args.server_name);
    config.timeout = Duration::from_secs(args.timeout.max(1));
    config
}

/// Runs one call and returns the line to print (see the module comment for the exit
/// status).
pub fn run(args: ClientArgs) -> Result<String, String> {
    let Some((operation, fields)) = args.call.split_first() else {
        return Err("no operation given".into());
    };
    let op = Opcode::from_name(operation).ok_or_else(|| {
        let names: Vec<&str> = Opcode::ALL.iter().map(|o| o.name()).collect();
        format!(
            "unknown operation {operation:?} (one of: {})",
            names.join(", ")
        )
    })?;
    let (fields, json_after) = parse_fields(fields)?;
    let json = args.json || json_after;
    let config = config(&args);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("async runtime: {e}"))?;
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
    let line = render(&response, json);
    if response.is_ok() {
        Ok(line)
    } else {
        Err(line)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::protocol::{LENGTH_PREFIX, Status, encode_response};

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn fields_by_spec_name_in_their_types() {
        let (f, json) = parse_fields(&strings(&[
            "--pin-block",
            "0a1B",
            "--format",
            "4",
            "--json",
            "--token_version",
            "7",
            "--exportable",
            "true",
            "--counter",
            "18446744073709551615",
            "--key",
            "zpk.example",
        ]))
        .unwrap();
        assert!(json);
        assert_eq!(
            f,
            vec![
                (Tag::PinBlock, Value::Bytes(vec![0x0A, 0x1B])),
                (Tag::Format, Value::U8(4)),
                (Tag::TokenVersion, Value::U32(7)),
                (Tag::Exportable, Value::Bool(true)),
                (Tag::Counter, Value::U64(u64::MAX)),
                (Tag::Key, Value::Str("zpk.example".into())),
            ]
        );
    }

    #[test]
    fn bad_fields_are_one_line_errors_without_the_value() {
        for (args, expect) in [
            (&["--nope", "1"][..], "unknown field --nope"),
            (&["--format"][..], "--format needs a value"),
            (&["--format", "300"][..], "--format: not a valid"),
            (
                &["--pin-block", "4111111111111111x"][..],
                "--pin_block: not a valid",
            ),
            (&["pan"][..], "expected --<field>"),
        ] {
            let e = parse_fields(&strings(args)).unwrap_err();
            assert!(e.contains(expect), "{e}");
            assert!(!e.contains("4111111111111111x") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn rendering_as_a_line_and_as_json() {
        let mut buf = Vec::new();
        encode_response(&mut buf, 0x0061, 1, Status::Ok, |w| {
            w.str(Tag::Kcv, "08D7B4")
                .u32(Tag::KeyVersion, 2)
                .bytes(Tag::Mac, &[0xAB, 0x01])
                .bool(Tag::Locked, false)
                .str(Tag::Listing, "a v1 zpk\nb v2");
        })
        .unwrap();
        let (_, r) = Response::decode(buf.split_off(LENGTH_PREFIX)).unwrap();
        assert_eq!(
            render(&r, false),
            "ok kcv=08D7B4 key_version=2 mac=AB01 locked=false\n\
             ID  VERSION  KIND  ALGORITHM  STATUS  KCV  EXPORTABLE  CREATED\n\
             a v1 zpk\n\
             b v2"
        );
        let v: serde_json::Value = serde_json::from_str(&render(&r, true)).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["key_version"], 2);
        assert_eq!(v["mac"], "AB01");
        assert_eq!(v["locked"], false);
        assert_eq!(v["listing"], "a v1 zpk\nb v2");
    }

    #[test]
    fn key_listing_is_a_table() {
        let listing = "zpk.example v1 zpk tdes active kcv=08D7B4 exportable=true created=2026-11-25T06:46:15Z\n\
                       dcvv2.example v12 dcvv2 hmac verify-only kcv=FF9212 exportable=false created=2026-11-25T06:46:16Z";
        assert_eq!(
            listing_table(listing),
            "ID             VERSION  KIND   ALGORITHM  STATUS       KCV     EXPORTABLE  CREATED\n\
             zpk.example    v1       zpk    tdes       active       08D7B4  true        2026-11-25T06:46:15Z\n\
             dcvv2.example  v12      dcvv2  hmac       verify-only  FF9212  false       2026-11-25T06:46:16Z"
        );
        assert_eq!(listing_table(""), LISTING_COLUMNS.join("  "));
    }
}
