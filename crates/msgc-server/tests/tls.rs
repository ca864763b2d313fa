//! Mutual TLS on the bus, with real sockets and certificates from
//! `devcerts`: three servers whose listeners and peer links run mTLS form one
//! view and deliver; strangers are refused while the cluster keeps working:
//! a plaintext client, a TLS client without a certificate, one with a
//! certificate from another CA, and a peer link whose certificate names
//! another peer than its hello claims.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use msgc_client::{ClientTls, Options, Session};
use msgc_server::{ServerConfig, serve};
use proto::msgc::v1::admin_client::AdminClient;
use proto::msgc::v1::mesh_client::MeshClient;
use proto::msgc::v1::{
    GetServerViewRequest, PeerFrame, PeerHello, PeerMessage, ServerStatus, event, peer_message,
};
use service_kit::listen::BoundListener;
use service_kit::tls::{ClientAuth, ClientTlsFiles, IdentityFiles, ListenerTlsFiles, ServerTls};
use tokio_util::sync::CancellationToken;

const SERVERS: [&str; 3] = ["a", "b", "c"];

/// A CA with certificates for a, b, c and a client, and a second CA
/// (`other/`) with a client certificate the cluster must not trust.
fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sans: Vec<String> = devcerts::DEFAULT_SANS.map(String::from).to_vec();
    let plan = devcerts::Plan {
        servers: SERVERS.map(String::from).to_vec(),
        nodes: vec!["node1".into()],
        clients: vec!["client".into()],
        extra_sans: sans.clone(),
    };
    devcerts::write(dir.path(), &plan).unwrap();
    let stranger = devcerts::Plan {
        clients: vec!["client".into()],
        extra_sans: sans,
        ..Default::default()
    };
    devcerts::write(&dir.path().join("other"), &stranger).unwrap();
    dir
}

fn identity(dir: &Path, kind: &str, name: &str) -> IdentityFiles {
    IdentityFiles {
        certificate: dir.join(format!("{kind}/{name}.pem")),
        key: dir.join(format!("{kind}/{name}.key")),
    }
}

fn client(dir: &Path, identity: Option<IdentityFiles>) -> ClientTls {
    ClientTls::load(&ClientTlsFiles {
        ca: dir.join("ca.pem"),
        identity,
    })
    .unwrap()
}

/// The three servers, mTLS on their listeners and links.
async fn start(pki: &Path) -> (BTreeMap<String, String>, Vec<CancellationToken>) {
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for name in SERVERS {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.insert(name.to_owned(), listener.local_addr().unwrap().to_string());
        listeners.push(listener);
    }
    let mut stops = Vec::new();
    for (name, listener) in SERVERS.into_iter().zip(listeners) {
        let files = ListenerTlsFiles {
            identity: identity(pki, "servers", name),
            ca: Some(pki.join("ca.pem")),
            verify: ClientAuth::Require,
        };
        let mut cfg = ServerConfig::with_peers(name, peers.clone());
        cfg.keepalive_interval = Duration::from_millis(400);
        cfg.reconnect_interval = Duration::from_millis(200);
        cfg.connect_timeout = Duration::from_secs(2);
        cfg.peer_tls = files.as_client();
        let bound = BoundListener::from_tcp(listener).with_tls(ServerTls::load(&files).unwrap());
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move { serve(cfg, vec![bound], token).await.unwrap() });
        stops.push(stop);
    }
    (peers, stops)
}

async fn status(addr: &str, tls: &ClientTls) -> Result<ServerStatus, String> {
    let channel = msgc_client::channel_over(addr, Some(tls), Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    AdminClient::new(channel)
        .get_server_view(GetServerViewRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("{s:?}"))
}

async fn wait_view(peers: &BTreeMap<String, String>, tls: &ClientTls) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in peers.values() {
        loop {
            let status = status(addr, tls).await;
            if matches!(&status, Ok(s) if s.members == SERVERS && !s.view_change_in_progress) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr}: no view of a, b, c: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Publishes through `from` and waits for the delivery on a subscriber at `to`.
async fn delivers(from: &str, to: &str, tls: &ClientTls, payload: &'static [u8]) {
    // No client names: under TLS a session may only claim a name its
    // certificate names (see `sessions_claim_only_certified_names`).
    let open = |addr: String, _name: &str| {
        let options = Options::default();
        let tls = tls.clone();
        async move {
            let channel = msgc_client::channel_over(&addr, Some(&tls), Duration::from_secs(5))
                .await
                .unwrap();
            Session::open(channel, options).await.unwrap()
        }
    };
    let (sub, mut events) = open(to.to_owned(), "sub").await;
    sub.join("g", "").await.unwrap();
    let (publisher, _pub_events) = open(from.to_owned(), "pub").await;
    publisher.join("g", "").await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            publisher.publish("g", payload).await.unwrap();
            let frame = tokio::time::timeout(Duration::from_millis(500), events.next_frame()).await;
            let Ok(frame) = frame else { continue };
            let frame = frame.unwrap().expect("session ended");
            if frame.events.iter().any(
                |e| matches!(&e.kind, Some(event::Kind::Delivery(d)) if &d.payload[..] == payload),
            ) {
                return;
            }
        }
    })
    .await
    .expect("no delivery over TLS");
}

/// A connection (and one Admin call) that must fail; returns why.
async fn refused(addr: &str, tls: Option<&ClientTls>) -> String {
    let outcome = async {
        let channel = msgc_client::channel_over(addr, tls, Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string())?;
        AdminClient::new(channel)
            .get_server_view(GetServerViewRequest {})
            .await
            .map_err(|s| format!("{s:?}"))
    };
    match outcome.await {
        Ok(status) => panic!("{addr} answered a stranger: {status:?}"),
        Err(why) => why,
    }
}

/// Opens `Mesh/Link` to `addr` with `tls` and a hello claiming `claimed`.
async fn link_as(addr: &str, tls: &ClientTls, claimed: &str, digest: String) -> tonic::Status {
    let channel = msgc_client::channel_over(addr, Some(tls), Duration::from_secs(2))
        .await
        .unwrap();
    let hello = PeerFrame {
        messages: vec![PeerMessage {
            kind: Some(peer_message::Kind::Hello(PeerHello {
                name: claimed.to_owned(),
                cluster_digest: digest,
                incarnation: 7,
            })),
        }],
    };
    MeshClient::new(channel)
        .link(futures::stream::iter([hello]))
        .await
        .expect_err("a peer link with another peer's certificate was accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_cluster_forms_delivers_and_refuses_strangers() {
    let pki = pki();
    let dir = pki.path();
    let (peers, stops) = start(dir).await;
    let client_tls = client(dir, Some(identity(dir, "clients", "client")));
    wait_view(&peers, &client_tls).await;
    delivers(&peers["c"], &peers["a"], &client_tls, b"over mtls").await;

    let b = &peers["b"];
    let why = refused(b, None).await;
    println!("plaintext client: {why}");
    let why = refused(b, Some(&client(dir, None))).await;
    println!("no client certificate: {why}");
    let other = dir.join("other");
    let stranger = client(dir, Some(identity(&other, "clients", "client")));
    let why = refused(b, Some(&stranger)).await;
    println!("certificate from another CA: {why}");

    // A holder of c's certificate claims to be a on b's mesh.
    let digest = ServerConfig::with_peers("a", peers.clone()).cluster_digest();
    let as_c = client(dir, Some(identity(dir, "servers", "c"))).for_server("b");
    let status = link_as(b, &as_c, "a", digest.clone()).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("\"a\"")
            && status
                .message()
                .contains("certificate does not name that peer"),
        "{status:?}"
    );
    // A client certificate (no peer name in it) is refused the same way.
    let status = link_as(b, &client_tls.for_server("b"), "a", digest).await;
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // The cluster kept working through all of it.
    wait_view(&peers, &client_tls).await;
    delivers(&peers["a"], &peers["b"], &client_tls, b"still here").await;
    for stop in stops {
        stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialled_server_whose_certificate_names_another_peer_is_not_linked() {
    // b's listener presents c's certificate: a, dialling b, must refuse it
    // (the dialler checks the name too), so a and b never link.
    let pki = pki();
    let dir = pki.path();
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for name in ["a", "b"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        peers.insert(name.to_owned(), listener.local_addr().unwrap().to_string());
        listeners.push(listener);
    }
    let mut stops = Vec::new();
    for ((name, cert), listener) in [("a", "a"), ("b", "c")].into_iter().zip(listeners) {
        let files = ListenerTlsFiles {
            identity: identity(dir, "servers", cert),
            ca: Some(dir.join("ca.pem")),
            verify: ClientAuth::Require,
        };
        let mut cfg = ServerConfig::with_peers(name, peers.clone());
        cfg.reconnect_interval = Duration::from_millis(100);
        cfg.connect_timeout = Duration::from_secs(2);
        cfg.peer_tls = files.as_client();
        let bound = BoundListener::from_tcp(listener).with_tls(ServerTls::load(&files).unwrap());
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move { serve(cfg, vec![bound], token).await.unwrap() });
        stops.push(stop);
    }
    let client_tls = client(dir, Some(identity(dir, "clients", "client")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = status(&peers["a"], &client_tls).await.unwrap();
    assert_eq!(status.members, ["a"], "{status:?}");
    for stop in stops {
        stop.cancel();
    }
}

/// Opens a session on `addr` with `tls` and `options`, joins `group`, and
/// returns the status the server ended it with, if it did.
async fn join_as(
    addr: &str,
    tls: &ClientTls,
    options: Options,
    group: &str,
) -> Option<tonic::Status> {
    let channel = msgc_client::channel_over(addr, Some(tls), Duration::from_secs(5))
        .await
        .unwrap();
    let (session, mut events) = match Session::open(channel, options).await {
        Ok(opened) => opened,
        Err(msgc_client::ClientError::Status(status)) => return Some(status),
        Err(e) => panic!("{e}"),
    };
    session.join(group, "").await.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), events.next_frame()).await {
            Ok(Ok(Some(frame))) => {
                let joined = frame
                    .events
                    .iter()
                    .any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.group == group));
                if joined {
                    return None;
                }
            }
            Ok(Err(msgc_client::ClientError::Status(status))) => return Some(status),
            Ok(Err(e)) => panic!("{e}"),
            Ok(Ok(None)) => return None,
            Err(_) => {}
        }
    }
    panic!("{group}: neither joined nor refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_claim_only_certified_names() {
    let pki = pki();
    let dir = pki.path();
    let (peers, stops) = start(dir).await;
    let client_tls = client(dir, Some(identity(dir, "clients", "client")));
    let node_tls = client(dir, Some(identity(dir, "nodes", "node1")));
    wait_view(&peers, &client_tls).await;
    let a = &peers["a"];
    let named = |name: &str| Options {
        client_name: name.to_owned(),
        ..Default::default()
    };
    // The client's certificate does not name node1: it cannot speak as it.
    let status = join_as(a, &client_tls, named("node1"), "g")
        .await
        .expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("\"node1\""), "{status:?}");
    // Nor advertise a node record for it.
    let record = Options {
        node: Some(proto::msgc::v1::NodeRecord {
            node_name: "node1".into(),
            listener_address: "203.0.113.9:4802".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let status = join_as(a, &client_tls, record, "g").await.expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    // Without a certified name, the cluster's own groups are closed...
    let status = join_as(a, &client_tls, Options::default(), "ec_cluster")
        .await
        .expect("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("ec_cluster"), "{status:?}");
    // ...and other groups are open.
    assert!(
        join_as(a, &client_tls, Options::default(), "g")
            .await
            .is_none()
    );
    // Its own name is fine, and so is node1 with node1's certificate.
    assert!(
        join_as(a, &client_tls, named("client"), "g")
            .await
            .is_none()
    );
    assert!(
        join_as(a, &node_tls, named("node1"), "ec_cluster")
            .await
            .is_none()
    );
    for stop in stops {
        stop.cancel();
    }
}
