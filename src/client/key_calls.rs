//! Typed calls for key administration (security-officer role; protocol/README.md,
//! "Key administration"). Key material only crosses as TR-31 blocks under a KEK.

use super::requests::KeyGenerateRequest;
use super::{Client, ClientError, Response};
use crate::protocol::{Opcode, Tag};

impl Client {
    /// key.list: one line per key version
    /// (`id vN kind algorithm status kcv=.. exportable=.. created=..`).
    pub async fn key_list(&self) -> Result<String, ClientError> {
        self.call(Opcode::KeyList, |_| {})
            .await?
            .ok()?
            .need_str(Tag::Listing)
    }

    /// key.generate with the kind's default algorithm and length: `kcv`, `key_version`.
    pub async fn key_generate(
        &self,
        id: &str,
        kind: &str,
        algorithm: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.key_generate_with(&KeyGenerateRequest {
            key: id.to_owned(),
            kind: kind.to_owned(),
            algorithm: algorithm.map(str::to_owned),
            ..KeyGenerateRequest::default()
        })
        .await
    }

    /// key.generate with every option: `kcv`, `key_version`.
    pub async fn key_generate_with(
        &self,
        req: &KeyGenerateRequest,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::KeyGenerate, |w| {
            w.str(Tag::Key, &req.key).str(Tag::Kind, &req.kind);
            if let Some(a) = &req.algorithm {
                w.str(Tag::Algorithm, a);
            }
            if let Some(n) = req.key_length {
                w.u8(Tag::KeyLength, n);
            }
            if let Some(e) = req.exportable {
                w.bool(Tag::Exportable, e);
            }
            if let Some(n) = req.mac_min_length {
                w.u8(Tag::MacMinLength, n);
            }
        })
        .await?
        .ok()
    }

    /// key.import of a TR-31 block under a KEK (`kind`: when the block's usage does not
    /// name it): `kcv`, `key_version`.
    pub async fn key_import(
        &self,
        id: &str,
        kek: &str,
        key_block: &str,
        kind: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.call(Opcode::KeyImport, |w| {
            w.str(Tag::Key, id)
                .str(Tag::Kek, kek)
                .str(Tag::KeyBlock, key_block);
            if let Some(k) = kind {
                w.str(Tag::Kind, k);
            }
        })
        .await?
        .ok()
    }

    /// key.export as a TR-31 block under a KEK (`version`: `None` for the active one).
    pub async fn key_export(
        &self,
        id: &str,
        kek: &str,
        version: Option<u32>,
    ) -> Result<String, ClientError> {
        self.call(Opcode::KeyExport, |w| {
            w.str(Tag::Key, id).str(Tag::Kek, kek);
            if let Some(v) = version {
                w.u32(Tag::KeyVersion, v);
            }
        })
        .await?
        .ok()?
        .need_str(Tag::KeyBlock)
    }

    /// key.rotate: the new active version (the old one becomes verify-only).
    pub async fn key_rotate(&self, id: &str) -> Result<u32, ClientError> {
        self.call(Opcode::KeyRotate, |w| {
            w.str(Tag::Key, id);
        })
        .await?
        .ok()?
        .need_u32(Tag::KeyVersion)
    }

    /// key.retire of one version.
    pub async fn key_retire(&self, id: &str, version: u32) -> Result<(), ClientError> {
        self.call(Opcode::KeyRetire, |w| {
            w.str(Tag::Key, id).u32(Tag::KeyVersion, version);
        })
        .await?
        .ok()
        .map(|_| ())
    }
}
