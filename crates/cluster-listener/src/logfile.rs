//! Reading an offered log as records (lines) from a position that survives
//! rotation.
//!
//! A [`Position`] names a file by identity (device, inode) and a byte offset
//! in it, so it stays valid when the file is renamed. Opening at a position
//! looks for that file at the log's path, then among its siblings named
//! `<file name>.<anything>` (`mainlog.1`, `mainlog.2026-11-25`, ...): the
//! conventional rotated names. Reading goes through an open handle, so a file
//! renamed while it is read is still read to its end. Once the handle is at
//! its end and the log's path names another file, the reader sends the old
//! file's last, unterminated line (if any, with a newline added) and moves to
//! the file rotated after it: the rotated siblings are ordered oldest first —
//! other suffixes by modification time, then numbered ones from the highest
//! number down (`.3`, `.2`, `.1`, as logrotate shifts them), then the current
//! file — so a reader that fell several rotations behind still reads every
//! generation in order. Compressed siblings (`.gz`, `.bz2`, `.xz`, `.zst`,
//! `.Z`) are not read.
//!
//! Where the file cannot be found any more (rotated away under another name,
//! or deleted) the reader restarts at the start of the current file and says
//! so ([`LogReader::reset`]). A file shorter than the position's offset was
//! truncated in place (copytruncate): reading restarts at its start, also
//! flagged as a reset. A position with inode 0 means "the start of whatever
//! file the path names".
//!
//! Records are whole lines, with their newline. A line longer than a batch is
//! sent in pieces of the batch size.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proto::eccluster::v1::Position;

/// Default and largest batch, in bytes.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

fn same_file(meta: &Metadata, dev: u64, inode: u64) -> bool {
    meta.dev() == dev && meta.ino() == inode
}

/// The position at the start (or, with `at_end`, the end) of the file `path`
/// names now; inode 0 if there is none yet.
pub fn current_position(path: &Path, at_end: bool) -> io::Result<Position> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Position {
            dev: meta.dev(),
            inode: meta.ino(),
            offset: if at_end { meta.len() } else { 0 },
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Position::default()),
        Err(err) => Err(err),
    }
}

/// Finds the file `(dev, inode)`: the log's path itself, or a sibling named
/// `<file name>.<suffix>`.
pub fn find_file(path: &Path, dev: u64, inode: u64) -> io::Result<Option<PathBuf>> {
    if let Ok(meta) = fs::metadata(path)
        && same_file(&meta, dev, inode)
    {
        return Ok(Some(path.to_owned()));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".");
    let prefix = prefix.to_string_lossy().into_owned();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        if let Ok(meta) = entry.metadata()
            && same_file(&meta, dev, inode)
        {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Rotated siblings of `path` (`<name>.<suffix>`, compressed ones left out)
/// and `path` itself, oldest first: dated or other suffixes by modification
/// time, then numbered ones from the highest number down (`.3`, `.2`, `.1`,
/// as logrotate numbers them), then the current file.
fn generations(path: &Path) -> io::Result<Vec<(PathBuf, u64, u64)>> {
    let mut found: Vec<((u8, i128), PathBuf, u64, u64)> = Vec::new();
    if let Ok(meta) = fs::metadata(path) {
        found.push(((2, 0), path.to_owned(), meta.dev(), meta.ino()));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(suffix) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        if [".gz", ".bz2", ".xz", ".zst", ".Z"]
            .iter()
            .any(|z| suffix.ends_with(z))
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let key = match suffix.parse::<u32>() {
            Ok(n) => (1, -i128::from(n)),
            Err(_) => (
                0,
                i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ),
        };
        found.push((key, entry.path(), meta.dev(), meta.ino()));
    }
    found.sort_by_key(|a| a.0);
    Ok(found.into_iter().map(|(_, p, d, i)| (p, d, i)).collect())
}

/// The file rotated right after `(dev, inode)`, if that file is still a
/// rotated sibling and not the newest.
fn successor(path: &Path, dev: u64, inode: u64) -> io::Result<Option<PathBuf>> {
    let all = generations(path)?;
    Ok(all
        .iter()
        .position(|(_, d, i)| *d == dev && *i == inode)
        .and_then(|at| all.get(at + 1))
        .map(|(p, _, _)| p.clone()))
}

/// Reads a log's records from a position; see the module docs.
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    file: Option<File>,
    dev: u64,
    inode: u64,
    offset: u64,
    reset: bool,
}

impl LogReader {
    /// A reader of the log at `path` from `from` (`None`: the start of the
    /// current file).
    pub fn open(path: &Path, from: Option<&Position>) -> io::Result<Self> {
        let mut reader = LogReader {
            path: path.to_owned(),
            file: None,
            dev: 0,
            inode: 0,
            offset: 0,
            reset: false,
        };
        match from {
            Some(p) if p.inode != 0 => match find_file(path, p.dev, p.inode)? {
                Some(found) => {
                    let file = File::open(&found)?;
                    let meta = file.metadata()?;
                    // The file may have been replaced between find and open.
                    if same_file(&meta, p.dev, p.inode) {
                        reader.dev = p.dev;
                        reader.inode = p.inode;
                        if p.offset <= meta.len() {
                            reader.offset = p.offset;
                        } else {
                            reader.reset = true;
                        }
                        reader.file = Some(file);
                    } else {
                        reader.reset = true;
                        reader.open_current()?;
                    }
                }
                None => {
                    reader.reset = true;
                    reader.open_current()?;
                }
            },
            _ => {
                reader.open_current()?;
            }
        }
        Ok(reader)
    }

    /// Opens the file the path names now, at offset 0 (nothing if none yet).
    fn open_current(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                let meta = file.metadata()?;
                self.dev = meta.dev();
                self.inode = meta.ino();
                self.offset = 0;
                self.file = Some(file);
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Moves on from a finished file to the one rotated after it, else to
    /// the current file.
    fn advance(&mut self) -> io::Result<()> {
        self.file = None;
        if let Some(next) = successor(&self.path, self.dev, self.inode)? {
            let file = File::open(&next)?;
            let meta = file.metadata()?;
            self.dev = meta.dev();
            self.inode = meta.ino();
            self.offset = 0;
            self.file = Some(file);
            return Ok(());
        }
        self.open_current().map(|_| ())
    }

    /// Where the reader stands: everything before it has been returned.
    pub fn position(&self) -> Position {
        Position {
            dev: self.dev,
            inode: self.inode,
            offset: self.offset,
        }
    }

    /// True if the starting position's file was not found (or was
    /// truncated) and reading restarted at the start of the current file.
    pub fn reset(&self) -> bool {
        self.reset
    }

    /// The next records, at most `max_bytes` of them (at least one record if
    /// any is complete). Empty when the log has nothing more for now.
    pub fn next_batch(&mut self, max_bytes: usize) -> io::Result<Vec<Bytes>> {
        let max_bytes = max_bytes.clamp(1, MAX_BATCH_BYTES);
        loop {
            if self.file.is_none() && !self.open_current()? {
                return Ok(Vec::new());
            }
            let records = self.read_lines(max_bytes, false)?;
            if !records.is_empty() {
                return Ok(records);
            }
            // At the end of the file read: has the log moved on?
            match fs::metadata(&self.path) {
                Ok(meta) if !same_file(&meta, self.dev, self.inode) => {
                    // Rotated: finish the old file (lines written to it up to
                    // now, and its unterminated tail), then switch.
                    let tail = self.read_lines(max_bytes, true)?;
                    if !tail.is_empty() {
                        return Ok(tail);
                    }
                    self.advance()?;
                }
                Ok(meta) if meta.len() < self.offset => {
                    // Truncated in place (copytruncate).
                    tracing::warn!(path = %self.path.display(), "log truncated in place: reading from its start");
                    self.offset = 0;
                    self.reset = true;
                }
                _ => return Ok(Vec::new()),
            }
        }
    }

    /// Reads whole lines from the current offset; with `finish`, an
    /// unterminated last line too (the file will not grow any more).
    fn read_lines(&mut self, max_bytes: usize, finish: bool) -> io::Result<Vec<Bytes>> {
        let Some(file) = &self.file else {
            return Ok(Vec::new());
        };
        // Read what the file holds now, up to a batch: a follower polling an
        // idle log allocates nothing.
        let available = file.metadata()?.len().saturating_sub(self.offset);
        if available == 0 {
            return Ok(Vec::new());
        }
        let want = usize::try_from(available).map_or(max_bytes, |a| a.min(max_bytes));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = file.read_at(&mut buf[filled..], self.offset + filled as u64)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        let end = match buf.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            // A line longer than a batch goes in pieces; a finished file's
            // tail goes whole.
            None if filled == max_bytes || (finish && filled > 0) => filled,
            None => return Ok(Vec::new()),
        };
        let mut records = Vec::new();
        let data = Bytes::from(buf).slice(..end);
        let mut start = 0;
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' {
                records.push(data.slice(start..=i));
                start = i + 1;
            }
        }
        if start < end {
            let piece = data.slice(start..end);
            if finish && filled < max_bytes {
                let mut line = piece.to_vec();
                line.push(b'\n');
                records.push(Bytes::from(line));
            } else {
                records.push(piece);
            }
        }
        self.offset += end as u64;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn text(records: &[Bytes]) -> String {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    #[test]
    fn whole_lines_only_and_growth_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mainlog");
        let mut r = LogReader::open(&log, None).unwrap();
        assert!(r.next_batch(1024).unwrap().is_empty());
        append(&log, "a\nb\npart");
        assert_eq!(text(&r.next_batch(1024).unwrap()), "a\nb\n");
        assert!(r.next_batch(1024).unwrap().is_empty());
        append(&log, "ial\n");
        assert_eq!(text(&r.next_batch(1024).unwrap()), "partial\n");
        assert_eq!(r.position().offset, 12);
        // From a stored position.
        append(&log, "c\n");
        let mut again = LogReader::open(&log, Some(&r.position())).unwrap();
        assert_eq!(text(&again.next_batch(1024).unwrap()), "c\n");
        assert!(!again.reset());
        // Small batches split at lines, long lines in pieces.
        append(&log, "0123456789\n");
        assert_eq!(text(&again.next_batch(4).unwrap()), "0123");
    }

    #[test]
    fn rotation_finishes_the_old_file_then_reads_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mainlog");
        append(&log, "1\n2\n");
        let mut r = LogReader::open(&log, None).unwrap();
        assert_eq!(text(&r.next_batch(2).unwrap()), "1\n");
        let saved = r.position();
        fs::rename(&log, dir.path().join("mainlog.1")).unwrap();
        append(&dir.path().join("mainlog.1"), "3\nunterminated");
        append(&log, "4\n");
        assert_eq!(text(&r.next_batch(1024).unwrap()), "2\n3\n");
        assert_eq!(text(&r.next_batch(1024).unwrap()), "unterminated\n");
        assert_eq!(text(&r.next_batch(1024).unwrap()), "4\n");
        // A reader from the saved position finds the old file by inode.
        let mut again = LogReader::open(&log, Some(&saved)).unwrap();
        let mut all = String::new();
        loop {
            let batch = again.next_batch(1024).unwrap();
            if batch.is_empty() {
                break;
            }
            all.push_str(&text(&batch));
        }
        assert_eq!(all, "2\n3\nunterminated\n4\n");
        // Two rotations since the position: every generation in order.
        fs::rename(dir.path().join("mainlog.1"), dir.path().join("mainlog.2")).unwrap();
        fs::rename(&log, dir.path().join("mainlog.1")).unwrap();
        append(&log, "5\n");
        fs::write(dir.path().join("mainlog.3.gz"), "compressed\n").unwrap();
        let mut again = LogReader::open(&log, Some(&saved)).unwrap();
        let mut all = String::new();
        loop {
            let batch = again.next_batch(1024).unwrap();
            if batch.is_empty() {
                break;
            }
            all.push_str(&text(&batch));
        }
        assert_eq!(all, "2\n3\nunterminated\n4\n5\n");
        fs::rename(dir.path().join("mainlog.2"), dir.path().join("mainlog.1")).unwrap();
        // Gone: restart at the current file, flagged.
        fs::remove_file(dir.path().join("mainlog.1")).unwrap();
        let mut lost = LogReader::open(&log, Some(&saved)).unwrap();
        assert!(lost.reset());
        assert_eq!(text(&lost.next_batch(1024).unwrap()), "5\n");
    }
}
