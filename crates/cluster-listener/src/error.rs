//! Every way a node request can be refused, and the one place they become
//! gRPC statuses: [`NodeError`] (`eccluster.v1.Node`), [`MoveError`]
//! (`eccluster.v1.Mover`), [`LogError`] (`eccluster.v1.Logs`),
//! [`ConsoleError`] (`eccluster.v1.Console`).

use std::io;

use tonic::Status;

use crate::outgoing::OutgoingError;

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

/// A refused or failed message move.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// The first chunk carried no envelope.
    #[error("the first chunk of a move must carry the envelope")]
    MissingEnvelope,
    /// The message id is not a safe file name.
    #[error("message id {id:?} is refused: {reason}")]
    InvalidId {
        /// The id as sent.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The body is (or is declared) larger than `max_message_size`.
    #[error("message {id:?} exceeds max_message_size ({limit} bytes)")]
    TooLarge {
        /// The message id.
        id: String,
        /// The configured limit.
        limit: u64,
    },
    /// The body did not have the size the envelope declared.
    #[error("message {id:?} declared {declared} bytes but carried {received}")]
    SizeMismatch {
        /// The message id.
        id: String,
        /// `Envelope.size`.
        declared: u64,
        /// Bytes received.
        received: u64,
    },
    /// Another transfer of the same id is being received right now.
    #[error("message {0:?} is being received by another transfer; retry")]
    Busy(String),
    /// The spool disk refused the write for lack of space or quota.
    #[error("spool disk full: {what} for message {id:?}: {source}")]
    SpoolFull {
        /// The message id.
        id: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// Any other spool I/O failure (EIO, permissions, ...).
    #[error("spool I/O error: {what} for message {id:?}: {source}")]
    Spool {
        /// The message id.
        id: String,
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The sender's stream failed midway; nothing was kept.
    #[error("transfer of message {id:?} cut after {received} bytes: {reason}")]
    Cut {
        /// The message id.
        id: String,
        /// Bytes received before the cut.
        received: u64,
        /// What the stream reported.
        reason: String,
    },
    /// MoveTo: a local file to send could not be read.
    #[error("cannot read {path}: {source}")]
    Source {
        /// The file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// MoveTo: the path is not a file of the outgoing directory, or cannot be read.
    #[error(transparent)]
    Outgoing(#[from] OutgoingError),
    /// MoveTo: the target refused or could not be reached.
    #[error(transparent)]
    Target(#[from] NodeError),
    /// MoveTo: the target answered with a refusal.
    #[error("node {node:?} refused message {id:?}: {status}")]
    Refused {
        /// The target node.
        node: String,
        /// The message id.
        id: String,
        /// The target's status.
        status: Status,
    },
}

impl MoveError {
    /// An I/O failure on the spool: out of space (ENOSPC, EDQUOT) or other.
    pub fn io(id: &str, what: impl Into<String>, source: io::Error) -> Self {
        let (id, what) = (id.to_owned(), what.into());
        if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            Self::SpoolFull { id, what, source }
        } else {
            Self::Spool { id, what, source }
        }
    }
}

impl From<MoveError> for Status {
    fn from(err: MoveError) -> Self {
        let message = err.to_string();
        match err {
            MoveError::MissingEnvelope
            | MoveError::InvalidId { .. }
            | MoveError::SizeMismatch { .. } => Status::invalid_argument(message),
            MoveError::TooLarge { .. } | MoveError::SpoolFull { .. } => {
                Status::resource_exhausted(message)
            }
            MoveError::Busy(_) => Status::aborted(message),
            MoveError::Spool { .. } => Status::internal(message),
            MoveError::Cut { .. } => Status::cancelled(message),
            MoveError::Source { source, .. } => io_status(&source, message),
            MoveError::Outgoing(err) => match err {
                OutgoingError::Refused { .. } => Status::permission_denied(message),
                OutgoingError::NoDirectory { .. } => Status::failed_precondition(message),
                OutgoingError::Unreadable { source, .. } => io_status(&source, message),
            },
            MoveError::Target(err) => err.into(),
            MoveError::Refused { status, .. } => Status::new(status.code(), message),
        }
    }
}

/// A local file that could not be read: NOT_FOUND, PERMISSION_DENIED or
/// FAILED_PRECONDITION by the OS error.
fn io_status(source: &io::Error, message: String) -> Status {
    match source.kind() {
        io::ErrorKind::NotFound => Status::not_found(message),
        io::ErrorKind::PermissionDenied => Status::permission_denied(message),
        _ => Status::failed_precondition(message),
    }
}

/// A refused or failed log request.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log is not in `cluster { logs }`.
    #[error("log {0:?} is not offered by this node (cluster logs)")]
    UnknownLog(String),
    /// The subscriber was never created on this log.
    #[error("log {log:?} has no subscriber {subscriber:?} (create it with Subscribe)")]
    UnknownSubscriber {
        /// The log.
        log: String,
        /// The subscriber.
        subscriber: String,
    },
    /// A subscriber name that cannot be one.
    #[error(
        "subscriber name {0:?} must be 1-64 letters, digits, `_`, `-` or `.`, not starting with `.`"
    )]
    InvalidSubscriber(String),
    /// A commit without a position.
    #[error("commit carries no position")]
    MissingPosition,
    /// Reading the log or its checkpoints failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
}

impl From<LogError> for Status {
    fn from(err: LogError) -> Self {
        let message = err.to_string();
        match err {
            LogError::UnknownLog(_) | LogError::UnknownSubscriber { .. } => {
                Status::not_found(message)
            }
            LogError::InvalidSubscriber(_) | LogError::MissingPosition => {
                Status::invalid_argument(message)
            }
            LogError::Io { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                    Status::resource_exhausted(message)
                }
                _ => Status::internal(message),
            },
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

    #[test]
    fn move_and_log_refusals_map_to_their_statuses() {
        let enospc = io::Error::from(io::ErrorKind::StorageFull);
        let eio = io::Error::other("Input/output error");
        let cases = [
            (
                Status::from(MoveError::TooLarge {
                    id: "m1".into(),
                    limit: 1024,
                }),
                Code::ResourceExhausted,
                "max_message_size (1024 bytes)",
            ),
            (
                Status::from(MoveError::io("m1", "writing", enospc)),
                Code::ResourceExhausted,
                "spool disk full",
            ),
            (
                Status::from(MoveError::io("m1", "writing", eio)),
                Code::Internal,
                "Input/output error",
            ),
            (
                Status::from(MoveError::InvalidId {
                    id: "../x".into(),
                    reason: "no '/'",
                }),
                Code::InvalidArgument,
                "\"../x\"",
            ),
            (
                Status::from(MoveError::Busy("m2".into())),
                Code::Aborted,
                "retry",
            ),
            (
                Status::from(LogError::UnknownLog("x".into())),
                Code::NotFound,
                "\"x\"",
            ),
            (
                Status::from(LogError::UnknownSubscriber {
                    log: "l".into(),
                    subscriber: "s".into(),
                }),
                Code::NotFound,
                "\"s\"",
            ),
        ];
        for (status, code, text) in cases {
            assert_eq!(status.code(), code, "{status:?}");
            assert!(status.message().contains(text), "{}", status.message());
        }
    }
}

/// A refused console request.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No command text.
    #[error("no console command given (try `help`)")]
    MissingCommand,
    /// The verb is unspecified or does not fit the other fields.
    #[error("{0}")]
    BadRequest(String),
    /// The node verbs name a node that is not in the membership.
    #[error("node {0:?} is not in this node's cluster membership")]
    UnknownNode(String),
    /// The command could not be sent over the bus.
    #[error("cannot send the command over the bus: {0}")]
    NotOnBus(String),
    /// A reply for no waiting request (late, or never sent).
    #[error("no console request {0} is waiting for replies (late reply?)")]
    NotWaiting(u64),
}

impl From<ConsoleError> for Status {
    fn from(err: ConsoleError) -> Self {
        let message = err.to_string();
        match err {
            ConsoleError::MissingCommand | ConsoleError::BadRequest(_) => {
                Status::invalid_argument(message)
            }
            ConsoleError::UnknownNode(_) | ConsoleError::NotWaiting(_) => {
                Status::not_found(message)
            }
            ConsoleError::NotOnBus(_) => Status::unavailable(message),
        }
    }
}
