//! Every sample configuration in testdata/conf-examples gives the outcome its README
//! states (at the parser + schema level).

mod common;

use std::time::Duration;

use common::{EXAMPLES, cluster_listener_schema, example, msgc_server_schema};
use confparse::{Config, Diagnostics, Loader, Severity};

fn load(rel: &str) -> Result<Config, Diagnostics> {
    Loader::with_search_path(Vec::new()).load_file(&example(rel))
}

fn load_ok(rel: &str) -> Config {
    match load(rel) {
        Ok(c) => c,
        Err(e) => panic!("{rel} should load:\n{e}"),
    }
}

fn dict(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn msgc_server_conf_is_valid_with_peers_and_listen() {
    let mut cfg = load_ok("msgc_server.conf");
    cfg.validate(&msgc_server_schema())
        .expect("valid for msgc-server");
    assert!(cfg.warnings().is_empty());
    let s = cfg.root().scope("msgc_server").expect("msgc_server scope");
    assert_eq!(
        s.get_dict("peers").unwrap().unwrap(),
        dict(&[
            ("node1", "10.10.0.11"),
            ("node2", "10.10.0.12"),
            ("manager", "10.10.0.10")
        ])
    );
    assert_eq!(s.get_int("port").unwrap(), Some(4809));
    assert_eq!(
        s.get_duration("keepalive_interval").unwrap(),
        Some(Duration::from_secs(5))
    );
    // Not set in the file: the schema default.
    assert_eq!(
        s.get_duration("idle_timeout").unwrap(),
        Some(Duration::from_secs(30))
    );
    let listener = cfg.root().scope("msgcserver_listener").unwrap();
    let listens: Vec<_> = listener.scopes("Listen").collect();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].instance(), Some(":4809"));
    assert_eq!(listens[0].get_bool("enable").unwrap(), Some(true));
    assert_eq!(listens[0].get_octal("file_mode").unwrap(), Some(0o660));
    let client = cfg.root().scope("msgc_client").unwrap();
    assert_eq!(
        client.get_list("server").unwrap().unwrap(),
        vec!["127.0.0.1:4809".to_string()]
    );
}

#[test]
fn ecelerity_cluster_conf_is_valid_and_includes_msgc_server_conf() {
    let mut cfg = load_ok("ecelerity-cluster.conf");
    // Security and ec_logger are not owned by the schema: accepted, left alone.
    cfg.validate(&cluster_listener_schema())
        .expect("valid for cluster-listener");
    let root = cfg.root();
    let l = root.scope("ECCluster_Listener").unwrap();
    let listens: Vec<_> = l.scopes("listen").collect();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].instance(), Some("*:4802"));
    assert!(root.scope("Security").is_some());
    assert_eq!(
        root.named_scope("ec_logger", "ec_logger_cluster")
            .unwrap()
            .get_str("mainlog")
            .unwrap()
            .as_deref(),
        Some("cluster:///var/log/ecelerity/mainlog.cluster=>master")
    );
    // The include brought msgc_server.conf's scopes in, located in that file.
    let msgc = root.scope("msgc_server").expect("included msgc_server");
    assert!(msgc.location().file.ends_with("msgc_server.conf"));
    assert_eq!(msgc.get_dict("peers").unwrap().unwrap().len(), 3);
    let cluster = root.scope("cluster").unwrap();
    assert_eq!(
        cluster.get_str("nodeaddr").unwrap().as_deref(),
        Some("10.10.0.11")
    );
    assert_eq!(cluster.get_int("heartbeats_per_sec").unwrap(), Some(1));
    assert_eq!(
        cluster.get_dict("logs").unwrap().unwrap()[0],
        (
            "mainlog".to_string(),
            "/var/log/ecelerity/mainlog.cluster".to_string()
        )
    );
    let topo = cluster.named_scope("Topology", "10.10.0.0/24").unwrap();
    assert_eq!(topo.get_int("cidrmask").unwrap(), Some(32));
    assert_eq!(cluster.scopes("Replicate").count(), 2);
}

#[test]
fn ecelerity_cluster_conf_with_a_closed_schema_rejects_unknown_subscopes() {
    // Make sure "accepted" above is due to ownership rules, not a lax validator.
    let schema = confparse::Schema::new().scope(confparse::ScopeSchema::anonymous("cluster"));
    let mut cfg = load_ok("ecelerity-cluster.conf");
    let err = cfg.validate(&schema).unwrap_err();
    let msgs: Vec<&str> = err.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("unknown option `nodename`")));
    assert!(msgs.iter().any(|m| m.contains("unknown scope `Replicate`")));
    assert!(!msgs.iter().any(|m| m.contains("Security")));
}

#[test]
fn case_and_comments_conf_is_valid() {
    let mut cfg = load_ok("tricky/case-and-comments.conf");
    // The file holds both services' scopes.
    cfg.validate(&confparse::momentum::all()).expect("valid");
    let root = cfg.root();
    let l = root
        .scope("ECCluster_Listener")
        .expect("case-insensitive scope");
    assert_eq!(l.name(), "eccluster_listener", "original spelling kept");
    let listens: Vec<_> = l.scopes("Listen").collect();
    assert_eq!(listens.len(), 2);
    assert_eq!(listens[0].name(), "LISTEN");
    assert_eq!(listens[0].instance(), Some("10.10.0.11:4802"));
    assert_eq!(listens[0].get_bool("enable").unwrap(), Some(true));
    assert_eq!(listens[0].get_int("listen_backlog").unwrap(), Some(1024));
    assert_eq!(listens[1].instance(), Some("[::1]:4802"));
    assert_eq!(listens[1].get_bool("enable").unwrap(), Some(false));
    // Schema default from the listener scope.
    assert_eq!(listens[1].get_int("listen_backlog").unwrap(), Some(500));
    // Scope fallback: set in the listener, read from each Listen.
    assert_eq!(
        listens[1].get_bool("disable_nagle_algorithm").unwrap(),
        Some(true)
    );
    let msgc = root.scope("msgc_server").unwrap();
    assert_eq!(
        msgc.get_dict("peers").unwrap().unwrap(),
        dict(&[
            ("alpha.example.com", "192.0.2.1"),
            ("beta.example.com", "192.0.2.2")
        ])
    );
    assert_eq!(
        msgc.get_duration("KEEPALIVE_INTERVAL").unwrap(),
        Some(Duration::from_secs(1))
    );
    let ml = root.scope("msgcserver_listener").unwrap();
    let listen = ml.named_scope("listen", ":4809").unwrap();
    assert_eq!(listen.get_int("tcp_recv_buffer_size").unwrap(), Some(0));
    // Not set anywhere: the listener default (0 = the OS decides; see `momentum`).
    assert_eq!(listen.get_int("tcp_send_buffer_size").unwrap(), Some(0));
}

#[test]
fn include_dir_conf_includes_sorted_and_skips_dot_files() {
    let mut cfg = load_ok("tricky/include-dir.conf");
    cfg.validate(&msgc_server_schema()).expect("valid");
    let root = cfg.root();
    // The main file's msgc_server and conf.d/10-timers.conf's are merged into one.
    assert_eq!(root.scopes("msgc_server").count(), 1);
    let msgc = root.scope("msgc_server").unwrap();
    assert_eq!(
        msgc.get_duration("keepalive_interval").unwrap(),
        Some(Duration::from_secs(2))
    );
    assert!(
        msgc.option("keepalive_interval")
            .unwrap()
            .location()
            .file
            .ends_with("conf.d/10-timers.conf")
    );
    assert_eq!(
        msgc.get_dict("peers").unwrap().unwrap(),
        dict(&[("solo", "127.0.0.1")])
    );
    let listens: Vec<_> = root
        .scope("msgcserver_listener")
        .unwrap()
        .scopes("Listen")
        .collect();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].instance(), Some(":14809"));
    // Sorted order: 10-timers before 20-listen, so msgc_server comes first.
    let order: Vec<&str> = root.children().map(|s| s.name()).collect();
    assert_eq!(order, ["msgc_server", "msgcserver_listener"]);
    // .hidden.conf (which is not even valid) was skipped.
    let dump = cfg.to_json().to_string();
    assert!(!dump.contains(".hidden.conf"));
    assert!(root.scope("this").is_none());
}

#[test]
fn bad_unterminated_reports_line_3_and_the_file() {
    let err = load("tricky/bad-unterminated.conf").unwrap_err();
    let errors: Vec<_> = err.errors().collect();
    assert_eq!(errors.len(), 1, "exactly one error: {err}");
    let loc = errors[0].location.as_ref().unwrap();
    assert_eq!(loc.line, 3);
    assert_eq!(loc.column, 13, "at the opening quote");
    assert!(loc.file.ends_with("tricky/bad-unterminated.conf"));
    assert!(errors[0].message.contains("unterminated string"));
    let rendered = err.to_string();
    assert!(
        rendered.contains("bad-unterminated.conf:3:13"),
        "{rendered}"
    );
    assert!(
        rendered.contains(" 3 |     node1 = \"10.10.0.11"),
        "{rendered}"
    );
}

#[test]
fn bad_unknown_option_is_an_error_with_a_hint() {
    let mut cfg = load_ok("tricky/bad-unknown-option.conf");
    let err = cfg.validate(&cluster_listener_schema()).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let d = &err.0[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(
        d.message,
        "unknown option `listen_backlogg` in scope `Listen`"
    );
    let loc = d.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (3, 5));
    assert_eq!(d.help.as_deref(), Some("did you mean `listen_backlog`?"));
    let expected = format!(
        "error: unknown option `listen_backlogg` in scope `Listen`\n  \
         --> {EXAMPLES}/tricky/bad-unknown-option.conf:3:5\n   \
         |\n \
         3 |     listen_backlogg = 500\n   \
         |     ^^^^^^^^^^^^^^^\n   \
         = help: did you mean `listen_backlog`?\n"
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn bad_uppercase_peer_parses_the_rule_is_the_services() {
    let mut cfg = load_ok("tricky/bad-uppercase-peer.conf");
    cfg.validate(&msgc_server_schema()).expect("schema-valid");
    let peers = cfg
        .root()
        .scope("msgc_server")
        .unwrap()
        .get_dict("peers")
        .unwrap()
        .unwrap();
    assert_eq!(peers[0].0, "Node1", "dictionary keys keep their spelling");
}

#[test]
fn cycle_reports_the_chain() {
    let err = load("tricky/cycle-a.conf").unwrap_err();
    let errors: Vec<_> = err.errors().collect();
    assert_eq!(errors.len(), 1, "{err}");
    let m = &errors[0].message;
    let a = format!("{EXAMPLES}/tricky/cycle-a.conf");
    let b = format!("{EXAMPLES}/tricky/cycle-b.conf");
    assert_eq!(m, &format!("include cycle: {a} -> {b} -> {a}"));
    // Located at the include that closes the cycle.
    let loc = errors[0].location.as_ref().unwrap();
    assert!(loc.file.ends_with("cycle-b.conf"));
    assert_eq!((loc.line, loc.column), (1, 1));
}

/// Every sample file has an expectation here: a new sample makes this test fail until
/// its outcome is written down.
#[test]
fn every_sample_file_is_covered() {
    let covered = [
        "msgc_server.conf",
        "ecelerity-cluster.conf",
        "tricky/case-and-comments.conf",
        "tricky/include-dir.conf",
        "tricky/bad-unterminated.conf",
        "tricky/bad-unknown-option.conf",
        "tricky/bad-uppercase-peer.conf",
        "tricky/cycle-a.conf",
        "tricky/cycle-b.conf",
        "tricky/conf.d/10-timers.conf",
        "tricky/conf.d/20-listen.conf",
        "tricky/conf.d/.hidden.conf",
    ];
    let mut found = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(EXAMPLES)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "conf") {
                let rel = p
                    .strip_prefix(EXAMPLES)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.push(rel);
            }
        }
    }
    for f in &found {
        assert!(covered.contains(&f.as_str()), "no expectation for {f}");
    }
    // cycle-b alone is the same cycle seen from the other side.
    let err = load("tricky/cycle-b.conf").unwrap_err();
    assert!(err.to_string().contains("include cycle"));
    // The conf.d fragments are valid on their own.
    load_ok("tricky/conf.d/10-timers.conf");
    load_ok("tricky/conf.d/20-listen.conf");
    // And the dot-file is indeed invalid (so skipping it matters).
    assert!(load("tricky/conf.d/.hidden.conf").is_err());
}
