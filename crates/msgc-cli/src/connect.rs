//! The servers `--server`/`MSGC_SERVER` names, tried in turn: a command uses
//! the first that accepts a connection (failover), and `bench` spreads its
//! sessions over all of them.

use std::time::Duration;

use msgc_client::{ClientTls, Events, Options, Session};
use service_kit::grpc::error_chain;
use tonic::transport::Channel;

/// No server of the list could be reached.
#[derive(Debug, thiserror::Error)]
#[error("no msgc server reachable: {}", summary(.tried))]
pub struct ConnectError {
    /// Each address tried, with why it failed.
    pub tried: Vec<(String, String)>,
}

fn summary(tried: &[(String, String)]) -> String {
    let parts: Vec<String> = tried.iter().map(|(a, e)| format!("{a}: {e}")).collect();
    parts.join("; ")
}

/// The configured servers.
#[derive(Debug, Clone)]
pub struct Servers {
    addrs: Vec<String>,
    timeout: Duration,
    tls: Option<ClientTls>,
}

impl Servers {
    /// `addrs` (empty entries dropped), each dial bounded by `timeout`.
    pub fn new(addrs: &[String], timeout: Duration) -> Self {
        let addrs = addrs
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        Self {
            addrs,
            timeout,
            tls: None,
        }
    }

    /// Dials over TLS when `tls` is given.
    pub fn with_tls(self, tls: Option<ClientTls>) -> Self {
        Self { tls, ..self }
    }

    async fn dial(&self, addr: &str) -> Result<Channel, msgc_client::ClientError> {
        msgc_client::channel_over(addr, self.tls.as_ref(), self.timeout).await
    }

    /// How many servers there are.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when no server was given.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The addresses starting at `start` and wrapping around.
    fn from(&self, start: usize) -> impl Iterator<Item = &String> {
        let n = self.addrs.len().max(1);
        (0..self.addrs.len()).map(move |i| &self.addrs[(start + i) % n])
    }

    /// A channel to the first server (from `start`) that accepts one.
    pub async fn channel_from(&self, start: usize) -> Result<(String, Channel), ConnectError> {
        let mut tried = Vec::new();
        for addr in self.from(start) {
            match self.dial(addr).await {
                Ok(channel) => return Ok((addr.clone(), channel)),
                Err(err) => tried.push((addr.clone(), error_chain(&err))),
            }
        }
        Err(ConnectError { tried })
    }

    /// A channel to the first server that accepts one.
    pub async fn channel(&self) -> Result<(String, Channel), ConnectError> {
        self.channel_from(0).await
    }

    /// A session on the first server (from `start`) that welcomes one.
    pub async fn session_from(
        &self,
        start: usize,
        options: &Options,
    ) -> Result<(String, Session, Events), ConnectError> {
        let mut tried = Vec::new();
        for addr in self.from(start) {
            let opened = async {
                let channel = self.dial(addr).await?;
                Session::open(channel, options.clone()).await
            };
            match tokio::time::timeout(self.timeout, opened).await {
                Ok(Ok((session, events))) => return Ok((addr.clone(), session, events)),
                Ok(Err(err)) => tried.push((addr.clone(), error_chain(&err))),
                Err(_) => tried.push((
                    addr.clone(),
                    format!("no welcome within {:?}", self.timeout),
                )),
            }
        }
        Err(ConnectError { tried })
    }
}
