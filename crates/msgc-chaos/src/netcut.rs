//! Cutting single server-to-server links on loopback with nft and cgroups v2
//! (`/work/shared/reference/tooling.md`): every server process lives in its
//! own cgroup; the dialler's (lower name's) connection to the acceptor's port
//! is marked by a rule on the dialler's cgroup, and dropped by conntrack
//! direction. Clients (in this process's cgroup) are never touched.
//!
//! [`Firewall`] owns one nft table and the cgroups; dropping it deletes both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::ChaosError;
use crate::schedule::LinkCut;

/// Where the cgroup v2 hierarchy is and how nft names a cgroup in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupRoot {
    /// Directory of the v2 hierarchy's root.
    pub dir: PathBuf,
    /// Prefix nft needs before a cgroup's name (its path is taken relative
    /// to `/sys/fs/cgroup`): `"unified/"` where v1 and v2 are mounted side by side.
    pub nft_prefix: String,
}

impl CgroupRoot {
    /// Finds the cgroup v2 hierarchy: `/sys/fs/cgroup` itself (pure v2) or
    /// `/sys/fs/cgroup/unified` (hybrid).
    pub fn detect() -> Result<Self, ChaosError> {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            return Ok(Self {
                dir: base.to_owned(),
                nft_prefix: String::new(),
            });
        }
        let unified = base.join("unified");
        if unified.join("cgroup.procs").exists() {
            return Ok(Self {
                dir: unified,
                nft_prefix: "unified/".into(),
            });
        }
        Err(ChaosError::Preflight(
            "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified".into(),
        ))
    }
}

/// Whether this process runs as root (reads `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether `nft` can be run.
pub fn nft_available() -> bool {
    Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails with a message saying what is missing and how to get it, unless
/// this process is root, `nft` works and a cgroup v2 hierarchy exists.
pub fn preflight() -> Result<CgroupRoot, ChaosError> {
    if !is_root() {
        return Err(ChaosError::Preflight(
            "msgc-chaos procs needs root: link cuts use nft rules and per-server cgroups \
             (run it with sudo, or as root as CI does)"
                .into(),
        ));
    }
    if !nft_available() {
        return Err(ChaosError::Preflight(
            "nft not found: install nftables (scripts/chaos-deps does apt-get update && apt-get install -y nftables)"
                .into(),
        ));
    }
    CgroupRoot::detect()
}

/// Runs an nft script (`nft -f -`).
pub fn nft(script: &str) -> Result<(), ChaosError> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ChaosError::Nft(format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| ChaosError::Nft(format!("writing to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ChaosError::Nft(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ChaosError::Nft(format!(
            "nft failed: {}\nscript:\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// One nft table and one cgroup per server, removed on drop.
pub struct Firewall {
    table: String,
    root: CgroupRoot,
    /// Cgroup names, in server order.
    cgroups: Vec<String>,
    /// Client (and peer) ports, in server order.
    ports: Vec<u16>,
}

/// The nft table name of a run of process `pid`.
pub fn table_name(pid: u32) -> String {
    format!("msgc_chaos_{pid}")
}

impl Firewall {
    /// Creates cgroups `<tag>-s1..` and an nft table with an output chain.
    pub fn new(root: CgroupRoot, tag: &str, ports: &[u16]) -> Result<Self, ChaosError> {
        let mut fw = Self {
            table: table_name(std::process::id()),
            root,
            cgroups: Vec::new(),
            ports: ports.to_vec(),
        };
        for i in 0..ports.len() {
            let name = format!("{tag}-s{}", i + 1);
            let dir = fw.root.dir.join(&name);
            if !dir.exists() {
                std::fs::create_dir(&dir)
                    .map_err(|e| ChaosError::Io(format!("mkdir {}: {e}", dir.display())))?;
            }
            fw.cgroups.push(name);
        }
        // A table left over from an earlier run of this pid is replaced.
        let _ = nft(&format!("delete table inet {}\n", fw.table));
        nft(&format!(
            "add table inet {t}\nadd chain inet {t} out {{ type filter hook output priority 0 ; }}\n",
            t = fw.table
        ))?;
        Ok(fw)
    }

    /// The `cgroup.procs` file of server `i`'s cgroup (a restarted server
    /// must be written into it again).
    pub fn procs_file(&self, i: usize) -> PathBuf {
        self.root.dir.join(&self.cgroups[i]).join("cgroup.procs")
    }

    /// The nft rules that apply `cuts` (one conntrack mark per link).
    pub fn rules(&self, cuts: &[LinkCut]) -> String {
        let mut script = String::new();
        for cut in cuts {
            let mark = 0x100 + cut.dialer * 64 + cut.acceptor;
            script.push_str(&format!(
                "add rule inet {t} out socket cgroupv2 level 1 \"{p}{cg}\" tcp dport {port} ct mark set {mark:#x}\n",
                t = self.table,
                p = self.root.nft_prefix,
                cg = self.cgroups[cut.dialer],
                port = self.ports[cut.acceptor],
            ));
            for (on, dir) in [(cut.drop_original, "original"), (cut.drop_reply, "reply")] {
                if on {
                    script.push_str(&format!(
                        "add rule inet {t} out ct mark {mark:#x} ct direction {dir} drop\n",
                        t = self.table
                    ));
                }
            }
        }
        script
    }

    /// Adds the cuts (on top of any in force).
    pub fn cut(&self, cuts: &[LinkCut]) -> Result<(), ChaosError> {
        if cuts.is_empty() {
            return Ok(());
        }
        nft(&self.rules(cuts))
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), ChaosError> {
        nft(&format!("flush chain inet {} out\n", self.table))
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {}\n", self.table));
        for name in &self.cgroups {
            let dir = self.root.dir.join(name);
            // The cgroup empties once its (killed) processes are reaped.
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Deletes nft tables and cgroups left by earlier runs whose process is gone
/// (one killed with SIGKILL cannot clean up after itself).
pub fn sweep_stale(root: &CgroupRoot) {
    let alive = |pid: &str| Path::new("/proc").join(pid).exists();
    if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(pid) = line.trim().strip_prefix("table inet msgc_chaos_")
                && !alive(pid)
                && pid != std::process::id().to_string()
            {
                let _ = nft(&format!("delete table inet msgc_chaos_{pid}\n"));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&root.dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("msgc-chaos-") else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or("");
            if !alive(pid) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_mark_the_dialler_and_drop_by_direction() {
        let fw = Firewall {
            table: "t".into(),
            root: CgroupRoot {
                dir: PathBuf::from("/nonexistent"),
                nft_prefix: "unified/".into(),
            },
            cgroups: vec!["c-s1".into(), "c-s2".into(), "c-s3".into()],
            ports: vec![1001, 1002, 1003],
        };
        let rules = fw.rules(&[LinkCut::one_way(2, 0)]);
        assert_eq!(
            rules,
            "add rule inet t out socket cgroupv2 level 1 \"unified/c-s1\" tcp dport 1003 ct mark set 0x102\n\
             add rule inet t out ct mark 0x102 ct direction reply drop\n"
        );
        let both = fw.rules(&[LinkCut::both(0, 1)]);
        assert!(both.contains("direction original drop") && both.contains("direction reply drop"));
        std::mem::forget(fw); // no table or cgroups to delete
    }
}
