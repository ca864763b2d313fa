//! The receiving side of message moves: `<spool_dir>/tmp`, `incoming`,
//! `envelopes`.
//!
//! A message is written to `tmp/<id>.<unique>` on a blocking thread, its
//! chunks gathered up to [`WRITE_BUFFER`] bytes and written with one `writev`
//! (buffered, without copying the chunks again), fsynced, its envelope written to `envelopes/<id>.json`
//! (tmp + fsync + rename), then the body renamed to `incoming/<id>`, and both
//! directories fsynced. Only then is the move acknowledged, so an
//! acknowledged message survives a crash, and `incoming` never holds a partial
//! body: the rename is the commit point. An id already in `incoming` is a
//! duplicate and is not written again. One process owns a spool directory:
//! at start-up every file left in `tmp` (a transfer cut by a crash) is removed.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proto::eccluster::v1::Envelope;
use tokio::sync::mpsc;

use crate::error::MoveError;

/// Body bytes gathered before one write to the receiving file.
pub const WRITE_BUFFER: usize = 1 << 20;

/// Checks a message id: 1-255 bytes of printable ASCII, no `/` or `\`, not
/// starting with `.` (so no `.`, `..`, or hidden names).
pub fn validate_id(id: &str) -> Result<(), MoveError> {
    let refuse = |reason| {
        Err(MoveError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() || id.len() > 255 {
        return refuse("an id is 1 to 255 bytes");
    }
    if id.contains(['/', '\\']) {
        return refuse("an id holds no path separator");
    }
    if id.starts_with('.') {
        return refuse("an id does not start with '.' (no '.', '..' or hidden names)");
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return refuse("an id is printable ASCII without spaces");
    }
    Ok(())
}

/// A spool directory receiving moved messages.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_message_size: u64,
    in_flight: Mutex<HashSet<String>>,
    unique: AtomicU64,
}

/// Holds an id as "being received" until dropped.
#[derive(Debug)]
pub struct Claim {
    spool: Arc<Spool>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.spool.in_flight().remove(&self.id);
    }
}

/// Removes a temporary file when dropped, unless it was committed.
#[derive(Debug)]
struct TmpFile {
    path: PathBuf,
    keep: bool,
}

impl TmpFile {
    /// The file was renamed into place: keep it.
    fn disarm(&mut self) {
        self.keep = true;
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A message being received: body bytes go to [`Receiving::write`], then
/// [`Receiving::commit`] makes it durable and visible.
#[derive(Debug)]
pub struct Receiving {
    claim: Claim,
    envelope: Envelope,
    tmp: TmpFile,
    chunks: Option<mpsc::Sender<Bytes>>,
    writer: tokio::task::JoinHandle<io::Result<u64>>,
    received: u64,
}

/// How a receive began.
#[derive(Debug)]
pub enum Begin {
    /// The id is already in incoming.
    Duplicate,
    /// Write the body.
    Receive(Box<Receiving>),
}

/// Writes every chunk, in order, with as few `writev` calls as the kernel
/// allows.
fn write_chunks(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spool {
    /// A spool in `dir` taking bodies up to `max_message_size` bytes.
    pub fn new(dir: PathBuf, max_message_size: u64) -> Arc<Self> {
        Arc::new(Self {
            dir,
            max_message_size,
            in_flight: Mutex::new(HashSet::new()),
            unique: AtomicU64::new(0),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `incoming/`: where committed messages are.
    pub fn incoming(&self) -> PathBuf {
        self.dir.join("incoming")
    }

    /// `tmp/`: bodies being received.
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// `envelopes/`: each committed message's envelope as JSON.
    pub fn envelopes(&self) -> PathBuf {
        self.dir.join("envelopes")
    }

    /// The largest body accepted.
    pub fn max_message_size(&self) -> u64 {
        self.max_message_size
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Removes every file in `tmp/` (transfers cut by a crash or a kill).
    /// Returns how many were removed; a missing spool is not an error.
    pub fn clean_tmp(&self) -> io::Result<usize> {
        let entries = match fs::read_dir(self.tmp()) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(err),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn ensure_dirs(&self) -> io::Result<()> {
        for dir in [self.tmp(), self.incoming(), self.envelopes()] {
            fs::create_dir_all(dir)?;
        }
        Ok(())
    }

    /// Starts receiving `envelope`: refuses bad ids, declared sizes over the
    /// limit and ids being received right now; answers [`Begin::Duplicate`]
    /// for an id already in incoming; else opens the temporary file and its
    /// writer thread.
    pub fn begin(self: &Arc<Self>, envelope: Envelope) -> Result<Begin, MoveError> {
        let id = envelope.id.clone();
        validate_id(&id)?;
        if envelope.size > self.max_message_size {
            return Err(MoveError::TooLarge {
                id,
                limit: self.max_message_size,
            });
        }
        if !self.in_flight().insert(id.clone()) {
            return Err(MoveError::Busy(id));
        }
        let claim = Claim {
            spool: self.clone(),
            id: id.clone(),
        };
        let io = |what: &str| {
            let id = id.clone();
            let what = what.to_owned();
            move |err| MoveError::io(&id, what, err)
        };
        match fs::symlink_metadata(self.incoming().join(&id)) {
            Ok(_) => return Ok(Begin::Duplicate),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io("checking incoming")(err)),
        }
        self.ensure_dirs()
            .map_err(io("creating the spool directories"))?;
        let n = self.unique.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = self
            .tmp()
            .join(format!("{id}.{}-{n}-{nanos:x}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io("creating the temporary file"))?;
        let tmp = TmpFile { path, keep: false };
        let (chunks, mut rx) = mpsc::channel::<Bytes>(16);
        let writer = tokio::task::spawn_blocking(move || {
            // Buffered without copying: chunks are gathered up to
            // WRITE_BUFFER bytes and written with one writev.
            let mut file = file;
            let mut pending: Vec<Bytes> = Vec::new();
            let mut pending_len = 0;
            let mut written = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                pending_len += chunk.len();
                written += chunk.len() as u64;
                pending.push(chunk);
                if pending_len >= WRITE_BUFFER {
                    write_chunks(&mut file, &pending)?;
                    pending.clear();
                    pending_len = 0;
                }
            }
            write_chunks(&mut file, &pending)?;
            file.sync_all()?;
            Ok(written)
        });
        Ok(Begin::Receive(Box::new(Receiving {
            claim,
            envelope,
            tmp,
            chunks: Some(chunks),
            writer,
            received: 0,
        })))
    }
}

impl Receiving {
    /// The message id.
    pub fn id(&self) -> &str {
        &self.envelope.id
    }

    /// Body bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Queues `data` for the file; refuses a body growing past the limit.
    pub async fn write(&mut self, data: Bytes) -> Result<(), MoveError> {
        if data.is_empty() {
            return Ok(());
        }
        let limit = self.claim.spool.max_message_size;
        self.received += data.len() as u64;
        if self.received > limit {
            return Err(MoveError::TooLarge {
                id: self.envelope.id.clone(),
                limit,
            });
        }
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(data).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error says why.
            Err(self.finish_writer().await.err().unwrap_or_else(|| {
                MoveError::io(
                    &self.envelope.id,
                    "writing the body",
                    io::Error::other("the writer stopped"),
                )
            }))
        }
    }

    async fn finish_writer(&mut self) -> Result<u64, MoveError> {
        self.chunks = None;
        let id = self.envelope.id.clone();
        match (&mut self.writer).await {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(err)) => Err(MoveError::io(&id, "writing the body", err)),
            Err(join) => Err(MoveError::io(
                &id,
                "writing the body",
                io::Error::other(join.to_string()),
            )),
        }
    }

    /// Finishes the body (flush + fsync), writes the envelope, renames the
    /// body into incoming and fsyncs the directories. Returns the body size,
    /// or `None` if the id reached incoming meanwhile (a duplicate).
    pub async fn commit(mut self) -> Result<Option<u64>, MoveError> {
        let written = self.finish_writer().await?;
        let id = self.envelope.id.clone();
        if self.envelope.size != 0 && self.envelope.size != written {
            return Err(MoveError::SizeMismatch {
                id,
                declared: self.envelope.size,
                received: written,
            });
        }
        let Receiving {
            claim,
            mut envelope,
            mut tmp,
            ..
        } = self;
        envelope.size = written;
        // The claim and the temporary file move into the blocking task, so a
        // caller that goes away mid-commit cannot release the id or remove the
        // file before the rename has happened or failed.
        let done = tokio::task::spawn_blocking(move || {
            let spool = &claim.spool;
            let io = |what: &str| {
                let id = id.clone();
                let what = what.to_owned();
                move |err| MoveError::io(&id, what, err)
            };
            let target = spool.incoming().join(&id);
            if fs::symlink_metadata(&target).is_ok() {
                return Ok(None);
            }
            let json = serde_json::json!({
                "id": envelope.id,
                "sender": envelope.sender,
                "recipients": envelope.recipients,
                "binding": envelope.binding,
                "size": envelope.size,
            });
            let env_tmp = TmpFile {
                path: {
                    let mut path = tmp.path.clone().into_os_string();
                    path.push(".envelope");
                    PathBuf::from(path)
                },
                keep: false,
            };
            let mut file = File::create(&env_tmp.path).map_err(io("creating the envelope"))?;
            file.write_all(json.to_string().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .map_err(io("writing the envelope"))?;
            fs::rename(&env_tmp.path, spool.envelopes().join(format!("{id}.json")))
                .map_err(io("renaming the envelope"))?;
            fs::rename(&tmp.path, &target).map_err(io("renaming into incoming"))?;
            tmp.disarm();
            sync_dir(&spool.envelopes()).map_err(io("syncing envelopes"))?;
            sync_dir(&spool.incoming()).map_err(io("syncing incoming"))?;
            drop(claim);
            Ok(Some(written))
        });
        done.await.unwrap_or_else(|join| {
            Err(MoveError::io(
                "",
                "committing",
                io::Error::other(join.to_string()),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_or_hide_are_refused() {
        for bad in [
            "",
            "a/b",
            "..",
            ".",
            ".hidden",
            "a\\b",
            "sp ace",
            "nl\n",
            &"x".repeat(256),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        for good in ["m1", "1A2B3C.4D5E-6F@host", "a..b"] {
            validate_id(good).unwrap();
        }
    }

    fn envelope(id: &str, size: u64) -> Envelope {
        Envelope {
            id: id.to_owned(),
            sender: "s@x".to_owned(),
            recipients: vec!["r@y".to_owned()],
            binding: "b".to_owned(),
            size,
        }
    }

    #[tokio::test]
    async fn a_committed_body_lands_once_and_a_dropped_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_owned(), 10);
        let Begin::Receive(mut rx) = spool.begin(envelope("m1", 0)).unwrap() else {
            panic!("not a duplicate")
        };
        assert!(matches!(
            spool.begin(envelope("m1", 0)),
            Err(MoveError::Busy(_))
        ));
        rx.write(Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(rx.commit().await.unwrap(), Some(5));
        assert_eq!(fs::read(dir.path().join("incoming/m1")).unwrap(), b"hello");
        let env = fs::read_to_string(dir.path().join("envelopes/m1.json")).unwrap();
        assert!(
            env.contains("\"r@y\"") && env.contains("\"size\":5"),
            "{env}"
        );
        assert!(matches!(
            spool.begin(envelope("m1", 0)),
            Ok(Begin::Duplicate)
        ));

        let Begin::Receive(mut rx) = spool.begin(envelope("m2", 0)).unwrap() else {
            panic!("not a duplicate")
        };
        rx.write(Bytes::from_static(b"part")).await.unwrap();
        drop(rx);
        assert!(!dir.path().join("incoming/m2").exists());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let Begin::Receive(mut rx) = spool.begin(envelope("m3", 0)).unwrap() else {
            panic!("not a duplicate")
        };
        let err = rx
            .write(Bytes::from_static(b"0123456789x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, MoveError::TooLarge { limit: 10, .. }),
            "{err}"
        );
        assert!(matches!(
            spool.begin(envelope("m4", 11)),
            Err(MoveError::TooLarge { .. })
        ));
        let Begin::Receive(mut rx) = spool.begin(envelope("m5", 3)).unwrap() else {
            panic!("not a duplicate")
        };
        rx.write(Bytes::from_static(b"ab")).await.unwrap();
        assert!(matches!(
            rx.commit().await,
            Err(MoveError::SizeMismatch { received: 2, .. })
        ));
        assert!(!dir.path().join("incoming/m5").exists());
    }

    #[test]
    fn start_up_removes_what_cut_transfers_left_in_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path().to_owned(), 10);
        assert_eq!(spool.clean_tmp().unwrap(), 0);
        fs::create_dir_all(spool.tmp()).unwrap();
        fs::write(spool.tmp().join("m1.1-2-3"), b"partial").unwrap();
        assert_eq!(spool.clean_tmp().unwrap(), 1);
        assert_eq!(fs::read_dir(spool.tmp()).unwrap().count(), 0);
    }
}
