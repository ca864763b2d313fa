//! msgc-server processes on loopback: generated configs, free ports, each
//! process in its own cgroup (written by a `sh` wrapper before `exec`, so
//! every socket the server opens is in it), SIGKILL / restart, SIGSTOP /
//! SIGCONT. Dropping a [`ServerSet`] kills and reaps every child.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::error::ChaosError;
use crate::schedule::name;

/// `n` distinct free loopback ports (all held until chosen, then released).
pub fn free_ports(n: usize) -> Result<Vec<u16>, ChaosError> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The `msgc_server.conf` every server of a run reads (only the `Listen`
/// address differs). Times accept units, so a 250 ms keepalive is `250ms`.
pub fn config_text(ports: &[u16], own: usize, keepalive_ms: u64) -> String {
    let peers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    {} = \"127.0.0.1:{p}\"\n", name(i)))
        .collect();
    format!(
        "msgc_server {{\n  peers = [\n{peers}  ]\n  keepalive_interval = {keepalive_ms}ms\n  \
         reconnect_interval = {keepalive_ms}ms\n  connect_timeout = 1\n}}\n\
         msgcserver_listener {{\n  Listen \"127.0.0.1:{}\" {{ }}\n}}\n",
        ports[own]
    )
}

/// The run's servers.
pub struct ServerSet {
    bin: PathBuf,
    dir: PathBuf,
    /// Client addresses, `127.0.0.1:port`, in server order.
    pub addrs: Vec<String>,
    /// Each server's cgroup.procs file, if it runs in a cgroup.
    procs_files: Vec<Option<PathBuf>>,
    children: Vec<Option<Child>>,
    /// Processes started per server (1 + restarts).
    pub incarnations: Vec<u32>,
    stopped: Vec<bool>,
    started: Instant,
}

impl ServerSet {
    /// Writes the configs into `dir` and starts every server.
    pub fn start(
        bin: &Path,
        dir: &Path,
        ports: &[u16],
        keepalive_ms: u64,
        procs_files: Vec<Option<PathBuf>>,
    ) -> Result<Self, ChaosError> {
        if !bin.is_file() {
            return Err(ChaosError::Preflight(format!(
                "msgc-server binary not found at {} (build it: cargo build --release -p msgc-server, or pass --binary)",
                bin.display()
            )));
        }
        let n = ports.len();
        for i in 0..n {
            std::fs::write(
                dir.join(format!("{}.conf", name(i))),
                config_text(ports, i, keepalive_ms),
            )?;
        }
        let mut set = Self {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            addrs: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            procs_files,
            children: (0..n).map(|_| None).collect(),
            incarnations: vec![0; n],
            stopped: vec![false; n],
            started: Instant::now(),
        };
        for i in 0..n {
            set.spawn(i)?;
        }
        Ok(set)
    }

    /// The log file of server `i` (every incarnation appends to it).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", name(i)))
    }

    fn spawn(&mut self, i: usize) -> Result<(), ChaosError> {
        let server = name(i);
        let log_path = self.log_path(i);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        self.incarnations[i] += 1;
        writeln!(
            log,
            "=== msgc-chaos: {server} incarnation {} started at +{} ms",
            self.incarnations[i],
            self.started.elapsed().as_millis()
        )?;
        let conf = self.dir.join(format!("{server}.conf"));
        // The wrapper joins the cgroup, then becomes the server (same pid).
        let script = r#"if [ -n "$1" ]; then echo $$ > "$1" || exit 70; fi; exec "$2" --config "$3" --name "$4""#;
        let procs = self.procs_files[i]
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(procs)
            .arg(&self.bin)
            .arg(&conf)
            .arg(&server)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .spawn()
            .map_err(|e| ChaosError::Process(format!("starting {server}: {e}")))?;
        self.children[i] = Some(child);
        self.stopped[i] = false;
        Ok(())
    }

    /// SIGKILL server `i` and reap it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped[i] = false;
    }

    /// Starts server `i` again (same name and port, a new incarnation).
    pub fn restart(&mut self, i: usize) -> Result<(), ChaosError> {
        self.kill(i);
        self.spawn(i)
    }

    fn signal(&self, i: usize, sig: &str) -> Result<(), ChaosError> {
        let Some(child) = self.children[i].as_ref() else {
            return Ok(());
        };
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(ChaosError::Process(format!(
                "kill -{sig} {} failed",
                name(i)
            )))
        }
    }

    /// SIGSTOP server `i`.
    pub fn stop(&mut self, i: usize) -> Result<(), ChaosError> {
        self.signal(i, "STOP")?;
        self.stopped[i] = true;
        Ok(())
    }

    /// SIGCONT server `i`.
    pub fn cont(&mut self, i: usize) -> Result<(), ChaosError> {
        self.signal(i, "CONT")?;
        self.stopped[i] = false;
        Ok(())
    }

    /// Restarts every server whose process has exited on its own (say a
    /// restart that could not bind yet); returns their indexes.
    pub fn respawn_exited(&mut self) -> Result<Vec<usize>, ChaosError> {
        let mut restarted = Vec::new();
        for i in 0..self.children.len() {
            let exited = match self.children[i].as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => false,
            };
            if exited {
                self.children[i] = None;
                self.spawn(i)?;
                restarted.push(i);
            }
        }
        Ok(restarted)
    }
}

impl Drop for ServerSet {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            if self.stopped[i] {
                let _ = self.signal(i, "CONT");
            }
            self.kill(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_every_peer_and_sub_second_timers() {
        let text = config_text(&[4000, 4001], 1, 250);
        assert!(text.contains("s1 = \"127.0.0.1:4000\""));
        assert!(text.contains("s2 = \"127.0.0.1:4001\""));
        assert!(text.contains("keepalive_interval = 250ms"));
        assert!(text.contains("Listen \"127.0.0.1:4001\""));
    }
}
