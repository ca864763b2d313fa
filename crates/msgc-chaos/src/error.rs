//! What can stop a chaos run from being judged at all (as opposed to a
//! violation, which is a judged outcome).

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The machine cannot run it (not root, no nft, no cgroup v2, no binary).
    #[error("{0}")]
    Preflight(String),
    /// An nft command failed.
    #[error("{0}")]
    Nft(String),
    /// A file or process operation failed.
    #[error("{0}")]
    Io(String),
    /// A server process could not be started or signalled.
    #[error("{0}")]
    Process(String),
    /// A docker or docker compose command failed.
    #[error("{0}")]
    Docker(String),
    /// The cluster never got ready to start the run.
    #[error("setup: {0}")]
    Setup(String),
}

impl From<std::io::Error> for ChaosError {
    fn from(e: std::io::Error) -> Self {
        ChaosError::Io(e.to_string())
    }
}
