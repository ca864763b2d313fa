//! The nodes' side of compose mode: what each cluster-listener node lists
//! as the cluster (`eccluster.v1.Node/Membership` on its published port),
//! polled until every node lists every node again.
//!
//! Issue 13 asks that after each heal every node lists the other two again
//! within 10 × `keepalive_interval`, and that no node loses its membership
//! for good; [`NodeWatch::wait_all_listed`] is what measures it.

use std::time::{Duration, Instant};

use proto::eccluster::v1::MembershipRequest;
use proto::eccluster::v1::node_client::NodeClient;
use tonic::transport::{Channel, Endpoint};

/// How long one membership call may take (a container being restarted
/// accepts on its published port and never answers).
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Lazily connected node clients, one per node.
pub struct NodeWatch {
    clients: Vec<NodeClient<Channel>>,
    /// The node names (as in their `cluster { nodename }`), same order.
    pub names: Vec<String>,
}

/// One poll: per node, the node names its membership lists (in its order),
/// or `None` if it did not answer in time.
pub type NodeSnapshot = Vec<Option<Vec<String>>>;

impl NodeWatch {
    /// Node clients for `addrs` (`host:port`), named `names`.
    pub fn new(addrs: &[String], names: &[String]) -> Self {
        let clients = addrs
            .iter()
            .map(|a| {
                let channel = Endpoint::from_shared(format!("http://{a}"))
                    .expect("host:port is a valid URI")
                    .connect_timeout(CALL_TIMEOUT)
                    .connect_lazy();
                NodeClient::new(channel)
            })
            .collect();
        Self {
            clients,
            names: names.to_vec(),
        }
    }

    /// The node names node `i` lists, `None` if it does not answer in time.
    pub async fn listed(&self, i: usize) -> Option<Vec<String>> {
        let mut client = self.clients[i].clone();
        let call = client.membership(MembershipRequest {});
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(reply)) => Some(
                reply
                    .into_inner()
                    .nodes
                    .into_iter()
                    .map(|n| n.node_name)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Every node's list, asked concurrently.
    pub async fn snapshot(&self) -> NodeSnapshot {
        futures::future::join_all((0..self.clients.len()).map(|i| self.listed(i))).await
    }

    /// Polls until every node lists every node (see [`all_listed`]) or
    /// `deadline` passes; the time from `since` it took, or the last poll.
    pub async fn wait_all_listed(
        &self,
        since: Instant,
        deadline: Instant,
    ) -> Result<Duration, NodeSnapshot> {
        loop {
            let snap = self.snapshot().await;
            if all_listed(&snap, &self.names) {
                return Ok(since.elapsed());
            }
            if Instant::now() >= deadline {
                return Err(snap);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// True if every node answered and lists exactly `names`, each once (in any
/// order: the leader comes first).
pub fn all_listed(snap: &[Option<Vec<String>>], names: &[String]) -> bool {
    let mut want: Vec<&String> = names.iter().collect();
    want.sort();
    !snap.is_empty()
        && snap.iter().all(|s| {
            s.as_ref().is_some_and(|listed| {
                let mut got: Vec<&String> = listed.iter().collect();
                got.sort();
                got == want
            })
        })
}

/// One entry per node: what it lists, or that it did not answer.
pub fn describe(snap: &[Option<Vec<String>>], names: &[String]) -> String {
    snap.iter()
        .zip(names)
        .map(|(s, n)| match s {
            Some(listed) => format!("{n} lists {listed:?}"),
            None => format!("{n}: no answer"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["node1", "node2", "node3"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    fn list(ns: &[&str]) -> Option<Vec<String>> {
        Some(ns.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn every_node_must_list_every_node_once() {
        let all = list(&["node2", "node1", "node3"]);
        assert!(all_listed(
            &[all.clone(), all.clone(), all.clone()],
            &names()
        ));
        let short = list(&["node1", "node2"]);
        assert!(!all_listed(&[all.clone(), short, all.clone()], &names()));
        let twice = list(&["node1", "node2", "node3", "node3"]);
        assert!(!all_listed(&[all.clone(), all.clone(), twice], &names()));
        assert!(!all_listed(&[all.clone(), None, all.clone()], &names()));
        assert!(!all_listed(&[], &names()));
        let d = describe(&[all, None], &names());
        assert!(
            d.contains("node1 lists") && d.contains("node2: no answer"),
            "{d}"
        );
    }
}
