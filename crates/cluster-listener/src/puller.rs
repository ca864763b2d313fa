//! The pulling side of log aggregation: a [`Puller`] appends a log's records
//! to one output file and keeps, beside it, the output length and the log
//! position it has durably stored (`.<file name>.state`).
//!
//! The order of one round is what makes the output exactly-once:
//! 1. write the received records to the output;
//! 2. [`Puller::save`]: fsync the output, then store `(output length,
//!    position)` atomically (tmp + fsync + rename);
//! 3. [`Puller::commit`]: commit the position on the serving node.
//!
//! [`Puller::open`] truncates the output to the saved length, dropping what a
//! crash left between 1 and 2 (the server's checkpoint is still the old one,
//! so those records come again). A crash between 2 and 3 leaves the server
//! behind the saved state; every pull starts by committing the saved position
//! again, so the server moves forward to it before sending anything. The
//! saved state is the truth: one puller (one output file) per subscriber.
//!
//! File I/O here is synchronous: a puller is a client tool, and its writes
//! are at most one batch (1 MiB) between two network reads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use proto::eccluster::v1::logs_client::LogsClient;
use proto::eccluster::v1::{CommitRequest, Position, PullBatch, PullRequest};
use tonic::Status;
use tonic::transport::Channel;

/// Bytes written between two saves (and commits) during a long pull.
pub const SAVE_EVERY: u64 = 4 << 20;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The output or its state could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The serving node refused or the stream broke.
    #[error("{0}")]
    Status(#[from] Status),
}

/// What a pull did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullStats {
    /// Records written.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The server restarted at the current file (checkpoint's file gone).
    pub reset: bool,
}

/// What was last saved: the output length and the log position it reaches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Output bytes that are stored for good.
    pub out_len: u64,
    /// The log position those bytes end at (`None` before the first save).
    pub position: Option<Position>,
}

fn parse_state(text: &str) -> Option<Saved> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.as_slice() {
        [len, "-"] => Some(Saved {
            out_len: len.parse().ok()?,
            position: None,
        }),
        [len, dev, inode, offset] => Some(Saved {
            out_len: len.parse().ok()?,
            position: Some(Position {
                dev: dev.parse().ok()?,
                inode: inode.parse().ok()?,
                offset: offset.parse().ok()?,
            }),
        }),
        _ => None,
    }
}

/// Appends one log's records to one output file, exactly once.
#[derive(Debug)]
pub struct Puller {
    out_path: PathBuf,
    state_path: PathBuf,
    out: File,
    saved: Saved,
    written: u64,
    pending: Option<Position>,
}

impl Puller {
    /// Opens (creating) the output `out_path` and its state, and drops any
    /// output written after the last save.
    pub fn open(out_path: &Path) -> Result<Self, PullError> {
        let io = |what: String| move |source| PullError::Io { what, source };
        let name = out_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = out_path.parent().unwrap_or(Path::new("."));
        let state_path = dir.join(format!(".{name}.state"));
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let saved = match fs::read_to_string(&state_path) {
            Ok(text) => parse_state(&text).ok_or_else(|| PullError::Io {
                what: format!("reading {}", state_path.display()),
                source: io::Error::new(io::ErrorKind::InvalidData, "not `len dev inode offset`"),
            })?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Saved::default(),
            Err(err) => return Err(io(format!("reading {}", state_path.display()))(err)),
        };
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(out_path)
            .map_err(io(format!("opening {}", out_path.display())))?;
        let len = out
            .metadata()
            .map_err(io(format!("reading {}", out_path.display())))?
            .len();
        if len < saved.out_len {
            return Err(PullError::Io {
                what: format!("opening {}", out_path.display()),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the output has {len} bytes, fewer than the {} saved: it was changed outside the puller",
                        saved.out_len
                    ),
                ),
            });
        }
        if len > saved.out_len {
            tracing::info!(output = %out_path.display(), dropped = len - saved.out_len, "dropping output written after the last save");
            out.set_len(saved.out_len)
                .and_then(|()| out.sync_all())
                .map_err(io(format!("truncating {}", out_path.display())))?;
        }
        Ok(Self {
            out_path: out_path.to_owned(),
            state_path,
            out,
            written: saved.out_len,
            saved,
            pending: None,
        })
    }

    /// What was last saved.
    pub fn saved(&self) -> Saved {
        self.saved
    }

    /// Appends a batch's records (not yet saved).
    pub fn write_batch(&mut self, batch: &PullBatch) -> Result<u64, PullError> {
        let mut bytes = 0u64;
        for record in &batch.records {
            self.out
                .write_all_at(record, self.written + bytes)
                .map_err(|source| PullError::Io {
                    what: format!("writing {}", self.out_path.display()),
                    source,
                })?;
            bytes += record.len() as u64;
        }
        self.written += bytes;
        if batch.position.is_some() {
            self.pending = batch.position;
        }
        Ok(bytes)
    }

    /// Makes what was written durable: fsync the output, then store its
    /// length and position atomically. False if there was nothing new.
    pub fn save(&mut self) -> Result<bool, PullError> {
        let Some(position) = self.pending else {
            return Ok(false);
        };
        if self.saved.position == Some(position) && self.saved.out_len == self.written {
            return Ok(false);
        }
        let io = |what: &str, path: &Path| {
            let what = format!("{what} {}", path.display());
            move |source| PullError::Io { what, source }
        };
        self.out
            .sync_data()
            .map_err(io("syncing", &self.out_path))?;
        let tmp = self.state_path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io("creating", &tmp))?;
        writeln!(
            file,
            "{} {} {} {}",
            self.written, position.dev, position.inode, position.offset
        )
        .and_then(|()| file.sync_all())
        .map_err(io("writing", &tmp))?;
        fs::rename(&tmp, &self.state_path).map_err(io("renaming", &tmp))?;
        if let Some(dir) = self.state_path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("syncing", dir))?;
        }
        self.saved = Saved {
            out_len: self.written,
            position: Some(position),
        };
        Ok(true)
    }

    /// Commits the saved position on the serving node (nothing before the
    /// first save).
    pub async fn commit(
        &self,
        client: &mut LogsClient<Channel>,
        log: &str,
        subscriber: &str,
    ) -> Result<(), PullError> {
        if let Some(position) = self.saved.position {
            client
                .commit(CommitRequest {
                    log: log.to_owned(),
                    subscriber: subscriber.to_owned(),
                    position: Some(position),
                })
                .await?;
        }
        Ok(())
    }

    /// One pull: commit the saved position again (finishing a commit a crash
    /// interrupted), stream from the server's checkpoint, write, and save +
    /// commit every [`SAVE_EVERY`] bytes and at the end. With `follow` it
    /// runs until the stream breaks.
    pub async fn pull(
        &mut self,
        client: &mut LogsClient<Channel>,
        log: &str,
        subscriber: &str,
        follow: bool,
    ) -> Result<PullStats, PullError> {
        self.commit(client, log, subscriber).await?;
        let mut stream = client
            .pull(PullRequest {
                log: log.to_owned(),
                subscriber: subscriber.to_owned(),
                follow,
                max_batch_bytes: 0,
            })
            .await?
            .into_inner();
        let mut stats = PullStats::default();
        let mut unsaved = 0u64;
        while let Some(batch) = stream.message().await? {
            if batch.reset {
                tracing::warn!(log, subscriber, output = %self.out_path.display(), "the server lost the checkpoint's file: some records may be missing");
                stats.reset = true;
            }
            let bytes = self.write_batch(&batch)?;
            stats.records += batch.records.len() as u64;
            stats.bytes += bytes;
            unsaved += bytes;
            if unsaved >= SAVE_EVERY || (follow && batch.records.is_empty()) {
                if self.save()? {
                    self.commit(client, log, subscriber).await?;
                }
                unsaved = 0;
            }
        }
        if self.save()? {
            self.commit(client, log, subscriber).await?;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn batch(lines: &[&str], offset: u64) -> PullBatch {
        PullBatch {
            records: lines
                .iter()
                .map(|l| Bytes::from(format!("{l}\n")))
                .collect(),
            position: Some(Position {
                dev: 1,
                inode: 2,
                offset,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reopening_drops_what_was_written_after_the_last_save() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mainlog/node1");
        let mut p = Puller::open(&out).unwrap();
        p.write_batch(&batch(&["a", "b"], 4)).unwrap();
        assert!(p.save().unwrap());
        p.write_batch(&batch(&["c"], 6)).unwrap();
        drop(p); // a crash before the save
        assert_eq!(fs::read_to_string(&out).unwrap(), "a\nb\nc\n");
        let p = Puller::open(&out).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "a\nb\n");
        assert_eq!(p.saved().out_len, 4);
        assert_eq!(p.saved().position.unwrap().offset, 4);
        fs::write(&out, "a").unwrap();
        assert!(Puller::open(&out).is_err(), "output shorter than saved");
    }
}
