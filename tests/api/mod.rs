//! Test harness for the REST facade: a real `cofre hsm` and a real `cofre api` process
//! on loopback over a private copy of `keys-example/`, on a fresh SQLite file or a fresh
//! PostgreSQL database (`COFRE_TEST_POSTGRES_URL`, whose role may create databases;
//! `.ci/run` sets it up), and a small HTTP/1.1 client that signs calls as the processor's
//! clients do. Every processor-path response can be checked against the spec with
//! [`Resp::check`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../daemon/mod.rs"]
pub mod daemon;
pub mod flow;
pub mod mass;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cofre::api::auth::signature;
use cofre::api::openapi::Spec;
use serde_json::Value;

pub use daemon::Daemon;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The two example clients (keys-example/api-clients.toml).
pub const CLIENT_1: (&str, &str, &str) = (
    "example-client",
    "example-api-key",
    "example-secret-not-for-production",
);
/// A second tenant.
pub const CLIENT_2: (&str, &str, &str) = (
    "example-client-2",
    "example-api-key-2",
    "example-secret-2-not-for-production",
);

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in the scratch directory.
    Sqlite,
    /// A fresh database on the server of `COFRE_TEST_POSTGRES_URL`.
    Postgres,
}

/// The PostgreSQL URL. A missing `COFRE_TEST_POSTGRES_URL` fails the test unless the
/// run opts out with `COFRE_SKIP_POSTGRES=1`; the PostgreSQL tests of an opted-out run
/// are reported `ignored` in the summary (`skip_postgres`, set by `build.rs`), so this
/// returns `None` only to a test run explicitly with `--ignored`.
pub fn postgres_url() -> Option<String> {
    match std::env::var("COFRE_TEST_POSTGRES_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("COFRE_SKIP_POSTGRES").as_deref() == Ok("1") => None,
        Err(_) => panic!(
            "COFRE_TEST_POSTGRES_URL is not set: run scripts/test (it starts PostgreSQL), \
             or opt out of the PostgreSQL half with COFRE_SKIP_POSTGRES=1"
        ),
    }
}

/// Creates a fresh database on the server of `url`; returns its URL.
pub fn fresh_postgres(url: &str) -> String {
    let name = format!(
        "cofre_t_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let base = url.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

/// A daemon and a facade.
pub struct System {
    pub hsm: Daemon,
    pub api: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub db: Db,
    pub database: String,
    pub log: PathBuf,
    /// Clients added with [`System::start_with_clients`]: (id, api key, secret).
    pub extra_clients: Vec<(String, String, String)>,
}

impl System {
    /// Starts both on a fresh database; `None` if that database kind is not available.
    pub fn start(name: &str, db: Db) -> Option<Self> {
        Self::start_with_clients(name, db, &[])
    }

    /// Starts both, with extra API clients `(client id, tenant)` registered first.
    pub fn start_with_clients(name: &str, db: Db, clients: &[(&str, &str)]) -> Option<Self> {
        Self::start_full(name, db, clients, &[], &[])
    }

    /// Starts both, the daemon's `hsm.toml` edited first (`(from, to)` replacements,
    /// see [`daemon::scratch_with`]).
    pub fn start_with_hsm_edits(name: &str, db: Db, hsm_edits: &[(&str, &str)]) -> Option<Self> {
        Self::start_full(name, db, &[], hsm_edits, &[])
    }

    /// Starts both, the facade's `api.toml` edited first (`(from, to)` replacements, each
    /// of which must match).
    pub fn start_with_api_edits(name: &str, db: Db, api_edits: &[(&str, &str)]) -> Option<Self> {
        Self::start_full(name, db, &[], &[], api_edits)
    }

    fn start_full(
        name: &str,
        db: Db,
        clients: &[(&str, &str)],
        hsm_edits: &[(&str, &str)],
        api_edits: &[(&str, &str)],
    ) -> Option<Self> {
        let database = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(fresh_postgres(&postgres_url()?)),
        };
        let hsm = if hsm_edits.is_empty() {
            Daemon::start(name)
        } else {
            Daemon::start_in(daemon::scratch_with(name, hsm_edits))
        };
        let dir = hsm.dir.clone();
        let config = dir.join("api.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        // Tests log every response that breaks the spec.
        text = text.replacen("max_body", "check_responses = true\nmax_body", 1);
        for (from, to) in api_edits {
            assert!(text.contains(from), "api.toml has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        std::fs::write(&config, text).unwrap();
        let mut extra_clients = Vec::new();
        for (id, tenant) in clients {
            let out = Command::new(env!("CARGO_BIN_EXE_cofre"))
                .args(["api", "add-client", "--config"])
                .arg(&config)
                .args(["--client-id", id, "--tenant", tenant])
                .output()
                .unwrap();
            assert!(out.status.success(), "add-client: {out:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .unwrap()
                    .to_owned()
            };
            extra_clients.push(((*id).to_owned(), field("api_key"), field("secret")));
        }
        let database =
            database.unwrap_or_else(|| format!("sqlite://{}", dir.join("state/api.db").display()));
        let log = dir.join("api.log");
        let (api, addr) = spawn_api(&dir, &hsm.addr, &database, &log, "127.0.0.1:0");
        Some(Self {
            hsm,
            api,
            addr,
            dir,
            db,
            database,
            log,
            extra_clients,
        })
    }

    /// Kills the facade with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill_api(&mut self) {
        let _ = self.api.kill();
        let _ = self.api.wait();
    }

    /// Starts the facade again on the same database and configuration (a new port).
    pub fn restart_api(&mut self) {
        let (api, addr) = spawn_api(
            &self.dir,
            &self.hsm.addr,
            &self.database,
            &self.log,
            "127.0.0.1:0",
        );
        self.api = api;
        self.addr = addr;
    }

    /// Another facade process on the same database, daemon and configuration, as a
    /// second instance behind a load balancer would be (its own port and log).
    pub fn another_api(&self, name: &str) -> Facade {
        let log = self.dir.join(format!("api-{name}.log"));
        let (child, addr) = spawn_api(
            &self.dir,
            &self.hsm.addr,
            &self.database,
            &log,
            "127.0.0.1:0",
        );
        Facade { child, addr, log }
    }

    /// Runs `f` on a pool of the facade's database (checks of what the API does not
    /// show).
    pub fn with_db<T>(&self, f: impl AsyncFnOnce(&sqlx::AnyPool) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&self.database).await.unwrap();
            let out = f(&pool).await;
            pool.close().await;
            out
        })
    }

    /// The facade's log so far.
    pub fn api_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `i`th client added by [`System::start_with_clients`], signed in.
    pub fn extra_client(&self, i: usize) -> Api {
        let (id, key, secret) = &self.extra_clients[i];
        self.client((id, key, secret))
    }

    /// A signed-in client.
    pub fn client(&self, who: (&str, &str, &str)) -> Api {
        let mut api = Api {
            addr: self.addr.clone(),
            client_id: who.0.to_owned(),
            api_key: who.1.to_owned(),
            secret: who.2.to_owned(),
            token: String::new(),
        };
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", who.1, who.2));
        let r = raw_http(
            &self.addr,
            "POST",
            "/token",
            &[
                ("Authorization", format!("Basic {basic}")),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            b"grant_type=client_credentials",
        );
        assert_eq!(r.status, 200, "token: {}", r.text);
        api.token = r.json["access_token"].as_str().unwrap().to_owned();
        api
    }

    /// Every table of the database as text, for secrecy greps: the one database dump of
    /// the facade's tests. Before dumping it plants a control value (a history row with
    /// a random marker, upper and lower case), and the dump fails unless it finds it: a
    /// dump that loses cells cannot pass a "secret not found" grep. A cell that decodes
    /// as neither text nor integer fails the dump instead of becoming empty.
    pub fn dump_database(&self) -> Dump {
        let control = format!("Dump-Control-{}", request_id());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let text = rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&self.database).await.unwrap();
            sqlx::query("INSERT INTO history (id, tenant, entity, entity_id, actor, action, at_ms, before_json, after_json) VALUES ($1, 'dump-control', 'control', 0, 'test', $2, 0, NULL, NULL)")
                .bind(-(i64::try_from(NEXT.fetch_add(1, Ordering::SeqCst)).unwrap() + 1))
                .bind(control.as_str())
                .execute(&pool)
                .await
                .unwrap();
            let tables_sql = match self.db {
                Db::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
                Db::Postgres => {
                    "SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = 'public'"
                }
            };
            let tables: Vec<String> = sqlx::query_scalar(tables_sql)
                .fetch_all(&pool)
                .await
                .unwrap();
            let mut out = String::new();
            for t in tables.into_iter().filter(|t| !t.starts_with("_sqlx")) {
                out.push_str(&format!("== {t}\n"));
                match self.db {
                    Db::Postgres => {
                        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT CAST(row_to_json(x) AS TEXT) FROM \"{t}\" x"
                        )))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                        for r in rows {
                            out.push_str(&r);
                            out.push('\n');
                        }
                    }
                    Db::Sqlite => {
                        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{t}\"")))
                            .fetch_all(&pool)
                            .await
                            .unwrap();
                        for row in rows {
                            use sqlx::Row;
                            for i in 0..row.len() {
                                let cell = row
                                    .try_get::<Option<String>, _>(i)
                                    .map(Option::unwrap_or_default)
                                    .or_else(|_| {
                                        row.try_get::<Option<i64>, _>(i)
                                            .map(|n| n.map(|n| n.to_string()).unwrap_or_default())
                                    })
                                    .or_else(|_| row.try_get::<Vec<u8>, _>(i).map(hex::encode))
                                    .unwrap_or_else(|e| panic!("{t} column {i} does not decode: {e}"));
                                out.push_str(&cell);
                                out.push('|');
                            }
                            out.push('\n');
                        }
                    }
                }
            }
            pool.close().await;
            out
        });
        let dump = Dump {
            lower: text.to_lowercase(),
            text,
        };
        assert!(
            dump.text.contains(&control) && dump.lower.contains(&control.to_lowercase()),
            "the dump lost its planted control value: it cannot prove a secret absent"
        );
        dump
    }
}

/// A database dump (see [`System::dump_database`]).
#[derive(Debug, Clone)]
pub struct Dump {
    /// As stored.
    pub text: String,
    /// Lower case, for case-insensitive greps (hex keys and blocks in either case).
    pub lower: String,
}

impl Dump {
    /// Whether `value` appears, in any letter case.
    pub fn contains(&self, value: &str) -> bool {
        self.lower.contains(&value.to_lowercase())
    }

    /// Fails if `secret` appears in any letter case.
    pub fn assert_absent(&self, what: &str, secret: &str) {
        assert!(!secret.is_empty(), "an empty {what} proves nothing");
        assert!(!self.contains(secret), "{what} in the database");
    }
}

/// Starts `cofre api` and waits for its listening line.
fn spawn_api(dir: &Path, hsm: &str, database: &str, log: &Path, listen: &str) -> (Child, String) {
    let mut api = Command::new(env!("CARGO_BIN_EXE_cofre"))
        .args(["api", "run", "--config"])
        .arg(dir.join("api.toml"))
        .args(["--listen", listen, "--hsm", hsm, "--database", database])
        .env("COFRE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .expect("start cofre api");
    let mut lines = BufReader::new(api.stdout.take().unwrap()).lines();
    let line = lines
        .next()
        .unwrap_or_else(|| {
            panic!(
                "api exited: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .unwrap();
    let addr = line
        .strip_prefix("api listening on https://")
        .unwrap_or_else(|| panic!("not an HTTPS listener: {line}"))
        .to_owned();
    (api, addr)
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = self.api.kill();
        let _ = self.api.wait();
        // A passed test's PostgreSQL database goes with it (a failed one's stays, to be
        // looked at).
        if self.db == Db::Postgres && !std::thread::panicking() {
            drop_postgres(&self.database);
        }
    }
}

/// Drops a database made by [`fresh_postgres`] (best effort: a leftover costs disk only).
fn drop_postgres(database: &str) {
    let (Some(url), Some((_, name))) = (postgres_url(), database.rsplit_once('/')) else {
        return;
    };
    if !name.starts_with("cofre_t_")
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        if let Ok(pool) = sqlx::AnyPool::connect(&url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
            pool.close().await;
        }
    });
}

/// A facade started by [`System::another_api`]; SIGKILLed on drop.
pub struct Facade {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Facade {
    /// Kills it with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `api` (same client, same token) sending its calls to this facade.
    pub fn route(&self, api: &Api) -> Api {
        Api {
            addr: self.addr.clone(),
            ..api.clone()
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Facade {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// A header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Checks the body against the processor's spec for `method spec_path` and this
    /// status (statuses the spec gives no schema for are not checked); panics with the
    /// violations.
    pub fn check(&self, method: &str, spec_path: &str) -> &Self {
        let spec = Spec::firstvision();
        let ops = &spec.document()["paths"][spec_path][method.to_ascii_lowercase()];
        assert!(!ops.is_null(), "the spec has no {method} {spec_path}");
        if let Some(schema) =
            spec.response_schema(spec_path, &method.to_ascii_lowercase(), self.status)
        {
            let v = spec.validate(schema, &self.json);
            assert!(
                v.is_empty(),
                "{method} {spec_path} {}: response breaks the spec: {v:?}\n{}",
                self.status,
                self.text
            );
        }
        self
    }

    /// Asserts the status, printing the body otherwise.
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }

    /// cofre's error code: `error.cofreCode` (the processor-shape `error.code` may be the
    /// processor's code), or problem+json `code`.
    pub fn code(&self) -> String {
        self.json["error"]["cofreCode"]
            .as_str()
            .or_else(|| self.json["error"]["code"].as_str())
            .or_else(|| self.json["code"].as_str())
            .unwrap_or("")
            .to_owned()
    }
}

/// One HTTPS exchange (HTTP/1.1, Connection: close).
pub fn raw_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Resp {
    try_raw_http(addr, method, path, headers, body).expect("connect to the facade")
}

/// The TLS settings of the tests' HTTPS client: the example set's development CA
/// (`keys-example/pki/ca.pem`, which signs the facade's `api.pem`), no client
/// certificate.
pub fn tls_client_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/pki/ca.pem");
        client_config(&ca, None)
    }))
}

/// A client TLS configuration trusting `ca`, presenting `identity` (certificate and
/// key PEM files) if given.
pub fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
    };
    Arc::new(config)
}

/// A connection to the facade: HTTPS with `config` (the tests' client by default).
pub type Conn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to the facade over TLS (the handshake is done on the first write).
pub fn connect_tls(addr: &str, config: Arc<rustls::ClientConfig>) -> Option<Conn> {
    let tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).ok()?;
    Some(rustls::StreamOwned::new(conn, tcp))
}

/// [`raw_http`], `None` if the facade cannot be reached (a status of 0 is an answer cut
/// short).
pub fn try_raw_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<Resp> {
    raw_http_with(addr, tls_client_config(), method, path, headers, body)
}

/// One HTTPS exchange with a given client TLS configuration.
pub fn raw_http_with(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<Resp> {
    let mut s = connect_tls(addr, config)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (413) before reading all of a large body.
    let _ = s.write_all(&bytes);
    let mut out = Vec::new();
    // A peer that closes without close_notify ends the read with an error: what was
    // read is the answer.
    let _ = s.read_to_end(&mut out);
    Some(parse_response(&out))
}

/// Parses an HTTP/1.1 response read whole (status 0: none).
pub fn parse_response(out: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text: body,
        json,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A signed-in API client.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: String,
    pub client_id: String,
    pub api_key: String,
    pub secret: String,
    pub token: String,
}

/// A fresh request id.
pub fn request_id() -> String {
    format!(
        "t-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

impl Api {
    /// The signed headers of a call with `body`, request id `rid`, timestamp `ts`.
    pub fn headers(&self, rid: &str, ts: u64, body: &[u8]) -> Vec<(&'static str, String)> {
        let ts = ts.to_string();
        vec![
            ("apikey", self.api_key.clone()),
            ("X-ClientID", self.client_id.clone()),
            ("Authorization", format!("Bearer {}", self.token)),
            ("Timestamp", ts.clone()),
            ("X-Client-Request-Id", rid.to_owned()),
            (
                "Signature",
                signature(self.secret.as_bytes(), &self.api_key, rid, &ts, body),
            ),
            ("Content-Type", "application/json".into()),
        ]
    }

    /// A signed call with a JSON body (`Null`: no body) and a fresh request id.
    pub fn call(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.call_rid(method, path, body, &request_id())
    }

    /// A signed call with a given request id.
    pub fn call_rid(&self, method: &str, path: &str, body: &Value, rid: &str) -> Resp {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.call_raw(method, path, &bytes, rid, now_ms())
    }

    /// A signed call with a given request id; `None` if the facade is unreachable.
    pub fn try_call_rid(&self, method: &str, path: &str, body: &Value, rid: &str) -> Option<Resp> {
        let bytes = body.to_string().into_bytes();
        let headers = self.headers(rid, now_ms(), &bytes);
        try_raw_http(&self.addr, method, path, &headers, &bytes)
    }

    /// A signed call with extra headers (`Idempotency-Key`) and a given request id.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        rid: &str,
        extra: &[(&'static str, String)],
    ) -> Resp {
        let bytes = body.to_string().into_bytes();
        let mut headers = self.headers(rid, now_ms(), &bytes);
        headers.extend(extra.iter().cloned());
        raw_http(&self.addr, method, path, &headers, &bytes)
    }

    /// A signed call with raw bytes, request id and timestamp.
    pub fn call_raw(&self, method: &str, path: &str, body: &[u8], rid: &str, ts: u64) -> Resp {
        let headers = self.headers(rid, ts, body);
        raw_http(&self.addr, method, path, &headers, body)
    }
}
