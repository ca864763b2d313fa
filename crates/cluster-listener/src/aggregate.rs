//! `cluster-listener aggregate`: pulls every offered log of every node in the
//! membership into `<dir>/<log>/<node>`, one [`Puller`] per file, on an
//! interval.
//!
//! The aggregator is a client, not a cluster member: it asks a node (by
//! default the one its configuration describes) for the membership, then
//! dials each member's listener directly. When that node is not on the bus
//! (`enabled = false`, or not joined yet) the membership is empty and only
//! that node itself is pulled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::eccluster::v1::logs_client::LogsClient;
use proto::eccluster::v1::node_client::NodeClient;
use proto::eccluster::v1::{InfoRequest, ListLogsRequest, MembershipRequest, SubscribeRequest};
use tokio_util::sync::CancellationToken;

use crate::config::is_plain_name;
use crate::mover::data_channel;
use crate::puller::{PullError, PullStats, Puller};
use service_kit::tls::ClientTls;

/// What one round did for one (node, log).
#[derive(Debug)]
pub struct Pulled {
    /// The node pulled from.
    pub node: String,
    /// The log.
    pub log: String,
    /// The output file.
    pub output: PathBuf,
    /// Records and bytes added, or why not.
    pub result: Result<PullStats, PullError>,
}

/// How the aggregator runs.
#[derive(Debug, Clone)]
pub struct AggregateOptions {
    /// The node asked for the membership (`host:port`).
    pub node_addr: String,
    /// The root of the `<log>/<node>` tree.
    pub dir: PathBuf,
    /// The subscriber pulled as (default `master`).
    pub subscriber: String,
    /// Wait between rounds.
    pub interval: Duration,
    /// How nodes are dialled (the node's `dial_tls`); `None` is plaintext.
    pub tls: Option<ClientTls>,
}

/// The nodes to pull: `(name, address)` of every member with an address,
/// else the asked node itself.
pub async fn nodes(
    node_addr: &str,
    tls: Option<&ClientTls>,
) -> Result<Vec<(String, String)>, tonic::Status> {
    let channel =
        data_channel(node_addr, tls).map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = NodeClient::new(channel);
    let members: Vec<(String, String)> = client
        .membership(MembershipRequest {})
        .await?
        .into_inner()
        .nodes
        .into_iter()
        .filter(|n| !n.address.is_empty())
        .map(|n| (n.node_name, n.address))
        .collect();
    if !members.is_empty() {
        return Ok(members);
    }
    let info = client.info(InfoRequest {}).await?.into_inner();
    Ok(vec![(info.node_name, node_addr.to_owned())])
}

/// Pulls every log of `node` (at `addr`, its certificate naming it with
/// `tls`) into `dir`, to the end of each.
pub async fn pull_node(
    dir: &Path,
    node: &str,
    addr: &str,
    subscriber: &str,
    tls: Option<&ClientTls>,
) -> Vec<Pulled> {
    let failed = |log: &str, err: PullError| Pulled {
        node: node.to_owned(),
        log: log.to_owned(),
        output: PathBuf::new(),
        result: Err(err),
    };
    if !is_plain_name(node) {
        let err = PullError::Status(tonic::Status::invalid_argument(format!(
            "node name {node:?} cannot be a file name"
        )));
        return vec![failed("", err)];
    }
    let tls = tls.map(|tls| tls.for_server(node));
    let channel = match data_channel(addr, tls.as_ref()) {
        Ok(channel) => channel,
        Err(e) => return vec![failed("", tonic::Status::unavailable(e.to_string()).into())],
    };
    let mut client = LogsClient::new(channel).max_decoding_message_size(8 << 20);
    let logs = match client.list(ListLogsRequest {}).await {
        Ok(list) => list.into_inner().logs,
        Err(status) => return vec![failed("", status.into())],
    };
    let mut done = Vec::new();
    for log in logs {
        let output = dir.join(&log.name).join(node);
        if !log.subscribers.iter().any(|s| s.name == subscriber) {
            let created = client
                .subscribe(SubscribeRequest {
                    log: log.name.clone(),
                    subscriber: subscriber.to_owned(),
                    from_end: false,
                })
                .await;
            if let Err(status) = created {
                done.push(failed(&log.name, status.into()));
                continue;
            }
        }
        let result = match Puller::open(&output) {
            Ok(mut puller) => puller.pull(&mut client, &log.name, subscriber, false).await,
            Err(err) => Err(err),
        };
        done.push(Pulled {
            node: node.to_owned(),
            log: log.name,
            output,
            result,
        });
    }
    done
}

/// One round over every node; progress and failures go to the log.
pub async fn round(opts: &AggregateOptions) -> Result<Vec<Pulled>, tonic::Status> {
    let nodes = nodes(&opts.node_addr, opts.tls.as_ref()).await?;
    let mut all = Vec::new();
    for (node, addr) in nodes {
        for pulled in pull_node(&opts.dir, &node, &addr, &opts.subscriber, opts.tls.as_ref()).await
        {
            match &pulled.result {
                Ok(stats) => tracing::info!(
                    node = %pulled.node,
                    log = %pulled.log,
                    records = stats.records,
                    bytes = stats.bytes,
                    output = %pulled.output.display(),
                    "pulled"
                ),
                Err(err) => {
                    tracing::warn!(node = %pulled.node, log = %pulled.log, error = %err, "pull failed")
                }
            }
            all.push(pulled);
        }
    }
    Ok(all)
}

/// Rounds every `interval` until `shutdown`.
pub async fn run(opts: AggregateOptions, shutdown: CancellationToken) {
    loop {
        if let Err(status) = round(&opts).await {
            tracing::warn!(node = %opts.node_addr, error = %status.message(), "no membership this round");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(opts.interval) => {}
        }
    }
}
