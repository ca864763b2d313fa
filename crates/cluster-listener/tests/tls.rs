//! Mutual TLS on the node channel and the node's bus session, with real
//! sockets and certificates from `devcerts`: an mTLS msgc server and two
//! nodes whose listeners, msgc sessions and node-to-node dials run mTLS; the
//! nodes join, see each other and Ping by name (the dialled node's
//! certificate must name it); a plaintext client and a TLS client without a
//! certificate are refused, and the nodes keep answering.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cluster_listener::NodeConfig;
use msgc_server::ServerConfig;
use proto::eccluster::v1::node_client::NodeClient;
use proto::eccluster::v1::{MembershipRequest, PingRequest};
use service_kit::grpc::{Health, check_health_over};
use service_kit::listen::BoundListener;
use service_kit::tls::{
    ClientAuth, ClientTls, ClientTlsFiles, IdentityFiles, ListenerTlsFiles, ServerTls,
};
use tokio_util::sync::CancellationToken;

fn identity(dir: &Path, kind: &str, name: &str) -> IdentityFiles {
    IdentityFiles {
        certificate: dir.join(format!("{kind}/{name}.pem")),
        key: dir.join(format!("{kind}/{name}.key")),
    }
}

fn listener_files(dir: &Path, kind: &str, name: &str) -> ListenerTlsFiles {
    ListenerTlsFiles {
        identity: identity(dir, kind, name),
        ca: Some(dir.join("ca.pem")),
        verify: ClientAuth::Require,
    }
}

async fn tls_listener(files: &ListenerTlsFiles) -> (String, BoundListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let bound = BoundListener::from_tcp(listener).with_tls(ServerTls::load(files).unwrap());
    (addr, bound)
}

/// A node on an mTLS listener, its bus session and dials mTLS too.
async fn node(dir: &Path, name: &str, bus: &str, stop: &CancellationToken) -> String {
    let files = listener_files(dir, "nodes", name);
    let (addr, bound) = tls_listener(&files).await;
    let mut cfg = NodeConfig::new(name, vec![bus.to_owned()]);
    let work = dir.join(format!("work-{name}"));
    cfg.spool_dir = work.join("spool");
    cfg.state_dir = work.join("state");
    cfg.outgoing_dir = work.join("spool/outgoing");
    cfg.msgc.reconnect_interval = Duration::from_millis(200);
    cfg.msgc.connect_timeout = Duration::from_secs(2);
    cfg.dial_tls = files.as_client();
    cfg.msgc.tls = files.as_client();
    let token = stop.clone();
    tokio::spawn(async move {
        cluster_listener::serve(cfg, vec![bound], token)
            .await
            .unwrap()
    });
    addr
}

async fn node_client(
    addr: &str,
    tls: &ClientTls,
) -> Result<NodeClient<tonic::transport::Channel>, String> {
    let channel = msgc_client::channel_over(addr, Some(tls), Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    Ok(NodeClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_ping_over_mtls_and_strangers_are_refused() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let plan = devcerts::Plan {
        servers: vec!["s1".into()],
        nodes: vec!["n1".into(), "n2".into()],
        clients: vec!["ops".into()],
        extra_sans: devcerts::DEFAULT_SANS.map(String::from).to_vec(),
    };
    devcerts::write(dir, &plan).unwrap();
    let stop = CancellationToken::new();

    let bus_files = listener_files(dir, "servers", "s1");
    let (bus, bound) = tls_listener(&bus_files).await;
    let mut bus_cfg = ServerConfig::with_peers("s1", BTreeMap::from([("s1".into(), bus.clone())]));
    bus_cfg.peer_tls = bus_files.as_client();
    let token = stop.clone();
    tokio::spawn(async move {
        msgc_server::serve(bus_cfg, vec![bound], token)
            .await
            .unwrap()
    });
    let n1 = node(dir, "n1", &bus, &stop).await;
    let n2 = node(dir, "n2", &bus, &stop).await;

    let ops = ClientTls::load(&ClientTlsFiles {
        ca: dir.join("ca.pem"),
        identity: Some(identity(dir, "clients", "ops")),
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = async {
            let mut client = node_client(&n1, &ops).await?;
            let members = client
                .membership(MembershipRequest {})
                .await
                .map_err(|s| s.to_string())?
                .into_inner();
            Ok::<_, String>(members.nodes.len())
        }
        .await;
        if seen == Ok(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "n1 never saw n1 and n2: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        check_health_over(&n2, Some(&ops), "eccluster.v1.Node", Duration::from_secs(2))
            .await
            .unwrap(),
        Health::Serving
    );
    let pong = node_client(&n1, &ops)
        .await
        .unwrap()
        .ping(PingRequest { node: "n2".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pong.node, "n2", "{pong:?}");

    // Strangers: plaintext, and TLS without a client certificate.
    let plaintext = msgc_client::channel(&n1, Duration::from_secs(2)).await;
    if let Ok(channel) = plaintext {
        let answer = NodeClient::new(channel)
            .membership(MembershipRequest {})
            .await;
        assert!(
            answer.is_err(),
            "a plaintext client was answered: {answer:?}"
        );
    }
    let anonymous = ClientTls::load(&ClientTlsFiles {
        ca: dir.join("ca.pem"),
        identity: None,
    })
    .unwrap();
    let refused = async {
        let mut client = node_client(&n1, &anonymous).await?;
        client
            .membership(MembershipRequest {})
            .await
            .map_err(|s| s.to_string())
    }
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate was answered"
    );
    println!("no client certificate: {}", refused.unwrap_err());
    // Still answering.
    let pong = node_client(&n2, &ops)
        .await
        .unwrap()
        .ping(PingRequest { node: "n1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pong.node, "n1");
    stop.cancel();
}
