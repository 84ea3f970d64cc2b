//! The bearer token of `cofre api call`, kept between runs in the user's runtime
//! directory (`$XDG_RUNTIME_DIR/cofre/`, mode 0700, files 0600; nothing is kept when that
//! variable is unset, or with `--no-token-cache`) until 30 seconds before it expires. A
//! token alone makes no call: every call is also signed with the client's secret, which
//! is never written. A cached token the facade no longer knows (it restarted) answers
//! `401 invalid_token`; the caller then forgets it and asks for a new one.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A token is not used in its last this many milliseconds.
const MARGIN_MS: u128 = 30_000;

/// Where one facade's token for one client is kept.
#[derive(Debug)]
pub struct TokenCache {
    file: PathBuf,
}

impl TokenCache {
    /// The cache of the token for `client_id` / `api_key` at `authority`, if the user
    /// has a runtime directory.
    pub fn new(authority: &str, client_id: &str, api_key: &str) -> Option<Self> {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)?;
        if !runtime.is_dir() {
            return None;
        }
        let mut h = Sha256::new();
        for part in [authority, client_id, api_key] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let name = format!("api-token-{}", &hex::encode(h.finalize())[..32]);
        Some(Self {
            file: runtime.join("cofre").join(name),
        })
    }

    /// The kept token, if it is still valid at `now_ms`.
    pub fn load(&self, now_ms: u128) -> Option<Zeroizing<String>> {
        let text = Zeroizing::new(std::fs::read_to_string(&self.file).ok()?);
        let (expires, token) = text.trim().split_once(' ')?;
        let expires: u128 = expires.parse().ok()?;
        let usable = expires > now_ms.saturating_add(MARGIN_MS)
            && !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_graphic());
        usable.then(|| Zeroizing::new(token.to_owned()))
    }

    /// Keeps `token` until `expires_ms` (best effort: a cache that cannot be written
    /// only means a token is asked for next time).
    pub fn store(&self, token: &str, expires_ms: u128) {
        let Some(dir) = self.file.parent() else {
            return;
        };
        if std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return;
        }
        let tmp = self
            .file
            .with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(format!("{expires_ms} {token}\n").as_bytes()));
        if written.is_err() || std::fs::rename(&tmp, &self.file).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Forgets the kept token.
    pub fn forget(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}
