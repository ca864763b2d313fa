//! Console fan-out over a real bus: three node processes on three in-process
//! msgc servers, n1 and n3 in subcluster `east`, n2 in `west`. Retrieve
//! collects one named reply per node; with a node stopped (SIGSTOP, so it
//! stays in the membership but cannot answer) the deadline gives the other
//! two and names it; a subcluster retrieve reaches only that subcluster; the
//! `console` subcommands print the same through the binary.

mod common;

use std::process::Command;

use common::{BIN, Bus, NodeProc, eventually, free_port, node_conf, wait_serving};
use proto::eccluster::v1::console_client::ConsoleClient;
use proto::eccluster::v1::{ConsoleRequest, ConsoleResponse, ConsoleVerb};

async fn run(node: &NodeProc, request: ConsoleRequest) -> Result<ConsoleResponse, tonic::Status> {
    let channel = msgc_client::channel(&node.addr, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    ConsoleClient::new(channel)
        .run(request)
        .await
        .map(tonic::Response::into_inner)
}

fn request(verb: ConsoleVerb, command: &str) -> ConsoleRequest {
    ConsoleRequest {
        verb: verb as i32,
        command: command.to_owned(),
        deadline_ms: 10_000,
        ..Default::default()
    }
}

fn names(response: &ConsoleResponse) -> Vec<&str> {
    response.replies.iter().map(|r| r.node.as_str()).collect()
}

fn signal(node: &NodeProc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &node.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn start_node(name: &str, server: &str, subcluster: &str) -> NodeProc {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let conf = node_conf(name, &listen, &[server]).replace(
        "cluster {\n",
        &format!("cluster {{\n  subcluster = \"{subcluster}\"\n"),
    );
    NodeProc::start(name, &listen, &conf, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_reaches_every_node_names_the_missing_and_keeps_to_a_subcluster() {
    let bus = Bus::start(3).await;
    let nodes = [
        start_node("n1", &bus.addrs[0], "east"),
        start_node("n2", &bus.addrs[1], "west"),
        start_node("n3", &bus.addrs[2], "east"),
    ];
    for node in &nodes {
        wait_serving(&node.addr, "eccluster.v1.Node").await;
    }
    for node in &nodes {
        eventually(
            &format!("{} to see 3 nodes on ec_console", node.name),
            || async {
                let m = node.membership().await?;
                let on_console = m
                    .nodes
                    .iter()
                    .filter(|n| n.groups.iter().any(|g| g == "ec_console"))
                    .count();
                if on_console == 3 {
                    Ok(())
                } else {
                    Err(format!("{m:?}"))
                }
            },
        )
        .await;
    }
    let [n1, n2, n3] = &nodes;

    // retrieve: three replies, each named, each the node's own answer.
    let all = run(n1, request(ConsoleVerb::Retrieve, "info"))
        .await
        .unwrap();
    assert_eq!(all.group, "ec_console");
    assert_eq!(all.targets.len(), 3, "{all:?}");
    let mut got = names(&all);
    got.sort_unstable();
    assert_eq!(got, ["n1", "n2", "n3"], "{all:?}");
    assert!(all.missing.is_empty(), "{all:?}");
    for reply in &all.replies {
        assert!(reply.ok, "{reply:?}");
        assert!(
            reply.output.contains(&format!("node: {}", reply.node)),
            "{reply:?}"
        );
    }

    // retrieve_node: one node, config get of an option.
    let one = run(
        n1,
        ConsoleRequest {
            node: "n2".into(),
            ..request(ConsoleVerb::RetrieveNode, "config get cluster subcluster")
        },
    )
    .await
    .unwrap();
    assert_eq!(names(&one), ["n2"], "{one:?}");
    assert!(
        one.replies[0]
            .output
            .contains("cluster.subcluster = \"west\""),
        "{one:?}"
    );
    let unknown = run(
        n1,
        ConsoleRequest {
            node: "n9".into(),
            ..request(ConsoleVerb::RetrieveNode, "info")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

    // subcluster retrieve, from a node outside it and from one inside it.
    let east = run(
        n2,
        ConsoleRequest {
            subcluster: "east".into(),
            ..request(ConsoleVerb::Retrieve, "membership")
        },
    )
    .await
    .unwrap();
    assert_eq!(east.group, "ec_sc_east");
    let mut got = names(&east);
    got.sort_unstable();
    assert_eq!(got, ["n1", "n3"], "{east:?}");
    assert!(east.missing.is_empty(), "{east:?}");
    let west = run(
        n3,
        ConsoleRequest {
            subcluster: "west".into(),
            ..request(ConsoleVerb::Retrieve, "spool")
        },
    )
    .await
    .unwrap();
    assert_eq!(names(&west), ["n2"], "{west:?}");

    // The binary: the same verbs as subcommands.
    let console = |args: &[&str]| {
        Command::new(BIN)
            .args(["console", "--node", &n1.addr])
            .args(args)
            .output()
            .unwrap()
    };
    let out = console(&["retrieve", "membership"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3 of 3 nodes replied") && text.contains("== n3 =="),
        "{text}"
    );
    let out = console(&["subcluster", "retrieve", "west", "help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 of 1 nodes replied") && text.contains("== n2 =="),
        "{text}"
    );
    let out = console(&["broadcast", "info"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent over ec_console"));

    // One node stopped: the deadline gives the other two and names it.
    signal(n3, "-STOP");
    let partial = run(
        n1,
        ConsoleRequest {
            deadline_ms: 1500,
            ..request(ConsoleVerb::Retrieve, "info")
        },
    )
    .await
    .unwrap();
    let out = console(&["--deadline", "1.5", "retrieve", "info"]);
    signal(n3, "-CONT");
    let mut got = names(&partial);
    got.sort_unstable();
    assert_eq!(got, ["n1", "n2"], "{partial:?}");
    assert_eq!(partial.missing, ["n3"], "{partial:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 of 3 nodes replied; missing: n3"), "{text}");
}
