//! Three msgc servers (in process, on loopback) and three cluster-listener
//! nodes as real child processes, each pointed at a different server: the
//! nodes find each other through the bus, ping each other directly by name,
//! and a killed node leaves every other node's membership (the `ec_cluster`
//! leader moving with it).

mod common;

use std::collections::BTreeMap;

use common::{Bus, NodeProc, eventually, free_port, node_conf, wait_serving};
use proto::eccluster::v1::{InfoRequest, MembershipResponse, PingRequest};

/// name -> (address, msgc server) as a membership lists them.
fn table(m: &MembershipResponse) -> BTreeMap<String, (String, String)> {
    m.nodes
        .iter()
        .map(|n| {
            (
                n.node_name.clone(),
                (n.address.clone(), n.msgc_server.clone()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_three_servers_find_ping_and_lose_each_other() {
    let bus = Bus::start(3).await;
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let dead = format!("127.0.0.1:{}", free_port());

    // n1: a plain Listen on 127.0.0.1 (nodeaddr from the Listen).
    let n1 = NodeProc::simple("n1", p1, &[&bus.addrs[0]]);
    // n2: a wildcard Listen, nodeaddr from the environment (as k8s sets the pod IP).
    let n2 = NodeProc::start(
        "n2",
        &format!("127.0.0.1:{p2}"),
        &node_conf("n2", &format!("*:{p2}"), &[&bus.addrs[1]]),
        &[("EC_CONF__CLUSTER__NODEADDR", "127.0.0.2")],
    );
    // n3: its first msgc server is dead; it moves on to the next one.
    let n3 = NodeProc::simple("n3", p3, &[&dead, &bus.addrs[2]]);
    let mut nodes = vec![n1, n2, n3];

    let want: BTreeMap<String, (String, String)> = [
        ("n1", format!("127.0.0.1:{p1}"), "s1"),
        ("n2", format!("127.0.0.2:{p2}"), "s2"),
        ("n3", format!("127.0.0.1:{p3}"), "s3"),
    ]
    .into_iter()
    .map(|(n, a, s)| (n.to_owned(), (a, s.to_owned())))
    .collect();

    for node in &nodes {
        wait_serving(&node.addr, "eccluster.v1.Node").await;
    }
    // Every node lists all three, with the addresses they advertise, and all
    // agree on one leader.
    let mut leaders = Vec::new();
    for node in &nodes {
        let m = eventually(&format!("{} to list n1, n2, n3", node.name), || async {
            let m = node.membership().await?;
            if table(&m) == want {
                Ok(m)
            } else {
                Err(format!("{m:?}\n{}", node.stderr()))
            }
        })
        .await;
        assert_eq!(m.cluster_group, "ec_cluster");
        assert!(
            m.nodes[0].is_leader && m.nodes.iter().skip(1).all(|n| !n.is_leader),
            "{m:?}"
        );
        assert_eq!(m.leader, m.nodes[0].node_name);
        let me = m.nodes.iter().find(|n| n.node_name == node.name).unwrap();
        assert_eq!(
            me.groups,
            ["ec_cluster", "ec_console", "ec_sc_default"],
            "{m:?}"
        );
        assert_eq!(
            me.private_name,
            format!("#{}#{}", node.name, want[&node.name].1)
        );
        leaders.push(m.leader);
    }
    assert!(
        leaders.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree on the leader: {leaders:?}"
    );

    // Every node pings every node (itself included) by name, directly.
    for from in &nodes {
        let mut client = from.client().await;
        for to in &nodes {
            let pong = client
                .ping(PingRequest {
                    node: to.name.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("{} -> {}: {e:?}", from.name, to.name))
                .into_inner();
            assert_eq!(pong.node, to.name);
            assert_eq!(pong.address, want[&to.name].0);
        }
    }

    // Kill the leader: it leaves every other node's membership and the
    // leadership moves to a survivor that all survivors agree on.
    let leader = leaders[0].clone();
    let index = nodes.iter().position(|n| n.name == leader).unwrap();
    let mut killed = nodes.remove(index);
    killed.kill();
    let mut new_leaders = Vec::new();
    for node in &nodes {
        let m = eventually(&format!("{} to drop {leader}", node.name), || async {
            let m = node.membership().await?;
            let names: Vec<&str> = m.nodes.iter().map(|n| n.node_name.as_str()).collect();
            if names.len() == 2 && !names.contains(&leader.as_str()) {
                Ok(m)
            } else {
                Err(format!("{m:?}"))
            }
        })
        .await;
        assert_ne!(m.leader, leader);
        let info = node
            .client()
            .await
            .info(InfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.cluster_leader, m.leader);
        new_leaders.push(m.leader);
    }
    assert_eq!(
        new_leaders[0], new_leaders[1],
        "survivors disagree on the new leader"
    );

    // The killed node is no longer a ping target; the survivors still are.
    let mut client = nodes[0].client().await;
    let gone = client
        .ping(PingRequest {
            node: leader.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    let pong = client
        .ping(PingRequest {
            node: nodes[1].name.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pong.node, nodes[1].name);

    // Kill the survivor that does not lead: the leader stays where it is.
    let new_leader = new_leaders[0].clone();
    let index = nodes.iter().position(|n| n.name != new_leader).unwrap();
    let mut killed = nodes.remove(index);
    killed.kill();
    let last = &nodes[0];
    let m = eventually(&format!("{} to be alone", last.name), || async {
        let m = last.membership().await?;
        if m.nodes.len() == 1 {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert_eq!(m.nodes[0].node_name, new_leader);
    assert_eq!(m.leader, new_leader);
}
