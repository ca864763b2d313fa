//! Development certificates for mutual TLS: one throw-away CA, then a
//! certificate and key per msgc server, per node and per client, each naming
//! its owner as a DNS subject alternative name (the rule the peer links and
//! node dials check) plus a few shared names so loopback and container
//! addresses verify (`localhost`, `127.0.0.1`, `::1` by default).
//!
//! Every certificate may serve and dial (extended key usage serverAuth and
//! clientAuth): a server presents the same one on its listener and on the
//! peer links it dials. Keys are ECDSA P-256. Not for production: the CA key
//! is never written, so a new run makes a new CA and every file again.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The names every certificate carries besides its owner's by default.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevCertsError {
    /// rcgen refused (e.g. a name that is not a DNS name or IP address).
    #[error("making the certificate for {name:?}: {source}")]
    Make {
        /// The owner's name.
        name: String,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// A name no certificate check could match (not a DNS name or IP address).
    #[error("{0:?} is not a DNS name or IP address (letters, digits, `-` and `.`)")]
    NotAName(String),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A development CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA whose subject is `name`.
    pub fn new(name: &str) -> Result<Self, DevCertsError> {
        let make = |source| DevCertsError::Make {
            name: name.to_owned(),
            source,
        };
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(make)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(make)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(make)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM (what `tls_ca` points at).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `name`, naming it and each of `extra_sans` (IP
    /// addresses become IP names).
    pub fn issue(&self, name: &str, extra_sans: &[String]) -> Result<Issued, DevCertsError> {
        if let Some(bad) = std::iter::once(name)
            .chain(extra_sans.iter().map(String::as_str))
            .find(|n| !is_name(n))
        {
            return Err(DevCertsError::NotAName(bad.to_owned()));
        }
        let make = |source| DevCertsError::Make {
            name: name.to_owned(),
            source,
        };
        let mut sans = vec![name.to_owned()];
        sans.extend(extra_sans.iter().filter(|s| *s != name).cloned());
        let mut params = CertificateParams::new(sans).map_err(make)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(make)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(make)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A DNS name (labels of letters, digits and `-`) or an IP address.
fn is_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

/// Who gets a certificate, and which names all of them carry.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// msgc server (peer) names: `servers/<name>.pem`, `.key`.
    pub servers: Vec<String>,
    /// Node names: `nodes/<name>.pem`, `.key`.
    pub nodes: Vec<String>,
    /// Client names (the msgc CLI, grpcurl): `clients/<name>.pem`, `.key`.
    pub clients: Vec<String>,
    /// Names every certificate carries besides its owner's.
    pub extra_sans: Vec<String>,
}

/// Makes a CA and every certificate of `plan` under `out`: `ca.pem`, then
/// `servers/`, `nodes/`, `clients/`. Returns the files written.
pub fn write(out: &Path, plan: &Plan) -> Result<Vec<PathBuf>, DevCertsError> {
    let ca = Ca::new("msgc-rs development CA")?;
    let mut written = Vec::new();
    let mut put = |path: PathBuf, text: &str| -> Result<(), DevCertsError> {
        let fail = |source| DevCertsError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
        written.push(path);
        Ok(())
    };
    put(out.join("ca.pem"), &ca.pem())?;
    for (dir, names) in [
        ("servers", &plan.servers),
        ("nodes", &plan.nodes),
        ("clients", &plan.clients),
    ] {
        for name in names {
            let issued = ca.issue(name, &plan.extra_sans)?;
            put(out.join(dir).join(format!("{name}.pem")), &issued.cert_pem)?;
            put(out.join(dir).join(format!("{name}.key")), &issued.key_pem)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_ca_and_one_pair_per_name() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan {
            servers: vec!["a".into(), "b".into()],
            nodes: vec!["n1".into()],
            clients: vec!["ops".into()],
            extra_sans: DEFAULT_SANS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let written = write(dir.path(), &plan).unwrap();
        assert_eq!(written.len(), 1 + 2 * 4);
        for file in [
            "ca.pem",
            "servers/a.pem",
            "servers/b.key",
            "nodes/n1.pem",
            "clients/ops.key",
        ] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{file}: {text}");
        }
        let err = Ca::new("ca").unwrap().issue("not a name", &[]).unwrap_err();
        assert!(err.to_string().contains("\"not a name\""), "{err}");
    }
}
