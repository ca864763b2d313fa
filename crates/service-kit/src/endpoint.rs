//! Client endpoints, built one way: an address is `host:port` (then
//! `http://` is implied, the listeners carry plaintext gRPC) or a full URI,
//! and every endpoint has TCP_NODELAY on.

use std::time::Duration;

use tonic::transport::Endpoint;

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

/// The URI of `addr`: itself if it names a scheme, else `http://addr`.
pub fn uri(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// An endpoint for `addr` (`host:port` or a URI) with TCP_NODELAY set.
pub fn endpoint(addr: &str) -> Result<Endpoint, EndpointError> {
    Endpoint::from_shared(uri(addr))
        .map(|e| e.tcp_nodelay(true))
        .map_err(|source| EndpointError {
            addr: addr.to_owned(),
            source,
        })
}

/// [`endpoint`] with a connect timeout and a per-call timeout of `timeout`.
pub fn endpoint_with_timeout(addr: &str, timeout: Duration) -> Result<Endpoint, EndpointError> {
    Ok(endpoint(addr)?.connect_timeout(timeout).timeout(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_means_http() {
        assert_eq!(uri("127.0.0.1:4809"), "http://127.0.0.1:4809");
        assert_eq!(uri("https://h:1"), "https://h:1");
        assert_eq!(
            endpoint("[::1]:4802").unwrap().uri().to_string(),
            "http://[::1]:4802/"
        );
        let err = endpoint("bad host:1").unwrap_err().to_string();
        assert!(err.contains("bad host:1"), "{err}");
    }
}
