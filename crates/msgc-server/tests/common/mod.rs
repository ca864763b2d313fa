//! An in-process cluster of real servers on loopback ports, for tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use msgc_client::{Events, Options, Session};
use msgc_server::{ServerConfig, serve};
use proto::msgc::v1::admin_client::AdminClient;
use proto::msgc::v1::{GetServerViewRequest, ServerFrame, ServerStatus};
use service_kit::listen::BoundListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One running server.
pub struct Node {
    pub name: String,
    pub addr: String,
    pub cfg: ServerConfig,
    pub stop: CancellationToken,
    pub task: Option<JoinHandle<()>>,
}

/// Servers named s1..sN with fast timers.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

/// Fast timers. A link silent for 1.5 keepalive intervals is dropped, so
/// 400 ms keeps the 600 ms of silence a busy test machine may need.
pub fn fast(mut cfg: ServerConfig) -> ServerConfig {
    cfg.keepalive_interval = Duration::from_millis(400);
    cfg.reconnect_interval = Duration::from_millis(200);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg
}

impl Cluster {
    pub async fn start(n: usize) -> Self {
        Self::start_with(n, |c| c).await
    }

    pub async fn start_with(n: usize, tweak: impl Fn(ServerConfig) -> ServerConfig) -> Self {
        let mut listeners = Vec::new();
        let mut peers = BTreeMap::new();
        for i in 1..=n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            peers.insert(format!("s{i}"), addr);
            listeners.push(listener);
        }
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let name = format!("s{}", i + 1);
            let cfg = tweak(fast(ServerConfig::with_peers(&name, peers.clone())));
            let (stop, task) = spawn_server(cfg.clone(), listener);
            nodes.push(Node {
                name: name.clone(),
                addr: peers[&name].clone(),
                cfg,
                stop,
                task: Some(task),
            });
        }
        Self { nodes }
    }

    /// Starts server `i` again, fresh, on its old address.
    pub async fn restart(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match tokio::net::TcpListener::bind(&self.nodes[i].addr).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot rebind {}: {e}",
                        self.nodes[i].addr
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let (stop, task) = spawn_server(self.nodes[i].cfg.clone(), listener);
        self.nodes[i].stop = stop;
        self.nodes[i].task = Some(task);
    }

    pub fn addr(&self, i: usize) -> &str {
        &self.nodes[i].addr
    }

    /// Stops server `i` and waits for it to end.
    pub async fn kill(&mut self, i: usize) {
        self.nodes[i].stop.cancel();
        if let Some(task) = self.nodes[i].task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Waits until every live server has installed a view of exactly `members`.
    pub async fn wait_view(&self, members: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in self
            .nodes
            .iter()
            .filter(|n| members.contains(&n.name.as_str()))
        {
            loop {
                let status = status(&node.addr).await;
                if let Some(s) = &status
                    && s.members == members
                    && !s.view_change_in_progress
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} never installed {members:?}: {status:?}",
                    node.name
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn spawn_server(
    cfg: ServerConfig,
    listener: tokio::net::TcpListener,
) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        serve(cfg, vec![BoundListener::from_tcp(listener)], token)
            .await
            .unwrap();
    });
    (stop, task)
}

pub async fn status(addr: &str) -> Option<ServerStatus> {
    let channel = msgc_client::channel(addr, Duration::from_secs(1))
        .await
        .ok()?;
    let reply = AdminClient::new(channel)
        .get_server_view(GetServerViewRequest {})
        .await
        .ok()?;
    Some(reply.into_inner())
}

pub async fn session(addr: &str, name: &str) -> (Session, Events) {
    Session::connect(
        addr,
        Options {
            client_name: name.to_owned(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Reads frames until `done` says so, with a time bound.
pub async fn read_until(events: &mut Events, mut done: impl FnMut(&ServerFrame) -> bool) {
    let deadline = Duration::from_secs(20);
    tokio::time::timeout(deadline, async {
        loop {
            let frame = events.next_frame().await.unwrap().expect("session ended");
            if done(&frame) {
                break;
            }
        }
    })
    .await
    .expect("timed out waiting for events");
}

/// The server binary: this build's, or `MSGC_SERVER_BIN` (e.g. to benchmark
/// another build).
fn server_binary() -> std::path::PathBuf {
    std::env::var_os("MSGC_SERVER_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_msgc-server").into())
}

/// Where server `i` of the cluster on `port` (its first server's) logs:
/// `$MSGC_TEST_LOGS/<port>/s<i+1>.log` if that is set (with `RUST_LOG`
/// choosing the level), else nowhere.
fn server_log(port: u16, i: usize) -> std::process::Stdio {
    match std::env::var_os("MSGC_TEST_LOGS") {
        Some(dir) => {
            let dir = std::path::Path::new(&dir).join(port.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("s{}.log", i + 1));
            std::fs::File::create(path).unwrap().into()
        }
        None => std::process::Stdio::null(),
    }
}

/// Servers s1..sN as real child processes of the built binary, so a test can
/// kill one with SIGKILL mid-stream.
pub struct ProcCluster {
    pub addrs: Vec<String>,
    children: Vec<Option<std::process::Child>>,
    _dir: tempfile::TempDir,
}

impl ProcCluster {
    pub fn start(n: usize) -> Self {
        // As `fast`: 1.5 keepalive intervals (600 ms) of silence drop a link.
        Self::start_with(n, "keepalive_interval = 400ms reconnect_interval = 200ms")
    }

    /// Like [`ProcCluster::start`], with `options` in every `msgc_server { }`.
    pub fn start_with(n: usize, options: &str) -> Self {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..n)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let peers: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("s{} = \"127.0.0.1:{p}\" ", i + 1))
            .collect();
        let mut children = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let path = dir.path().join(format!("s{}.conf", i + 1));
            let mut f = std::fs::File::create(&path).unwrap();
            write!(
                f,
                "msgc_server {{ peers = [ {peers}] {options} }}\n\
                 msgcserver_listener {{ Listen \"127.0.0.1:{port}\" {{ }} }}\n"
            )
            .unwrap();
            let child = std::process::Command::new(server_binary())
                .args([
                    "--config",
                    path.to_str().unwrap(),
                    "--name",
                    &format!("s{}", i + 1),
                ])
                .stderr(server_log(ports[0], i))
                .spawn()
                .unwrap();
            children.push(Some(child));
        }
        Self {
            addrs: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            children,
            _dir: dir,
        }
    }

    /// SIGKILL: the server vanishes without closing anything.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (e.g. "STOP", "CONT") to server `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        let child = self.children[i].as_ref().expect("server is running");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn wait_view(&self, members: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for (i, addr) in self.addrs.iter().enumerate() {
            if !members.contains(&format!("s{}", i + 1).as_str()) {
                continue;
            }
            loop {
                let s = status(addr).await;
                if let Some(s) = &s
                    && s.members == members
                    && !s.view_change_in_progress
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{addr} never installed {members:?}: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl Drop for ProcCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// A TCP proxy in front of one server that a test can cut and heal, to make
/// partitions without touching the servers.
pub struct Proxy {
    pub addr: String,
    blocked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let blocked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, c) = (blocked.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    continue; // dropped: the dialler sees the connection close
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            addr,
            blocked,
            conns,
        }
    }

    /// Cuts every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.blocked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.blocked
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Servers s1..sN whose peers reach each other through [`Proxy`]s (clients
/// connect directly), so a test can cut a server off and heal it.
pub async fn proxied_cluster(n: usize) -> (Cluster, Vec<Proxy>) {
    let mut listeners = Vec::new();
    let mut proxies = Vec::new();
    let mut peers = BTreeMap::new();
    for i in 1..=n {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy::start(listener.local_addr().unwrap().to_string()).await;
        peers.insert(format!("s{i}"), proxy.addr.clone());
        listeners.push(listener);
        proxies.push(proxy);
    }
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let name = format!("s{}", i + 1);
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = fast(ServerConfig::with_peers(&name, peers.clone()));
        let (stop, task) = spawn_server(cfg.clone(), listener);
        nodes.push(Node {
            name,
            addr,
            cfg,
            stop,
            task: Some(task),
        });
    }
    (Cluster { nodes }, proxies)
}
