//! TLS and mutual TLS for both services, once: which files a listener or a
//! client uses (read from the Momentum options `tls_certificate`, `tls_key`,
//! `tls_ca`, `tls_verify`), loading them with errors that name the file and
//! the option, the server side ([`ServerTls`], a rustls acceptor used by
//! [`crate::listen`]) and the client side ([`ClientTls`], tonic's rustls
//! connector), and what a server learns of its client ([`PeerIdentity`]).
//!
//! Everything uses rustls with the *ring* provider (tonic's `tls-ring`).
//! Plaintext is what runs when no TLS option is set.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The TLS options, named as in the configuration (and in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsOption {
    /// `tls_certificate`: PEM certificate chain, leaf first.
    Certificate,
    /// `tls_key`: PEM private key of that certificate.
    Key,
    /// `tls_ca`: PEM CA certificates that verify the other side.
    Ca,
}

impl fmt::Display for TlsOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsOption::Certificate => "tls_certificate",
            TlsOption::Key => "tls_key",
            TlsOption::Ca => "tls_ca",
        })
    }
}

/// Why TLS material could not be loaded. Each names the file and its option.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {option} {}: {source}", path.display())]
    Read {
        /// Which option named it.
        option: TlsOption,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file holds no usable PEM object of the kind the option needs.
    #[error("{option} {} holds no {wanted}", path.display())]
    Empty {
        /// Which option named it.
        option: TlsOption,
        /// The file.
        path: PathBuf,
        /// What was looked for.
        wanted: &'static str,
    },
    /// rustls refused the material (a key that does not match its
    /// certificate, a CA that is not a CA, ...).
    #[error("{what}: {reason}")]
    Refused {
        /// What was being built, naming the files.
        what: String,
        /// rustls's reason.
        reason: String,
    },
}

/// `tls_verify`: what a TLS listener asks of its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `no`: no client certificate is asked for.
    No,
    /// `optional`: one is asked for and verified against `tls_ca` if sent.
    Optional,
    /// `require` (the default): a client without a certificate signed by
    /// `tls_ca` is refused during the handshake.
    Require,
}

impl ClientAuth {
    /// Parses a `tls_verify` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "no" | "none" => Some(Self::No),
            "optional" => Some(Self::Optional),
            "require" | "required" => Some(Self::Require),
            _ => None,
        }
    }
}

/// A certificate and its key (`tls_certificate`, `tls_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityFiles {
    /// PEM chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The TLS files of one `Listen` (after scope fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTlsFiles {
    /// What the listener presents.
    pub identity: IdentityFiles,
    /// CAs of client certificates (needed unless `verify` is [`ClientAuth::No`]).
    pub ca: Option<PathBuf>,
    /// `tls_verify`.
    pub verify: ClientAuth,
}

/// The TLS files of a client: the CAs that verify servers and, for mutual
/// TLS, the certificate it presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// `tls_ca`.
    pub ca: PathBuf,
    /// `tls_certificate` and `tls_key`, if the client presents one.
    pub identity: Option<IdentityFiles>,
}

impl ListenerTlsFiles {
    /// The files a server dials others with when it dials as it is dialled
    /// (peer links, node-to-node calls): its own certificate as the client
    /// certificate, its `tls_ca` to verify the other side. `None` without a
    /// `tls_ca` (nothing to verify the other side with).
    pub fn as_client(&self) -> Option<ClientTlsFiles> {
        Some(ClientTlsFiles {
            ca: self.ca.clone()?,
            identity: Some(self.identity.clone()),
        })
    }
}

fn read(option: TlsOption, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        option,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    option: TlsOption,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            option,
            path: path.to_owned(),
            wanted: "PEM certificate (-----BEGIN CERTIFICATE-----)",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::Empty {
        option: TlsOption::Key,
        path: path.to_owned(),
        wanted: "PEM private key (PKCS#8, PKCS#1 or SEC1)",
    })
}

fn roots(path: &Path, pem: &[u8]) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certificates(TlsOption::Ca, path, pem)? {
        store.add(cert).map_err(|e| TlsError::Refused {
            what: format!("tls_ca {}", path.display()),
            reason: e.to_string(),
        })?;
    }
    Ok(Arc::new(store))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A loaded server-side TLS configuration: what a TLS `Listen` accepts with.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads and checks the files (HTTP/2 is the only protocol offered).
    pub fn load(files: &ListenerTlsFiles) -> Result<Self, TlsError> {
        let IdentityFiles { certificate, key } = &files.identity;
        let chain = certificates(
            TlsOption::Certificate,
            certificate,
            &read(TlsOption::Certificate, certificate)?,
        )?;
        let key_der = private_key(key, &read(TlsOption::Key, key)?)?;
        let refused = |what: String| {
            move |e: rustls::Error| TlsError::Refused {
                what,
                reason: e.to_string(),
            }
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(refused("TLS protocol versions".to_owned()))?;
        let builder = match (files.verify, &files.ca) {
            (ClientAuth::No, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Refused {
                    what: format!("tls_verify = {:?}", files.verify).to_lowercase(),
                    reason: "client certificates need tls_ca to be verified".to_owned(),
                });
            }
            (verify, Some(ca)) => {
                let roots = roots(ca, &read(TlsOption::Ca, ca)?)?;
                let mut verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
                if verify == ClientAuth::Optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier.build().map_err(|e| TlsError::Refused {
                    what: format!("tls_ca {}", ca.display()),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key_der)
            .map_err(refused(format!(
                "tls_certificate {} with tls_key {}",
                certificate.display(),
                key.display()
            )))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// A loaded client-side TLS configuration (cheap to clone).
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: tonic::transport::ClientTlsConfig,
}

impl ClientTls {
    /// Reads and checks the files.
    pub fn load(files: &ClientTlsFiles) -> Result<Self, TlsError> {
        let ca_pem = read(TlsOption::Ca, &files.ca)?;
        roots(&files.ca, &ca_pem)?;
        let mut config = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
        if let Some(IdentityFiles { certificate, key }) = &files.identity {
            let cert_pem = read(TlsOption::Certificate, certificate)?;
            certificates(TlsOption::Certificate, certificate, &cert_pem)?;
            let key_pem = read(TlsOption::Key, key)?;
            private_key(key, &key_pem)?;
            config = config.identity(tonic::transport::Identity::from_pem(cert_pem, key_pem));
        }
        Ok(Self { config })
    }

    /// The same, verifying that the server's certificate names `name`
    /// (instead of the host dialled): a peer or node by its name.
    pub fn for_server(&self, name: &str) -> Self {
        Self {
            config: self.config.clone().domain_name(name),
        }
    }

    pub(crate) fn tonic_config(&self) -> tonic::transport::ClientTlsConfig {
        self.config.clone()
    }
}

/// Reads an optional client TLS from `scope` (e.g. `msgc_client`): TLS is on
/// when `tls_ca` is set; `tls_certificate` and `tls_key` (both or neither)
/// add a client certificate.
pub fn read_client(
    scope: confparse::ScopeRef<'_>,
) -> Result<Option<ClientTlsFiles>, confparse::Diagnostic> {
    let identity = read_identity(scope)?;
    match (non_empty(scope, "tls_ca")?, identity) {
        (Some(ca), identity) => Ok(Some(ClientTlsFiles {
            ca: PathBuf::from(ca),
            identity,
        })),
        (None, Some(_)) => Err(located(
            scope,
            "tls_certificate",
            format!(
                "{} tls_certificate is set but tls_ca is not: a TLS client needs tls_ca to verify servers",
                scope.name()
            ),
        )),
        (None, None) => Ok(None),
    }
}

/// `tls_certificate` and `tls_key` of `scope` (with fallback): both, or
/// neither.
pub(crate) fn read_identity(
    scope: confparse::ScopeRef<'_>,
) -> Result<Option<IdentityFiles>, confparse::Diagnostic> {
    match (
        non_empty(scope, "tls_certificate")?,
        non_empty(scope, "tls_key")?,
    ) {
        (Some(certificate), Some(key)) => Ok(Some(IdentityFiles {
            certificate: PathBuf::from(certificate),
            key: PathBuf::from(key),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(located(
            scope,
            "tls_certificate",
            "tls_certificate is set but tls_key is not: TLS needs both".to_owned(),
        )),
        (None, Some(_)) => Err(located(
            scope,
            "tls_key",
            "tls_key is set but tls_certificate is not: TLS needs both".to_owned(),
        )),
    }
}

/// A string option, `None` when unset or empty (so an override can clear it).
pub(crate) fn non_empty(
    scope: confparse::ScopeRef<'_>,
    option: &str,
) -> Result<Option<String>, confparse::Diagnostic> {
    Ok(scope.get_str(option)?.filter(|v| !v.is_empty()))
}

/// An error at `option` of `scope` if it is written there, else at the scope.
pub(crate) fn located(
    scope: confparse::ScopeRef<'_>,
    option: &str,
    message: String,
) -> confparse::Diagnostic {
    let at = scope
        .lookup(option)
        .map(|o| o.location().clone())
        .unwrap_or_else(|| scope.location().clone());
    confparse::Diagnostic::error(message).at(at)
}

/// What a server knows of the client of one connection.
#[derive(Debug, Clone)]
pub enum PeerIdentity {
    /// A plaintext connection.
    Plaintext,
    /// TLS without a client certificate.
    Anonymous,
    /// TLS with a client certificate the listener verified against its `tls_ca`.
    Certificate(CertificateDer<'static>),
}

impl PeerIdentity {
    /// Whether the client's certificate names `name` (a DNS subject
    /// alternative name), as a server's certificate names its host.
    pub fn names(&self, name: &str) -> bool {
        let Self::Certificate(der) = self else {
            return false;
        };
        let Ok(server_name) = ServerName::try_from(name) else {
            return false;
        };
        webpki::EndEntityCert::try_from(der)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&server_name).is_ok())
    }

    /// The identity of the connection a request came in on (plaintext when
    /// the request did not come through [`crate::listen`]).
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        request
            .extensions()
            .get::<crate::listen::ConnInfo>()
            .map_or(Self::Plaintext, |info| info.identity.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Embedded, Source, load};
    use crate::listen::read_listens;

    fn schema() -> confparse::Schema {
        confparse::momentum::msgc_server_schema()
    }

    fn conf(
        text: &str,
        env: &[(&str, &str)],
    ) -> Result<confparse::Config, crate::config::ConfigError> {
        let embedded = Embedded {
            origin: "test.conf",
            text: Box::leak(text.to_owned().into_boxed_str()),
        };
        let source = Source {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Source::default()
        };
        load(&source, embedded, &schema())
    }

    fn listens(text: &str, env: &[(&str, &str)]) -> Result<Vec<crate::listen::ListenSpec>, String> {
        let conf = conf(text, env).map_err(|e| e.to_string())?;
        read_listens(conf.root(), "msgcserver_listener").map_err(|e| e.to_string())
    }

    #[test]
    fn listener_tls_falls_back_from_the_scope_and_a_listen_may_override() {
        let specs = listens(
            "msgcserver_listener {\n  tls_certificate = \"/t/s.pem\"\n  tls_key = \"/t/s.key\"\n  tls_ca = \"/t/ca.pem\"\n  \
             Listen \":1\" { }\n  Listen \":2\" { tls_verify = optional }\n  Listen \"/tmp/x.sock\" { tls_certificate = \"\" tls_key = \"\" }\n}\n",
            &[],
        )
        .unwrap();
        let tls = specs[0].tls.as_ref().unwrap();
        assert_eq!(tls.identity.certificate, PathBuf::from("/t/s.pem"));
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/t/ca.pem")));
        assert_eq!(tls.verify, ClientAuth::Require);
        assert_eq!(specs[1].tls.as_ref().unwrap().verify, ClientAuth::Optional);
        assert_eq!(specs[2].tls, None, "an empty value turns TLS off");
        let plain = listens("msgcserver_listener { Listen \":1\" { } }\n", &[]).unwrap();
        assert_eq!(plain[0].tls, None);
    }

    #[test]
    fn env_overrides_turn_tls_on_for_every_listen() {
        let specs = listens(
            "msgcserver_listener { Listen \":1\" { } }\n",
            &[
                (
                    "EC_CONF__MSGCSERVER_LISTENER__TLS_CERTIFICATE",
                    "\"/t/s.pem\"",
                ),
                ("EC_CONF__MSGCSERVER_LISTENER__TLS_KEY", "\"/t/s.key\""),
                ("EC_CONF__MSGCSERVER_LISTENER__TLS_VERIFY", "no"),
            ],
        )
        .unwrap();
        let tls = specs[0].tls.as_ref().unwrap();
        assert_eq!(tls.identity.key, PathBuf::from("/t/s.key"));
        assert_eq!((tls.verify, tls.ca.clone()), (ClientAuth::No, None));
    }

    #[test]
    fn incomplete_tls_options_are_refused_where_written() {
        let cases = [
            (
                "Listen \":1\" {\n tls_certificate = \"/c\"\n }",
                "test.conf:3:",
                "tls_key is not",
            ),
            (
                "Listen \":1\" {\n tls_key = \"/k\"\n }",
                "test.conf:3:",
                "tls_certificate is not",
            ),
            (
                "tls_certificate = \"/c\"\n tls_key = \"/k\"\n Listen \":1\" { }",
                "test.conf:2:",
                "tls_ca is not set",
            ),
            (
                "tls_certificate = \"/c\" tls_key = \"/k\" tls_ca = \"/a\"\n tls_verify = maybe\n Listen \":1\" { }",
                "test.conf:3:",
                "not one of no, optional, require",
            ),
        ];
        for (body, at, says) in cases {
            let err = listens(&format!("msgcserver_listener {{\n {body}\n}}\n"), &[]).unwrap_err();
            assert!(err.contains(at) && err.contains(says), "{body}: {err}");
        }
        let conf = conf(
            "msgc_client { tls_certificate = \"/c\" tls_key = \"/k\" }\n",
            &[],
        )
        .unwrap();
        let err = read_client(conf.root().scope("msgc_client").unwrap()).unwrap_err();
        assert!(err.to_string().contains("needs tls_ca"), "{err}");
    }

    #[test]
    fn loading_names_the_file_and_its_option() {
        let dir = tempfile::tempdir().unwrap();
        let plan = devcerts::Plan {
            servers: vec!["a".into()],
            ..Default::default()
        };
        devcerts::write(dir.path(), &plan).unwrap();
        let good = ListenerTlsFiles {
            identity: IdentityFiles {
                certificate: dir.path().join("servers/a.pem"),
                key: dir.path().join("servers/a.key"),
            },
            ca: Some(dir.path().join("ca.pem")),
            verify: ClientAuth::Require,
        };
        ServerTls::load(&good).unwrap();
        ClientTls::load(&good.as_client().unwrap()).unwrap();

        let mut missing = good.clone();
        missing.identity.key = dir.path().join("nope.key");
        let err = ServerTls::load(&missing).unwrap_err().to_string();
        assert!(
            err.contains("cannot read tls_key") && err.contains("nope.key"),
            "{err}"
        );
        let mut swapped = good.clone();
        swapped.ca = Some(dir.path().join("servers/a.key"));
        let err = ServerTls::load(&swapped).unwrap_err().to_string();
        assert!(
            err.contains("tls_ca") && err.contains("no PEM certificate"),
            "{err}"
        );
        let mut key_as_cert = good;
        key_as_cert.identity.key = dir.path().join("servers/a.pem");
        let err = ServerTls::load(&key_as_cert).unwrap_err().to_string();
        assert!(err.contains("tls_key") && err.contains("a.pem"), "{err}");
    }
}
