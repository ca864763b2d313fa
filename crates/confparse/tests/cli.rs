//! The `confparse` binary: exit codes, messages, JSON dump with locations.

mod common;

use std::process::{Command, Output};

use common::example;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confparse"))
        .args(args)
        .env_remove("EC_CONF_SEARCH_PATH")
        .output()
        .expect("run confparse")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_valid_file_exits_0() {
    let f = example("ecelerity-cluster.conf");
    let out = run(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Configuration valid\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn check_unterminated_exits_1_with_rendered_error() {
    let f = example("tricky/bad-unterminated.conf");
    let out = run(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.starts_with("error: unterminated string"), "{err}");
    assert!(err.contains("bad-unterminated.conf:3:13"), "{err}");
    assert!(err.contains(" 3 |     node1 = \"10.10.0.11"), "{err}");
    assert!(err.contains("   |             ^\n"), "{err}");
}

#[test]
fn check_cycle_exits_1_naming_the_chain() {
    let f = example("tricky/cycle-a.conf");
    let out = run(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("include cycle:"), "{err}");
    assert!(err.contains("cycle-a.conf -> "), "{err}");
    assert!(err.contains("cycle-b.conf -> "), "{err}");
}

#[test]
fn check_reports_several_errors_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("many.conf");
    std::fs::write(
        &p,
        "a = 1\na = 2\nb {\n  c = \n  d = (\n}\ninclude \"nope.conf\"\n",
    )
    .unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("expected a value after `c =`"), "{err}");
    assert!(err.contains("unclosed `(`"), "{err}");
    assert!(err.contains("included file `nope.conf` not found"), "{err}");
    assert!(
        err.contains("warning: option `a` is set more than once"),
        "{err}"
    );
    assert!(err.contains("error: 3 errors"), "{err}");
}

#[test]
fn check_warnings_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("dup.conf");
    std::fs::write(&p, "x { a = 1 }\nx { a = 2 }\n").unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "Configuration valid\n");
    assert!(text(&out.stderr).contains("warning: option `a` is set more than once in scope `x`"));
}

#[test]
fn check_missing_file_exits_1() {
    let out = run(&["check", "/nonexistent/ecelerity.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read configuration file"));
}

#[test]
fn search_path_option_resolves_includes() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::write(lib.join("common.conf"), "shared { k = v }\n").unwrap();
    let main = dir.path().join("main");
    std::fs::create_dir(&main).unwrap();
    let p = main.join("node.conf");
    std::fs::write(&p, "include \"common.conf\"\n").unwrap();
    let out = run(&["check", p.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not found without a search path"
    );
    let out = run(&[
        "--search-path",
        lib.to_str().unwrap(),
        "check",
        p.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The environment variable works too.
    let out = Command::new(env!("CARGO_BIN_EXE_confparse"))
        .args(["check", p.to_str().unwrap()])
        .env(
            "EC_CONF_SEARCH_PATH",
            format!("/nonexistent:{}", lib.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn dump_prints_resolved_tree_with_locations() {
    let f = example("ecelerity-cluster.conf");
    let out = run(&["dump", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["kind"], "scope");
    let items = v["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    // Includes expanded: msgc_server.conf's scopes follow the node file's.
    assert_eq!(
        names,
        [
            "Security",
            "ec_logger",
            "ECCluster_Listener",
            "cluster",
            "msgc_server",
            "msgcserver_listener",
            "msgc_client"
        ]
    );
    let listen = &items[2]["items"][0];
    assert_eq!(listen["instance"], "*:4802");
    let loc = listen["location"].as_str().unwrap();
    assert!(loc.ends_with("ecelerity-cluster.conf:14:3"), "{loc}");
    let port = items[4]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "port")
        .unwrap();
    assert!(
        port["location"]
            .as_str()
            .unwrap()
            .ends_with("msgc_server.conf:8:3")
    );
    assert_eq!(port["value"]["scalar"], "4809");
    assert_eq!(port["value"]["quoted"], false);
    assert!(
        port["value"]["location"]
            .as_str()
            .unwrap()
            .ends_with("msgc_server.conf:8:10")
    );
    // Every node has a location.
    let mut stack = vec![&v];
    let mut n = 0;
    while let Some(node) = stack.pop() {
        assert!(node["location"].is_string(), "{node}");
        n += 1;
        if let Some(items) = node["items"].as_array() {
            stack.extend(items);
        }
    }
    assert!(n > 20);
}

#[test]
fn dump_of_bad_file_exits_1() {
    let f = example("tricky/bad-unterminated.conf");
    let out = run(&["dump", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_with_schema_reports_unknown_options() {
    let f = example("tricky/bad-unknown-option.conf");
    let out = run(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "syntax alone is fine");
    let out = run(&["check", "--schema", "cluster-listener", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: unknown option `listen_backlogg` in scope `Listen`"),
        "{err}"
    );
    assert!(err.contains("bad-unknown-option.conf:3:5"), "{err}");
    assert!(
        err.contains("= help: did you mean `listen_backlog`?"),
        "{err}"
    );
    let ok = example("ecelerity-cluster.conf");
    let out = run(&[
        "--schema",
        "cluster-listener",
        "check",
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["check", "--schema", "nope", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown schema `nope`"));
}
