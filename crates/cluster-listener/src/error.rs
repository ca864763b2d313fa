//! Every way a node request can be refused, and the one place they become
//! gRPC statuses.

use tonic::Status;

/// A refused request to the node service.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Ping without a node name.
    #[error("no node name given: set `node` to a node of the cluster membership")]
    MissingNode,
    /// The node is not in this node's view of the cluster.
    #[error("node {0:?} is not in this node's cluster membership")]
    UnknownNode(String),
    /// The node is a member but advertised no listener address.
    #[error("node {0:?} advertises no ECCluster_Listener address")]
    NoAddress(String),
    /// The node's listener could not be reached or did not answer.
    #[error("node {node:?} at {address} is not reachable: {reason}")]
    Unreachable {
        /// The node pinged.
        node: String,
        /// The address dialled.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Something else answered at the node's address.
    #[error("{address} answered as node {answered:?}, not as {node:?}")]
    WrongNode {
        /// The node pinged.
        node: String,
        /// The address dialled.
        address: String,
        /// The name in the answer.
        answered: String,
    },
}

impl From<NodeError> for Status {
    fn from(err: NodeError) -> Self {
        let message = err.to_string();
        match err {
            NodeError::MissingNode => Status::invalid_argument(message),
            NodeError::UnknownNode(_) => Status::not_found(message),
            NodeError::NoAddress(_) | NodeError::WrongNode { .. } => {
                Status::failed_precondition(message)
            }
            NodeError::Unreachable { .. } => Status::unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn each_refusal_has_a_status_that_names_it() {
        let cases = [
            (NodeError::MissingNode, Code::InvalidArgument, "node"),
            (
                NodeError::UnknownNode("n9".into()),
                Code::NotFound,
                "\"n9\"",
            ),
            (
                NodeError::NoAddress("n2".into()),
                Code::FailedPrecondition,
                "\"n2\"",
            ),
            (
                NodeError::Unreachable {
                    node: "n3".into(),
                    address: "10.0.0.3:4802".into(),
                    reason: "refused".into(),
                },
                Code::Unavailable,
                "10.0.0.3:4802",
            ),
            (
                NodeError::WrongNode {
                    node: "n3".into(),
                    address: "a:1".into(),
                    answered: "n4".into(),
                },
                Code::FailedPrecondition,
                "\"n4\"",
            ),
        ];
        for (err, code, text) in cases {
            let status = Status::from(err);
            assert_eq!(status.code(), code);
            assert!(status.message().contains(text), "{}", status.message());
        }
    }
}
