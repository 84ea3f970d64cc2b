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
//! values with spaces quoted; `key.list`'s listing follows as an aligned table, one key
//! version a row), or with `--json` one JSON object with `status` and every field by
//! its name (the listing as the daemon's text). Exit status: any answer of the daemon is printed, but only `ok`
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
        if let Some(table) = table.filter(|t| !t.is_empty()) {
            line.push('\n');
            line.push_str(&table);
        }
        line
    }
}

fn tag_is_listing(name: &str) -> bool {
    name == Tag::Listing.name()
}

/// `key.list`'s listing (protocol/keys.md: `id vN kind algorithm status` then
/// `name=value` pairs) as an aligned table with a header line, one key version a row.
/// Columns are the five positional ones then every `name=` seen, in order of first
/// appearance (a key without one shows `-`). A line that does not have the five
/// positional words is kept as it is, after the table.
fn listing_table(text: &str) -> String {
    const POSITIONAL: [&str; 5] = ["ID", "VERSION", "KIND", "ALGORITHM", "STATUS"];
    let mut names: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<(Option<String>, String)>> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < POSITIONAL.len() {
            other.push(line);
            continue;
        }
        let mut row: Vec<(Option<String>, String)> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            match w.split_once('=').filter(|_| i >= POSITIONAL.len()) {
                Some((n, v)) => {
                    let n = n.to_uppercase();
                    if !names.contains(&n) {
                        names.push(n.clone());
                    }
                    row.push((Some(n), v.to_owned()));
                }
                None if i == 1 => row.push((None, w.trim_start_matches('v').to_owned())),
                None => row.push((None, (*w).to_owned())),
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return other.join("\n");
    }
    let header: Vec<String> = POSITIONAL
        .iter()
        .map(|s| (*s).to_owned())
        .chain(names.iter().cloned())
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut out: Vec<String> = row
                .iter()
                .filter(|(n, _)| n.is_none())
                .map(|(_, v)| v.clone())
                .collect();
            out.resize(POSITIONAL.len(), String::new());
            for n in &names {
                let v = row.iter().find(|(k, _)| k.as_ref() == Some(n));
                out.push(v.map_or_else(|| "-".to_owned(), |(_, v)| v.clone()));
            }
            out
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(&header)
                .chain(&cells)
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out: Vec<String> = std::iter::once(&header)
        .chain(&cells)
        .map(|r| {
            let padded: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        })
        .collect();
    out.extend(other.iter().map(|l| (*l).to_owned()));
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
                .str(Tag::Reason, "a b=c");
        })
        .unwrap();
        let (_, r) = Response::decode(buf.split_off(LENGTH_PREFIX)).unwrap();
        assert_eq!(
            render(&r, false),
            r#"ok kcv=08D7B4 key_version=2 mac=AB01 locked=false reason="a b=c""#
        );
        let v: serde_json::Value = serde_json::from_str(&render(&r, true)).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["key_version"], 2);
        assert_eq!(v["mac"], "AB01");
        assert_eq!(v["locked"], false);
        assert_eq!(v["reason"], "a b=c");
    }

    /// key.list as the daemon writes it (protocol/keys.md) prints as an aligned table.
    #[test]
    fn key_listing_renders_as_a_table() {
        let listing = "zpk.example v1 zpk tdes active kcv=08D7B4 exportable=true created=2026-11-25T06:46:15Z\n\
            mac.iso8583 v12 mac tdes verify-only kcv=A1B2C3 exportable=false created=2026-11-26T00:00:00Z mac_min_length=4\n\
            odd";
        let mut buf = Vec::new();
        encode_response(&mut buf, 0x0060, 1, Status::Ok, |w| {
            w.str(Tag::Listing, listing);
        })
        .unwrap();
        let (_, r) = Response::decode(buf.split_off(LENGTH_PREFIX)).unwrap();
        let expect = [
            "ok",
            "ID           VERSION  KIND  ALGORITHM  STATUS       KCV     EXPORTABLE  CREATED               MAC_MIN_LENGTH",
            "zpk.example  1        zpk   tdes       active       08D7B4  true        2026-11-25T06:46:15Z  -",
            "mac.iso8583  12       mac   tdes       verify-only  A1B2C3  false       2026-11-26T00:00:00Z  4",
            "odd",
        ];
        assert_eq!(render(&r, false), expect.join("\n"));
        // JSON keeps the daemon's text as it is.
        let v: serde_json::Value = serde_json::from_str(&render(&r, true)).unwrap();
        assert_eq!(v["listing"], listing);
        // An empty store: the status alone.
        assert_eq!(listing_table(""), "");
    }
}
