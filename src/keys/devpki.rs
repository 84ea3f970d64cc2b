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

impl DevPki {
    /// Generates a CA named `ca_name`, a server certificate and client certificates.
    pub fn generate(ca_name: &str, clients: &[&str]) -> Result<Self, KeysError> {
        let ca_key = KeyPair::generate().map_err(err)?;
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
}
