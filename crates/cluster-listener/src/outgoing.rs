//! What `MoveTo` may read: only regular files inside the node's outgoing
//! directory (`cluster { outgoing_dir }`, default `<spool_dir>/outgoing`).
//!
//! A requested path is either relative to that directory or absolute and
//! below it. It is refused when it contains `..`, when it lies outside the
//! directory, when it resolves (through a symlink anywhere on its way)
//! outside the directory, or when it is not a regular file. The check is made
//! on the canonical path, which is also the path then opened, so a symlink
//! inside the directory that points to another file inside it is followed.
//! The directory is the local MTA's own: whoever can write in it could swap
//! a checked file for a symlink before it is opened, so it must not be
//! writable by callers of `MoveTo`.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a requested path is not a file `MoveTo` may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// No path was given.
    Empty,
    /// A `..` component, refused whatever it resolves to.
    ParentComponent,
    /// An absolute path that is not below the outgoing directory.
    Outside,
    /// A path below the directory that resolves outside it (a symlink).
    SymlinkOut,
    /// It resolves to something other than a regular file (a directory, a device, ...).
    NotAFile,
}

impl std::fmt::Display for Escape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Escape::Empty => "no path given",
            Escape::ParentComponent => "it contains `..`",
            Escape::Outside => "it is outside the outgoing directory",
            Escape::SymlinkOut => "it resolves through a symlink to outside the outgoing directory",
            Escape::NotAFile => "it is not a regular file",
        })
    }
}

/// Why a `MoveTo` path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    /// The path breaks one of the rules above.
    #[error("MoveTo path {path:?} is refused: {why} {} (cluster outgoing_dir)", dir.display())]
    Refused {
        /// The path as requested.
        path: String,
        /// The configured outgoing directory.
        dir: PathBuf,
        /// Which rule it breaks.
        why: Escape,
    },
    /// The outgoing directory itself cannot be resolved (missing, unreadable).
    #[error("the outgoing directory {} (cluster outgoing_dir) cannot be used: {source}", dir.display())]
    NoDirectory {
        /// The configured outgoing directory.
        dir: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path is allowed but cannot be read (e.g. it does not exist).
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The path as requested.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

/// The canonical path of `requested` if `MoveTo` may read it from `dir`.
pub fn resolve(dir: &Path, requested: &str) -> Result<PathBuf, OutgoingError> {
    let refused = |why| OutgoingError::Refused {
        path: requested.to_owned(),
        dir: dir.to_owned(),
        why,
    };
    let path = Path::new(requested);
    if requested.is_empty() {
        return Err(refused(Escape::Empty));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refused(Escape::ParentComponent));
    }
    let root = dir
        .canonicalize()
        .map_err(|source| OutgoingError::NoDirectory {
            dir: dir.to_owned(),
            source,
        })?;
    let below = if path.is_absolute() {
        path.strip_prefix(dir)
            .or_else(|_| path.strip_prefix(&root))
            .map_err(|_| refused(Escape::Outside))?
    } else {
        path
    };
    let real = root
        .join(below)
        .canonicalize()
        .map_err(|source| OutgoingError::Unreadable {
            path: requested.to_owned(),
            source,
        })?;
    if !real.starts_with(&root) {
        tracing::info!(path = requested, resolved = %real.display(), "MoveTo: symlink out of the outgoing directory refused");
        return Err(refused(Escape::SymlinkOut));
    }
    let meta = std::fs::metadata(&real).map_err(|source| OutgoingError::Unreadable {
        path: requested.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(refused(Escape::NotAFile));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(result: Result<PathBuf, OutgoingError>) -> Escape {
        match result {
            Err(OutgoingError::Refused { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn files_inside_are_allowed_relative_or_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outgoing");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("m1.eml"), b"x").unwrap();
        std::fs::write(dir.join("sub/m2.eml"), b"y").unwrap();
        std::os::unix::fs::symlink(dir.join("sub/m2.eml"), dir.join("link.eml")).unwrap();
        let root = dir.canonicalize().unwrap();
        assert_eq!(resolve(&dir, "m1.eml").unwrap(), root.join("m1.eml"));
        assert_eq!(
            resolve(&dir, "./sub/m2.eml").unwrap(),
            root.join("sub/m2.eml")
        );
        let absolute = dir.join("m1.eml");
        assert_eq!(
            resolve(&dir, absolute.to_str().unwrap()).unwrap(),
            root.join("m1.eml")
        );
        // A symlink that stays inside is followed.
        assert_eq!(resolve(&dir, "link.eml").unwrap(), root.join("sub/m2.eml"));
    }

    #[test]
    fn escapes_are_refused_with_their_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outgoing");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(tmp.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), dir.join("up")).unwrap();
        assert_eq!(why(resolve(&dir, "/etc/passwd")), Escape::Outside);
        assert_eq!(why(resolve(&dir, "../secret")), Escape::ParentComponent);
        assert_eq!(why(resolve(&dir, "sub/../m1.eml")), Escape::ParentComponent);
        let sneaky = format!("{}/../secret", dir.display());
        assert_eq!(why(resolve(&dir, &sneaky)), Escape::ParentComponent);
        assert_eq!(why(resolve(&dir, "passwd")), Escape::SymlinkOut);
        assert_eq!(why(resolve(&dir, "up/secret")), Escape::SymlinkOut);
        assert_eq!(why(resolve(&dir, "sub")), Escape::NotAFile);
        assert_eq!(why(resolve(&dir, "")), Escape::Empty);
        let err = resolve(&dir, "/etc/passwd").unwrap_err().to_string();
        assert!(
            err.contains("\"/etc/passwd\"") && err.contains(&dir.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_or_directory_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outgoing");
        let err = resolve(&dir, "m1").unwrap_err();
        assert!(matches!(err, OutgoingError::NoDirectory { .. }), "{err}");
        assert!(err.to_string().contains("outgoing_dir"), "{err}");
        std::fs::create_dir_all(&dir).unwrap();
        let err = resolve(&dir, "m1").unwrap_err();
        assert!(
            matches!(&err, OutgoingError::Unreadable { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }
}
