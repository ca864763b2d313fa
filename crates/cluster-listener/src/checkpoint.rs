//! Durable checkpoints of log subscribers, one small file per (log,
//! subscriber): `<state_dir>/logs/<log>/<subscriber>.checkpoint`, holding
//! `dev inode offset` on one line. Every store writes a temporary file,
//! fsyncs it, renames it over the old one and fsyncs the directory, so a
//! checkpoint is either the old or the new one after a crash, never a mix.
//!
//! Subscriber `master` always exists (before its first commit it stands at
//! the start of the current file); any other subscriber exists once created
//! (`Subscribe`, which writes its first checkpoint).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use proto::eccluster::v1::Position;

/// The subscriber that always exists.
pub const MASTER: &str = "master";

/// The checkpoints under a state directory.
#[derive(Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    // Stores of the same process do not interleave their temporary files.
    write: Mutex<()>,
}

fn parse(text: &str) -> Option<Position> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let position = Position {
        dev: fields.next()?.ok()?,
        inode: fields.next()?.ok()?,
        offset: fields.next()?.ok()?,
    };
    fields.next().is_none().then_some(position)
}

impl Checkpoints {
    /// Checkpoints kept under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("logs"),
            write: Mutex::new(()),
        }
    }

    fn log_dir(&self, log: &str) -> PathBuf {
        self.dir.join(log)
    }

    fn file(&self, log: &str, subscriber: &str) -> PathBuf {
        self.log_dir(log).join(format!("{subscriber}.checkpoint"))
    }

    /// The stored checkpoint, `None` if the subscriber never stored one.
    /// A damaged file is an error (it is never written partially).
    pub fn load(&self, log: &str, subscriber: &str) -> io::Result<Option<Position>> {
        let path = self.file(log, subscriber);
        match fs::read_to_string(&path) {
            Ok(text) => parse(&text).map(Some).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not `dev inode offset`", path.display()),
                )
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// True if `subscriber` exists on `log`.
    pub fn exists(&self, log: &str, subscriber: &str) -> bool {
        subscriber == MASTER || self.file(log, subscriber).is_file()
    }

    /// Durably replaces the checkpoint (tmp + fsync + rename + fsync dir).
    pub fn store(&self, log: &str, subscriber: &str, position: &Position) -> io::Result<()> {
        let _one = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = self.log_dir(log);
        fs::create_dir_all(&dir)?;
        let path = self.file(log, subscriber);
        let tmp = dir.join(format!(".{subscriber}.checkpoint.tmp"));
        let result = (|| {
            let mut file = File::create(&tmp)?;
            writeln!(
                file,
                "{} {} {}",
                position.dev, position.inode, position.offset
            )?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Every subscriber of `log` with its checkpoint, `master` first.
    pub fn subscribers(&self, log: &str) -> io::Result<Vec<(String, Option<Position>)>> {
        let mut all = vec![(MASTER.to_owned(), self.load(log, MASTER)?)];
        let entries = match fs::read_dir(self.log_dir(log)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(all),
            Err(err) => return Err(err),
        };
        let mut others = Vec::new();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(sub) = name.strip_suffix(".checkpoint")
                && !sub.starts_with('.')
                && sub != MASTER
            {
                others.push((sub.to_owned(), self.load(log, sub)?));
            }
        }
        others.sort_by(|a, b| a.0.cmp(&b.0));
        all.extend(others);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_and_master_always_exists() {
        let dir = tempfile::tempdir().unwrap();
        let cps = Checkpoints::new(dir.path());
        assert!(cps.exists("mainlog", MASTER));
        assert!(!cps.exists("mainlog", "archive"));
        assert_eq!(cps.load("mainlog", MASTER).unwrap(), None);
        let p = Position {
            dev: 1,
            inode: 2,
            offset: 3,
        };
        cps.store("mainlog", "archive", &p).unwrap();
        cps.store("mainlog", MASTER, &p).unwrap();
        assert!(cps.exists("mainlog", "archive"));
        assert_eq!(cps.load("mainlog", "archive").unwrap(), Some(p));
        let subs: Vec<String> = cps
            .subscribers("mainlog")
            .unwrap()
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(subs, vec!["master", "archive"]);
        fs::write(dir.path().join("logs/mainlog/archive.checkpoint"), "1 2").unwrap();
        assert!(cps.load("mainlog", "archive").is_err());
    }
}
