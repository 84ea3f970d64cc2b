//! A development PKI for `keys-example/` and the tests: one CA, a daemon server
//! certificate for localhost, and one client certificate per named client. INSECURE by
//! construction: the private keys are written next to the certificates and published.
//!
//! A client certificate's identity is its Subject Common Name; the daemon's role policy
//! maps identities to roles.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::KeysError;
use super::store::write_atomic;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct PemPair {
    /// Certificate chain (the leaf only; the CA is separate).
    pub cert: String,
    /// PKCS#8 private key.
    pub key: String,
}

impl std::fmt::Debug for PemPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PemPair([certificate], [REDACTED key])")
    }
}

/// The generated PKI.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The CA.
    pub ca: PemPair,
    /// The daemon's server certificate (SANs localhost, 127.0.0.1, ::1).
    pub server: PemPair,
    /// Client certificates by Common Name.
    pub clients: Vec<(String, PemPair)>,
}

fn err(e: rcgen::Error) -> KeysError {
    KeysError::Invalid(format!("certificate generation: {e}"))
}

/// The development CA's certificate parameters.
fn ca_params(ca_name: &str) -> Result<CertificateParams, KeysError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "cofre development (INSECURE)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca_params)
}

/// A server certificate for localhost (SANs `localhost`, `127.0.0.1`, `::1`) named `cn`,
/// signed by `issuer`.
fn server_leaf<S: rcgen::SigningKey>(
    cn: &str,
    issuer: &rcgen::Issuer<'_, S>,
) -> Result<PemPair, KeysError> {
    let key = KeyPair::generate().map_err(err)?;
    let mut p = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(err)?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, issuer).map_err(err)?;
    Ok(PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Adds a server certificate to an existing development PKI in `dir`: signed by its CA
/// (`ca-key.pem`, the CA named `ca_name`), Common Name `cofre-<name>`, written as
/// `<name>.pem` and `<name>-key.pem`. Nothing else in `dir` changes. The REST facade's
/// certificate (`api.pem`) is made this way.
pub fn add_server(dir: &Path, ca_name: &str, name: &str) -> Result<(), KeysError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(KeysError::Invalid(
            "a server certificate name is letters, digits and -".into(),
        ));
    }
    let ca_key_path = dir.join("ca-key.pem");
    let ca_key_pem = std::fs::read_to_string(&ca_key_path)
        .map_err(|e| KeysError::Io(format!("{}: {e}", ca_key_path.display())))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params(ca_name)?, ca_key);
    let pair = server_leaf(&format!("cofre-{name}"), &issuer)?;
    write_atomic(&dir.join(format!("{name}.pem")), pair.cert.as_bytes())?;
    write_atomic(&dir.join(format!("{name}-key.pem")), pair.key.as_bytes())?;
    Ok(())
}

impl DevPki {
    /// Generates a CA named `ca_name`, a server certificate and client certificates.
    pub fn generate(ca_name: &str, clients: &[&str]) -> Result<Self, KeysError> {
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_params = ca_params(ca_name)?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;

        let leaf = |cn: &str,
                    sans: Vec<String>,
                    usage: ExtendedKeyUsagePurpose|
         -> Result<PemPair, KeysError> {
            let key = KeyPair::generate().map_err(err)?;
            let mut p = CertificateParams::new(sans).map_err(err)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![usage];
            let cert = p.signed_by(&key, &ca).map_err(err)?;
            Ok(PemPair {
                cert: cert.pem(),
                key: key.serialize_pem(),
            })
        };
        let server = leaf(
            "cofre-hsm",
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let clients = clients
            .iter()
            .map(|cn| {
                Ok((
                    cn.to_string(),
                    leaf(cn, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)?,
                ))
            })
            .collect::<Result<Vec<_>, KeysError>>()?;
        Ok(Self {
            ca: PemPair {
                cert: ca.pem(),
                key: ca_key_pem,
            },
            server,
            clients,
        })
    }

    /// Writes `ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem` and
    /// `client-<name>.pem` / `client-<name>-key.pem` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), KeysError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| KeysError::Io(format!("{}: {e}", dir.display())))?;
        write_atomic(&dir.join("ca.pem"), self.ca.cert.as_bytes())?;
        write_atomic(&dir.join("ca-key.pem"), self.ca.key.as_bytes())?;
        write_atomic(&dir.join("server.pem"), self.server.cert.as_bytes())?;
        write_atomic(&dir.join("server-key.pem"), self.server.key.as_bytes())?;
        for (name, pair) in &self.clients {
            write_atomic(
                &dir.join(format!("client-{name}.pem")),
                pair.cert.as_bytes(),
            )?;
            write_atomic(
                &dir.join(format!("client-{name}-key.pem")),
                pair.key.as_bytes(),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_server_and_clients() {
        let pki = DevPki::generate("test CA", &["atm-switch-1", "facade-1"]).unwrap();
        assert!(pki.ca.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.server.key.contains("PRIVATE KEY"));
        assert_eq!(pki.clients.len(), 2);
        assert!(!format!("{pki:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_server_certificate_added_later_chains_to_the_same_ca() {
        let dir = std::env::temp_dir().join(format!("cofre-devpki-{}", std::process::id()));
        let pki = DevPki::generate("test CA", &[]).unwrap();
        pki.write(&dir).unwrap();
        add_server(&dir, "test CA", "api").unwrap();
        assert!(add_server(&dir, "test CA", "../x").is_err());
        let ca = crate::tls::certs(&dir.join("ca.pem")).unwrap();
        let leaf = crate::tls::certs(&dir.join("api.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca[0].clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        use rustls::client::danger::ServerCertVerifier as _;
        verifier
            .verify_server_cert(
                &leaf[0],
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap();
        assert_eq!(
            crate::tls::common_name(&leaf[0]).as_deref(),
            Some("cofre-api")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
