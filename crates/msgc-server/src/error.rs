//! Every way a client request can be refused, and the one place they become
//! gRPC statuses.

use std::time::Duration;

use tonic::Status;

use msgc_core::OpenError;

use crate::names::NameError;

/// A refused client request.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A bad group or client name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A payload over `max_message_size`.
    #[error("payload of {size} bytes is over the maximum of {max} bytes")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Joining a group already joined.
    #[error("already a member of group {0:?}")]
    AlreadyJoined(String),
    /// Leaving a group not joined.
    #[error("not a member of group {0:?}")]
    NotJoined(String),
    /// A session whose first command is not a hello.
    #[error("the first command of a session must be a hello")]
    HelloFirst,
    /// A second hello in one session.
    #[error("a session sends exactly one hello, as its first command")]
    SecondHello,
    /// A command with no kind set.
    #[error("empty command: set one of hello, join, leave or publish")]
    EmptyCommand,
    /// No hello within `idle_timeout`.
    #[error("no hello within idle_timeout ({0:?})")]
    NoHello(Duration),
    /// The stream ended before the hello.
    #[error("session ended before its hello")]
    EndedBeforeHello,
    /// The session could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Under TLS, a name the client certificate does not name.
    #[error(
        "{what} {name:?} is not a name in this connection's client certificate: under TLS a session may only claim a name its certificate names"
    )]
    NameNotCertified {
        /// What claimed it (client_name or node record).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Under TLS, an `ec_*` group used by a session without a certified name.
    #[error(
        "group {0:?} is one of the cluster's own (ec_*): under TLS only a session whose client_name its certificate names may join or publish to it"
    )]
    ClusterGroup(String),
    /// The server is shutting down.
    #[error("msgc server is shutting down")]
    Stopping,
    /// The session's queue passed `max_backlog`: it was cut.
    #[error(
        "session cut: more than max_backlog ({max_backlog}) events queued; the client reads too slowly"
    )]
    Overflow {
        /// The limit.
        max_backlog: usize,
    },
    /// Some of the session's publishes were delivered only by another side
    /// of a partition, so they will never be acknowledged here.
    #[error(
        "session ended: some of its publishes were delivered only on another side of a partition and will never be acknowledged here"
    )]
    PublishesLost,
    /// The session's queue stayed above its high watermark for too long.
    #[error(
        "session cut: its queue stayed above {queue} events for {after:?}; the client reads too slowly"
    )]
    Stuck {
        /// The high watermark.
        queue: usize,
        /// How long it may stay above it.
        after: Duration,
    },
    /// The client's own stream failed.
    #[error(transparent)]
    Transport(#[from] Status),
}

impl From<BusError> for Status {
    fn from(err: BusError) -> Self {
        let message = err.to_string();
        match err {
            BusError::Name(_)
            | BusError::HelloFirst
            | BusError::SecondHello
            | BusError::EmptyCommand
            | BusError::EndedBeforeHello => Status::invalid_argument(message),
            BusError::TooLarge { .. } | BusError::Overflow { .. } | BusError::Stuck { .. } => {
                Status::resource_exhausted(message)
            }
            BusError::AlreadyJoined(_) | BusError::NotJoined(_) => {
                Status::failed_precondition(message)
            }
            BusError::NoHello(_) => Status::deadline_exceeded(message),
            BusError::NameNotCertified { .. } | BusError::ClusterGroup(_) => {
                Status::permission_denied(message)
            }
            BusError::PublishesLost => Status::aborted(message),
            BusError::Open(OpenError::NameTaken(_)) => Status::already_exists(message),
            BusError::Open(OpenError::ShuttingDown) | BusError::Stopping => {
                Status::unavailable(message)
            }
            BusError::Transport(status) => status,
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
            (
                BusError::Name(NameError::Group("a b".into())),
                Code::InvalidArgument,
                "a b",
            ),
            (
                BusError::TooLarge { size: 10, max: 5 },
                Code::ResourceExhausted,
                "10 bytes",
            ),
            (
                BusError::AlreadyJoined("g".into()),
                Code::FailedPrecondition,
                "\"g\"",
            ),
            (
                BusError::Open(OpenError::NameTaken("x".into())),
                Code::AlreadyExists,
                "\"x\"",
            ),
            (BusError::Stopping, Code::Unavailable, "shutting down"),
            (
                BusError::Overflow { max_backlog: 64 },
                Code::ResourceExhausted,
                "max_backlog (64)",
            ),
            (
                BusError::Stuck {
                    queue: 48,
                    after: Duration::from_millis(600),
                },
                Code::ResourceExhausted,
                "above 48 events for 600ms",
            ),
        ];
        for (err, code, text) in cases {
            let status = Status::from(err);
            assert_eq!(status.code(), code);
            assert!(status.message().contains(text), "{}", status.message());
        }
    }
}
