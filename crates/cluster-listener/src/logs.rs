//! `eccluster.v1.Logs`: the logs this node offers (`cluster { logs }`),
//! pulled from a subscriber's durable checkpoint ([`crate::checkpoint`]),
//! read with [`crate::logfile::LogReader`] (rotation-safe positions).
//!
//! `Pull` does not move the checkpoint: the puller commits, with `Commit`,
//! the position of the last batch it has stored. A pull after a crash of the
//! puller therefore starts again from the last commit; the puller's side
//! ([`crate::puller`]) drops what it wrote after that commit, so its output
//! holds every record exactly once.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use proto::eccluster::v1::logs_server::Logs;
use proto::eccluster::v1::{
    CommitRequest, CommitResponse, ListLogsRequest, ListLogsResponse, LogInfo, PullBatch,
    PullRequest, SubscribeRequest, SubscribeResponse, SubscriberInfo,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::checkpoint::{Checkpoints, MASTER};
use crate::config::{NodeConfig, is_plain_name};
use crate::error::LogError;
use crate::logfile::{self, LogReader, MAX_BATCH_BYTES};

/// How often a following pull looks for growth at the end of the log.
pub const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The `eccluster.v1.Logs` service.
#[derive(Debug, Clone)]
pub struct LogsService {
    cfg: Arc<NodeConfig>,
    checkpoints: Arc<Checkpoints>,
    stop: CancellationToken,
    metrics: Arc<crate::metrics::NodeMetrics>,
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> LogError {
    move |source| LogError::Io { what, source }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|join| {
        Err(LogError::Io {
            what: "log task".to_owned(),
            source: std::io::Error::other(join.to_string()),
        })
    })
}

impl LogsService {
    /// Serves `cfg.logs`, checkpoints under `cfg.state_dir`. Following pulls
    /// end (cleanly, so pullers save) when `stop` is cancelled.
    pub fn new(cfg: Arc<NodeConfig>, stop: CancellationToken) -> Self {
        let checkpoints = Arc::new(Checkpoints::new(&cfg.state_dir));
        Self {
            cfg,
            checkpoints,
            stop,
            metrics: Arc::default(),
        }
    }

    /// Counts pulls, records, bytes and errors into `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::NodeMetrics>) -> Self {
        Self { metrics, ..self }
    }

    /// The path of `log`, and the subscriber name (default `master`),
    /// checked to exist unless `must_exist` is false.
    fn resolve(
        &self,
        log: &str,
        subscriber: &str,
        must_exist: bool,
    ) -> Result<(std::path::PathBuf, String), LogError> {
        let path = self
            .cfg
            .logs
            .get(log)
            .ok_or_else(|| LogError::UnknownLog(log.to_owned()))?;
        let subscriber = if subscriber.is_empty() {
            MASTER
        } else {
            subscriber
        };
        if !is_plain_name(subscriber) {
            return Err(LogError::InvalidSubscriber(subscriber.to_owned()));
        }
        if must_exist && !self.checkpoints.exists(log, subscriber) {
            return Err(LogError::UnknownSubscriber {
                log: log.to_owned(),
                subscriber: subscriber.to_owned(),
            });
        }
        Ok((path.into(), subscriber.to_owned()))
    }

    /// Every offered log with its path, size and subscribers' checkpoints.
    pub fn list(&self) -> Result<ListLogsResponse, LogError> {
        let mut logs = Vec::new();
        for (name, path) in &self.cfg.logs {
            let subscribers = self
                .checkpoints
                .subscribers(name)
                .map_err(io_error(format!("listing subscribers of {name}")))?
                .into_iter()
                .map(|(name, checkpoint)| SubscriberInfo { name, checkpoint })
                .collect();
            logs.push(LogInfo {
                name: name.clone(),
                path: path.clone(),
                size: std::fs::metadata(path).map_or(0, |m| m.len()),
                subscribers,
            });
        }
        Ok(ListLogsResponse {
            node: self.cfg.nodename.clone(),
            logs,
        })
    }

    async fn pull(
        &self,
        request: PullRequest,
    ) -> Result<mpsc::Receiver<Result<PullBatch, Status>>, LogError> {
        let (path, subscriber) = self.resolve(&request.log, &request.subscriber, true)?;
        let checkpoints = self.checkpoints.clone();
        let log = request.log.clone();
        let (start, reader) = blocking(move || {
            let start = checkpoints
                .load(&log, &subscriber)
                .map_err(io_error(format!(
                    "reading the checkpoint of {log}/{subscriber}"
                )))?;
            let reader = LogReader::open(&path, start.as_ref())
                .map_err(io_error(format!("opening {}", path.display())))?;
            Ok((start, reader))
        })
        .await?;
        if reader.reset() {
            tracing::warn!(log = %request.log, subscriber = %request.subscriber, ?start, "checkpoint's file not found: pulling from the start of the current file");
        }
        let max = match request.max_batch_bytes {
            0 => MAX_BATCH_BYTES,
            n => usize::try_from(n).map_or(MAX_BATCH_BYTES, |n| n.min(MAX_BATCH_BYTES)),
        };
        let origin = reader.position();
        let (tx, rx) = mpsc::channel(2);
        let follow = request.follow;
        let log = request.log;
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut reader = Some(reader);
            let mut first = true;
            let mut sent = false;
            loop {
                let Some(mut r) = reader.take() else { break };
                let read = tokio::task::spawn_blocking(move || {
                    let records = r.next_batch(max);
                    (r, records)
                })
                .await;
                let (r, records) = match read {
                    Ok(read) => read,
                    Err(join) => {
                        let _ = tx.send(Err(Status::internal(join.to_string()))).await;
                        break;
                    }
                };
                let records = match records {
                    Ok(records) => records,
                    Err(err) => {
                        let err = LogError::Io {
                            what: format!("reading log {log}"),
                            source: err,
                        };
                        let _ = tx.send(Err(err.into())).await;
                        break;
                    }
                };
                let empty = records.is_empty();
                // An empty batch goes out first, and when the end is reached
                // after records: it tells a follower it has caught up (a
                // moment to save and commit) and carries the position.
                if !empty || first || sent {
                    sent = !empty;
                    let batch = PullBatch {
                        records,
                        position: Some(r.position()),
                        reset: first && r.reset(),
                        start: first.then_some(origin),
                    };
                    first = false;
                    if tx.send(Ok(batch)).await.is_err() {
                        break;
                    }
                }
                if empty {
                    if !follow {
                        break;
                    }
                    tokio::select! {
                        () = tx.closed() => break,
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(FOLLOW_POLL) => {}
                    }
                }
                reader = Some(r);
            }
        });
        Ok(rx)
    }

    async fn commit(&self, request: CommitRequest) -> Result<CommitResponse, LogError> {
        let (_, subscriber) = self.resolve(&request.log, &request.subscriber, true)?;
        let position = request.position.ok_or(LogError::MissingPosition)?;
        let checkpoints = self.checkpoints.clone();
        let log = request.log;
        blocking(move || {
            checkpoints
                .store(&log, &subscriber, &position)
                .map_err(io_error(format!(
                    "storing the checkpoint of {log}/{subscriber}"
                )))?;
            tracing::debug!(%log, %subscriber, ?position, "checkpoint committed");
            Ok(CommitResponse {
                position: Some(position),
            })
        })
        .await
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeResponse, LogError> {
        if request.subscriber.is_empty() {
            return Err(LogError::InvalidSubscriber(String::new()));
        }
        let (path, subscriber) = self.resolve(&request.log, &request.subscriber, false)?;
        let checkpoints = self.checkpoints.clone();
        let log = request.log;
        blocking(move || {
            let what = format!("creating subscriber {log}/{subscriber}");
            if let Some(position) = checkpoints
                .load(&log, &subscriber)
                .map_err(io_error(what.clone()))?
            {
                return Ok(SubscribeResponse {
                    position: Some(position),
                    existed: true,
                });
            }
            let position = logfile::current_position(&path, request.from_end)
                .map_err(io_error(what.clone()))?;
            checkpoints
                .store(&log, &subscriber, &position)
                .map_err(io_error(what))?;
            tracing::info!(%log, %subscriber, ?position, "subscriber created");
            Ok(SubscribeResponse {
                position: Some(position),
                existed: subscriber == MASTER,
            })
        })
        .await
    }
}

/// The stream `Pull` answers with.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullBatch, Status>> + Send>>;

#[tonic::async_trait]
impl Logs for LogsService {
    async fn list(
        &self,
        _request: Request<ListLogsRequest>,
    ) -> Result<Response<ListLogsResponse>, Status> {
        let this = self.clone();
        Ok(Response::new(blocking(move || this.list()).await?))
    }

    type PullStream = PullStream;

    async fn pull(&self, request: Request<PullRequest>) -> Result<Response<PullStream>, Status> {
        let metrics = self.metrics.clone();
        let rx = match LogsService::pull(self, request.into_inner()).await {
            Ok(rx) => rx,
            Err(err) => {
                metrics.log_pull_errors.inc();
                return Err(err.into());
            }
        };
        metrics.log_pulls.inc();
        let stream = futures::stream::unfold(rx, move |mut rx| {
            let metrics = metrics.clone();
            async move {
                let item = rx.recv().await?;
                match &item {
                    Ok(batch) => {
                        metrics.log_records.inc_by(batch.records.len() as u64);
                        metrics
                            .log_bytes
                            .inc_by(prost::Message::encoded_len(batch) as u64);
                    }
                    Err(_) => {
                        metrics.log_pull_errors.inc();
                    }
                }
                Some((item, rx))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        let reply = LogsService::commit(self, request.into_inner()).await?;
        self.metrics.log_commits.inc();
        Ok(Response::new(reply))
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SubscribeResponse>, Status> {
        Ok(Response::new(
            LogsService::subscribe(self, request.into_inner()).await?,
        ))
    }
}
