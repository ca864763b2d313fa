//! Shared test helpers: an in-process msgc bus on loopback, cluster-listener
//! nodes as real child processes, and polling with deadlines.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use msgc_server::{ServerConfig, serve};
use proto::eccluster::v1::node_client::NodeClient;
use proto::eccluster::v1::{MembershipRequest, MembershipResponse};
use proto::msgc::v1::GetServerViewRequest;
use proto::msgc::v1::admin_client::AdminClient;
use service_kit::grpc::{Health, check_health};
use service_kit::listen::BoundListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_cluster-listener");

/// How long any one condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until it gives `Some`, failing with `what` (and the last
/// value seen) after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {DEADLINE:?} waiting for {what}; last: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_serving(addr: &str, service: &str) {
    eventually(&format!("{addr} SERVING {service:?}"), || async {
        match check_health(addr, service, Duration::from_secs(1)).await {
            Ok(Health::Serving) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// In-process msgc servers s1..sN on loopback with fast timers.
pub struct Bus {
    pub addrs: Vec<String>,
    stops: Vec<CancellationToken>,
    tasks: Vec<Option<JoinHandle<()>>>,
}

pub fn fast(mut cfg: ServerConfig) -> ServerConfig {
    cfg.keepalive_interval = Duration::from_millis(200);
    cfg.reconnect_interval = Duration::from_millis(200);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg
}

impl Bus {
    pub async fn start(n: usize) -> Self {
        let mut listeners = Vec::new();
        let mut peers = BTreeMap::new();
        for i in 1..=n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            peers.insert(format!("s{i}"), listener.local_addr().unwrap().to_string());
            listeners.push(listener);
        }
        let mut bus = Bus {
            addrs: peers.values().cloned().collect(),
            stops: Vec::new(),
            tasks: Vec::new(),
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let cfg = fast(ServerConfig::with_peers(
                &format!("s{}", i + 1),
                peers.clone(),
            ));
            let stop = CancellationToken::new();
            let token = stop.clone();
            bus.tasks.push(Some(tokio::spawn(async move {
                serve(cfg, vec![BoundListener::from_tcp(listener)], token)
                    .await
                    .unwrap();
            })));
            bus.stops.push(stop);
        }
        bus.wait_view(n).await;
        bus
    }

    /// Waits until every server has installed a view of all `n` servers.
    pub async fn wait_view(&self, n: usize) {
        for addr in &self.addrs {
            eventually(
                &format!("msgc server {addr} to see {n} servers"),
                || async {
                    let channel = msgc_client::channel(addr, Duration::from_secs(1))
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = AdminClient::new(channel)
                        .get_server_view(GetServerViewRequest {})
                        .await
                        .map_err(|e| e.to_string())?
                        .into_inner();
                    if status.members.len() == n && !status.view_change_in_progress {
                        Ok(())
                    } else {
                        Err(format!("{status:?}"))
                    }
                },
            )
            .await;
        }
    }

    /// Stops server `i` and waits for it to end.
    pub async fn stop(&mut self, i: usize) {
        self.stops[i].cancel();
        if let Some(task) = self.tasks[i].take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Starts a one-server bus named `name` on `addr` again (after [`Bus::stop`]).
    pub fn restart_single(&mut self, i: usize, name: &str) {
        let addr = self.addrs[i].clone();
        let cfg = fast(ServerConfig::with_peers(
            name,
            [(name.to_owned(), addr.clone())].into(),
        ));
        let listen = service_kit::listen::ListenAddr::parse(&addr).unwrap();
        let listener = service_kit::listen::bind(&listen, &Default::default()).unwrap();
        let stop = CancellationToken::new();
        let token = stop.clone();
        self.tasks[i] = Some(tokio::spawn(async move {
            serve(cfg, vec![listener], token).await.unwrap();
        }));
        self.stops[i] = stop;
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for stop in &self.stops {
            stop.cancel();
        }
    }
}

/// A cluster-listener child process, killed when dropped.
pub struct NodeProc {
    pub name: String,
    /// The node's gRPC address (its first TCP Listen).
    pub addr: String,
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl NodeProc {
    /// Starts the binary on the config `text` (written to a temp dir), with
    /// extra environment `env`.
    pub fn start(name: &str, addr: &str, text: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("ecelerity-cluster.conf");
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["--config", conf.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .env_remove("EC_NODE_NAME")
            .env("RUST_LOG", "cluster_listener=debug,warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        NodeProc {
            name: name.to_owned(),
            addr: addr.to_owned(),
            child,
            dir,
        }
    }

    /// A node listening on `127.0.0.1:port` and using the msgc `servers`.
    pub fn simple(name: &str, port: u16, servers: &[&str]) -> Self {
        Self::start(
            name,
            &format!("127.0.0.1:{port}"),
            &node_conf(name, &format!("127.0.0.1:{port}"), servers),
            &[],
        )
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn client(&self) -> NodeClient<Channel> {
        node_client(&self.addr).await
    }

    pub async fn membership(&self) -> Result<MembershipResponse, String> {
        let mut client = node_client_checked(&self.addr).await?;
        client
            .membership(MembershipRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|e| e.to_string())
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node config: one Listen, fast msgc client timers.
pub fn node_conf(name: &str, listen: &str, servers: &[&str]) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        "ECCluster_Listener {{\n  Listen \"{listen}\" {{ }}\n}}\n\
         cluster {{\n  nodename = \"{name}\"\n}}\n\
         msgc_client {{\n  server = ( {} )\n  reconnect_interval = 200ms\n  keepalive_interval = 1\n  connect_timeout = 2\n}}\n",
        servers.join(" ")
    )
}

pub async fn node_client_checked(addr: &str) -> Result<NodeClient<Channel>, String> {
    let channel = msgc_client::channel(addr, Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    Ok(NodeClient::new(channel))
}

pub async fn node_client(addr: &str) -> NodeClient<Channel> {
    eventually(&format!("a connection to {addr}"), || {
        node_client_checked(addr)
    })
    .await
}

/// A node served in this process (no bus: `enabled = false`), its spool and
/// state under a temp dir.
pub struct InProcNode {
    pub addr: String,
    pub dir: tempfile::TempDir,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl InProcNode {
    /// Starts node `name`; `tweak` adjusts the configuration first.
    pub async fn start(name: &str, tweak: impl FnOnce(&mut cluster_listener::NodeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(name, dir, tweak).await
    }

    /// Like [`InProcNode::start`], in an existing directory (a restart).
    pub async fn start_in(
        name: &str,
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut cluster_listener::NodeConfig),
    ) -> Self {
        let mut cfg = cluster_listener::NodeConfig::new(name, vec![]);
        cfg.enabled = false;
        cfg.spool_dir = dir.path().join("spool");
        cfg.state_dir = dir.path().join("state");
        cfg.outgoing_dir = dir.path().join("spool/outgoing");
        tweak(&mut cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            cluster_listener::serve(cfg, vec![BoundListener::from_tcp(listener)], token)
                .await
                .unwrap();
        });
        wait_serving(&addr, "").await;
        InProcNode {
            addr,
            dir,
            stop,
            task: Some(task),
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// The only directory `MoveTo` reads from, created.
    pub fn outgoing(&self) -> PathBuf {
        let dir = self.spool().join("outgoing");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Stops the node and hands its directory back.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for InProcNode {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// xorshift64*: reproducible randomness from a printed seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `SEED` if set, else the clock; prints the seed.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A 64-bit digest of `bytes` (SipHash with fixed keys: same bytes, same digest).
pub fn digest(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(bytes);
    h.finish()
}

/// A TCP proxy on loopback that cuts each connection after a random number
/// of bytes in either direction (client->server budget up to `c2s_max`,
/// server->client up to `s2c_max`). Counts the cuts.
pub struct CuttingProxy {
    pub addr: String,
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream: String, seed: u64, c2s_max: u64, s2c_max: u64) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = cuts.clone();
        let task = tokio::spawn(async move {
            let mut rng = Rng(seed | 1);
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let budgets = [rng.range(1, c2s_max), rng.range(1, s2c_max)];
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    async fn pump(
                        r: &mut tokio::net::tcp::OwnedReadHalf,
                        w: &mut tokio::net::tcp::OwnedWriteHalf,
                        mut budget: u64,
                    ) -> bool {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match r.read(&mut buf).await {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => n,
                            };
                            let pass = (n as u64).min(budget) as usize;
                            if w.write_all(&buf[..pass]).await.is_err() {
                                return false;
                            }
                            budget -= pass as u64;
                            if budget == 0 {
                                return true;
                            }
                        }
                    }
                    let cut = tokio::select! {
                        cut = pump(&mut cr, &mut sw, budgets[0]) => cut,
                        cut = pump(&mut sr, &mut cw, budgets[1]) => cut,
                    };
                    if cut {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    // Dropping all four halves closes both connections.
                });
            }
        });
        CuttingProxy { addr, cuts, task }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
