//! Who a client session may claim to be, and who may use the cluster's own
//! groups, decided from its connection [issue 10].
//!
//! * **Plaintext**: the network is trusted, as Momentum assumes (the
//!   embedded default): names, node records and every group as before.
//! * **TLS**: a session may set a `client_name`, or a node record, only if
//!   its client certificate names it (a DNS subject alternative name, as a
//!   node's certificate from `devcerts` does); and only such a session, a
//!   *certified* one, may join or publish to `ec_*` groups, the groups the
//!   cluster's nodes coordinate through (`ec_cluster`, `ec_console`,
//!   `ec_sc_<subcluster>`). So nobody can speak in the cluster's control
//!   groups under a node's name, or advertise a node record pointing
//!   elsewhere, without that node's certificate.

use proto::msgc::v1::Hello;
use service_kit::tls::PeerIdentity;

use crate::error::BusError;

/// Groups only certified sessions may use.
pub const CLUSTER_GROUP_PREFIX: &str = "ec_";

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A plaintext connection: the network is trusted.
    TrustedNetwork,
    /// TLS, and the certificate names the session's client name (and node).
    Certified,
    /// TLS, no certified name: no `ec_*` groups.
    Anonymous,
}

/// The standing of a session opening with `hello` on connection `conn`, or
/// why it may not claim what it claims.
pub fn standing(conn: &PeerIdentity, hello: &Hello) -> Result<Standing, BusError> {
    if matches!(conn, PeerIdentity::Plaintext) {
        return Ok(Standing::TrustedNetwork);
    }
    if !hello.client_name.is_empty() && !conn.names(&hello.client_name) {
        return Err(BusError::NameNotCertified {
            what: "client_name",
            name: hello.client_name.clone(),
        });
    }
    if let Some(node) = &hello.node
        && !conn.names(&node.node_name)
    {
        return Err(BusError::NameNotCertified {
            what: "node record",
            name: node.node_name.clone(),
        });
    }
    Ok(if hello.client_name.is_empty() {
        Standing::Anonymous
    } else {
        Standing::Certified
    })
}

/// Whether a session of this standing may join or publish to `group`.
pub fn check_group(standing: Standing, group: &str) -> Result<(), BusError> {
    if standing == Standing::Anonymous && group.starts_with(CLUSTER_GROUP_PREFIX) {
        return Err(BusError::ClusterGroup(group.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::msgc::v1::NodeRecord;

    fn hello(name: &str, node: Option<&str>) -> Hello {
        Hello {
            client_name: name.into(),
            no_self_delivery: false,
            node: node.map(|n| NodeRecord {
                node_name: n.into(),
                ..NodeRecord::default()
            }),
        }
    }

    #[test]
    fn plaintext_trusts_the_network() {
        let s = standing(&PeerIdentity::Plaintext, &hello("node1", Some("node1"))).unwrap();
        assert_eq!(s, Standing::TrustedNetwork);
        assert!(check_group(s, "ec_cluster").is_ok());
    }

    #[test]
    fn tls_without_a_certificate_claims_no_name_and_no_cluster_group() {
        let anon = PeerIdentity::Anonymous;
        assert!(matches!(
            standing(&anon, &hello("node1", None)),
            Err(BusError::NameNotCertified {
                what: "client_name",
                ..
            })
        ));
        assert!(matches!(
            standing(&anon, &hello("", Some("node1"))),
            Err(BusError::NameNotCertified {
                what: "node record",
                ..
            })
        ));
        let s = standing(&anon, &hello("", None)).unwrap();
        assert_eq!(s, Standing::Anonymous);
        assert!(matches!(
            check_group(s, "ec_cluster"),
            Err(BusError::ClusterGroup(_))
        ));
        assert!(check_group(s, "orders").is_ok());
        assert!(check_group(Standing::Certified, "ec_console").is_ok());
    }
}
