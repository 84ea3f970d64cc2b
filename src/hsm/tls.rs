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

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use super::config::TlsPaths;

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// Whether a certificate names clientAuth among its extended key usages.
pub fn has_client_auth_eku(cert: &CertificateDer<'_>) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    matches!(parsed.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth)
}

/// WebPKI's verifier, and the clientAuth extended key usage required.
#[derive(Debug)]
struct ClientAuthRequired(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for ClientAuthRequired {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        if !has_client_auth_eku(end_entity) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

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
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
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
