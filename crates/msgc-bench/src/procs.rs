//! The two clusters as child processes on loopback: generated configs in a
//! temp dir, free ports, readiness checks, and a guard that kills every child
//! when dropped (also on panic).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Child processes killed (SIGKILL) and reaped on drop.
pub struct Children {
    children: Vec<Child>,
}

impl Children {
    /// Process ids, in server order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Fails if any child has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for (i, c) in self.children.iter_mut().enumerate() {
            if let Some(status) = c.try_wait()? {
                bail!("server {} exited: {status}", i + 1);
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running 3-server cluster.
pub struct Cluster {
    /// Client addresses (`127.0.0.1:port`), in server order.
    pub addrs: Vec<String>,
    /// The server processes.
    pub procs: Children,
}

/// `n` distinct free loopback ports (all held until chosen, then released).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn log_file(dir: &Path, name: &str) -> Result<Stdio> {
    Ok(Stdio::from(std::fs::File::create(dir.join(name))?))
}

/// Starts 3 msgc servers `s1..s3` (s1 coordinates: lowest name).
pub fn start_msgc(bin: &Path, dir: &Path) -> Result<Cluster> {
    if !bin.is_file() {
        bail!(
            "msgc-server binary not found at {} (build it: cargo build --release -p msgc-server, or pass --msgc-server-bin)",
            bin.display()
        );
    }
    let ports = free_ports(3)?;
    let peers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("s{} = \"127.0.0.1:{p}\" ", i + 1))
        .collect();
    let mut children = Children {
        children: Vec::new(),
    };
    for (i, port) in ports.iter().enumerate() {
        let name = format!("s{}", i + 1);
        let path = dir.join(format!("{name}.conf"));
        let mut f = std::fs::File::create(&path)?;
        write!(
            f,
            "msgc_server {{ peers = [ {peers}] keepalive_interval = 1 reconnect_interval = 1 }}\n\
             msgcserver_listener {{ Listen \"127.0.0.1:{port}\" {{ }} }}\n"
        )?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&path)
            .args(["--name", &name])
            .stdin(Stdio::null())
            .stdout(log_file(dir, &format!("{name}.out.log"))?)
            .stderr(log_file(dir, &format!("{name}.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        children.children.push(child);
    }
    Ok(Cluster {
        addrs: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        procs: children,
    })
}

/// Waits until every msgc server reports `msgc.v1.Bus` SERVING.
pub async fn wait_msgc_ready(cluster: &mut Cluster, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    for addr in &cluster.addrs {
        loop {
            cluster.procs.check_alive()?;
            let ok = matches!(
                service_kit::grpc::check_health(addr, "msgc.v1.Bus", Duration::from_secs(1)).await,
                Ok(service_kit::grpc::Health::Serving)
            );
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("msgc server {addr} not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Whether `nats-server` (or the given path) can be run.
pub fn nats_available(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts 3 nats-servers `n1..n3`, clustered with routes to each other.
pub fn start_nats(bin: &str, dir: &Path) -> Result<Cluster> {
    let ports = free_ports(6)?;
    let (client, route) = ports.split_at(3);
    let routes: Vec<String> = route
        .iter()
        .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
        .collect();
    let mut children = Children {
        children: Vec::new(),
    };
    for i in 0..3 {
        let name = format!("n{}", i + 1);
        let path = dir.join(format!("{name}.conf"));
        let mut f = std::fs::File::create(&path)?;
        write!(
            f,
            "server_name: {name}\nhost: 127.0.0.1\nport: {}\n\
             cluster {{\n  name: bench\n  host: 127.0.0.1\n  port: {}\n  routes: [{}]\n}}\n",
            client[i],
            route[i],
            routes.join(", ")
        )?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log_file(dir, &format!("{name}.out.log"))?)
            .stderr(log_file(dir, &format!("{name}.log"))?)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        children.children.push(child);
    }
    Ok(Cluster {
        addrs: client.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        procs: children,
    })
}

/// Waits until every nats-server accepts a client connection. (Route
/// readiness is checked by every run: its publishers probe until each
/// subscriber has seen one of their messages.)
pub async fn wait_nats_ready(cluster: &mut Cluster, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    for addr in &cluster.addrs {
        loop {
            cluster.procs.check_alive()?;
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .max_reconnects(Some(1))
                    .connect(addr.as_str()),
            )
            .await;
            if let Ok(Ok(client)) = attempt {
                let flushed = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
                if matches!(flushed, Ok(Ok(()))) {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("nats server {addr} not ready within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Clock ticks per second for /proc/<pid>/stat times.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) a process has used so far; 0 if unknown.
pub fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, i.e. 12th and 13th after ") ".
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(11) + get(12)) / ticks
}
