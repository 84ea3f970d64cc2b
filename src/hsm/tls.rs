//! TLS for the daemon: TLS 1.3 only, ring provider, a client certificate required and
//! verified against the configured CA. The caller's identity is the certificate's
//! Subject Common Name.
//!
//! * The client certificate must carry the clientAuth extended key usage. (WebPKI alone
//!   accepts a certificate with no EKU extension at all; a server or code-signing
//!   certificate from the same CA is not a client identity.)
//! * Session resumption is off: no session cache, no tickets. Every connection does a
//!   full handshake and presents its certificate, so an identity never outlives its
//!   certificate (a certificate revoked from the CA file or a role removed from the
//!   policy takes effect on the next connection after SIGHUP).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};

use super::config::TlsPaths;

pub use crate::tls::has_client_auth_eku;
use crate::tls::{ClientAuthRequired, certs};

/// Builds the server TLS settings from the configured files.
pub fn server_config(paths: &TlsPaths) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(&paths.ca)? {
        roots
            .add(ca)
            .map_err(|e| format!("{}: {e}", paths.ca.display()))?;
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client certificate verifier: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| format!("{}: {e}", paths.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(Arc::new(ClientAuthRequired(webpki)))
        .with_single_cert(certs(&paths.cert)?, key)
        .map_err(|e| format!("{}: {e}", paths.cert.display()))?;
    // No resumption: nothing stored, no ticket sent (see the module comment).
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The Subject Common Name of a verified client certificate.
pub fn identity(cert: &CertificateDer<'_>) -> Option<String> {
    crate::tls::common_name(cert)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pem(path: &str) -> CertificateDer<'static> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/pki");
        CertificateDer::from_pem_file(dir.join(path)).unwrap()
    }

    #[test]
    fn client_certificates_carry_client_auth_and_the_server_one_does_not() {
        assert!(has_client_auth_eku(&pem("client-atm-switch-1.pem")));
        assert!(!has_client_auth_eku(&pem("server.pem")));
        assert!(!has_client_auth_eku(&CertificateDer::from(vec![1, 2, 3])));
    }
}
