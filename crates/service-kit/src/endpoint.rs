//! Client endpoints, built one way: an address is `host:port` (then
//! `http://` is implied, or `https://` with TLS) or a full URI, and every
//! endpoint has TCP_NODELAY on. With a [`ClientTls`] the connection is TLS
//! (and mutual TLS when it holds a certificate).

use std::time::Duration;

use tonic::transport::Endpoint;

use crate::tls::ClientTls;

/// An address that cannot be made into an endpoint.
#[derive(Debug, thiserror::Error)]
#[error("bad address {addr:?}: {source}")]
pub struct EndpointError {
    /// The address as given.
    pub addr: String,
    /// Why tonic refused it.
    #[source]
    pub source: tonic::transport::Error,
}

/// The URI of `addr`: itself if it names a scheme, else `http://addr`
/// (`https://addr` when `tls`).
pub fn uri(addr: &str, tls: bool) -> String {
    match (addr.split_once("://"), tls) {
        (Some(("http", rest)), true) => format!("https://{rest}"),
        (Some(_), _) => addr.to_owned(),
        (None, false) => format!("http://{addr}"),
        (None, true) => format!("https://{addr}"),
    }
}

/// An endpoint for `addr` (`host:port` or a URI) with TCP_NODELAY set, over
/// TLS when `tls` is given.
pub fn endpoint(addr: &str, tls: Option<&ClientTls>) -> Result<Endpoint, EndpointError> {
    let fail = |source| EndpointError {
        addr: addr.to_owned(),
        source,
    };
    let endpoint = Endpoint::from_shared(uri(addr, tls.is_some()))
        .map_err(fail)?
        .tcp_nodelay(true);
    match tls {
        Some(tls) => endpoint.tls_config(tls.tonic_config()).map_err(fail),
        None => Ok(endpoint),
    }
}

/// [`endpoint`] with a connect timeout and a per-call timeout of `timeout`.
pub fn endpoint_with_timeout(
    addr: &str,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<Endpoint, EndpointError> {
    Ok(endpoint(addr, tls)?
        .connect_timeout(timeout)
        .timeout(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_means_http() {
        assert_eq!(uri("127.0.0.1:4809", false), "http://127.0.0.1:4809");
        assert_eq!(uri("127.0.0.1:4809", true), "https://127.0.0.1:4809");
        assert_eq!(uri("http://h:1", true), "https://h:1");
        assert_eq!(uri("https://h:1", false), "https://h:1");
        assert_eq!(
            endpoint("[::1]:4802", None).unwrap().uri().to_string(),
            "http://[::1]:4802/"
        );
        let err = endpoint("bad host:1", None).unwrap_err().to_string();
        assert!(err.contains("bad host:1"), "{err}");
    }
}
