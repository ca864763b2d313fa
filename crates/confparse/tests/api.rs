//! The library API: statements, merging, typed getters, overrides, the `config` crate
//! format, read-only flags, diagnostics.

mod common;

use std::path::Path;
use std::time::Duration;

use confparse::format::Ecelerity;
use confparse::{
    Config, Diagnostic, Kind, Loader, Location, Override, Schema, ScopeSchema, Value,
    env_overrides_from,
};

fn loader() -> Loader {
    Loader::with_search_path(Vec::new())
}

fn parse(text: &str) -> Config {
    match loader().load_str("t.conf", text, None) {
        Ok(c) => c,
        Err(e) => panic!("should parse:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match loader().load_str("t.conf", text, None) {
        Ok(_) => panic!("should fail: {text}"),
        Err(e) => e.errors().cloned().collect(),
    }
}

#[test]
fn statements_values_and_quoting() {
    let cfg = parse(
        r#"
        a = word
        b = "dq \"x\" \\ \n\t"
        c = 'sq \n'
        d = ( one "two 2" ( nested ) [ k = v ] )
        e = ()
        f = [ mta1.example.com = "10.77.0.219" "quoted key" = 1 nested = ( x y ) ]
        g /var/log/x
        h ( p q )
        path = /var/log/ecelerity/mainlog # comment
        cidr = 10.0.0.0/16/* comment */
        "#,
    );
    let r = cfg.root();
    assert_eq!(r.get_str("a").unwrap().as_deref(), Some("word"));
    assert_eq!(r.get_str("b").unwrap().as_deref(), Some("dq \"x\" \\ \n\t"));
    assert_eq!(r.get_str("c").unwrap().as_deref(), Some("sq \\n"));
    match r.option("d").unwrap().value() {
        Value::List(l) => {
            assert_eq!(l.items.len(), 4);
            assert!(matches!(&l.items[1], Value::Scalar(s) if s.quoted && s.text == "two 2"));
            assert!(matches!(&l.items[2], Value::List(_)));
            assert!(matches!(&l.items[3], Value::Dict(_)));
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(r.get_list("e").unwrap(), Some(vec![]));
    match r.option("f").unwrap().value() {
        Value::Dict(d) => {
            let keys: Vec<&str> = d.entries.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(keys, ["mta1.example.com", "quoted key", "nested"]);
        }
        v => panic!("{v:?}"),
    }
    // A dict holding a list is legal, but get_dict wants scalars: located error.
    let err = r.get_dict("f").unwrap_err();
    assert!(err.message.contains("found a list"), "{}", err.message);
    assert_eq!(r.get_str("g").unwrap().as_deref(), Some("/var/log/x"));
    assert_eq!(
        r.get_list("h").unwrap(),
        Some(vec!["p".to_string(), "q".to_string()])
    );
    assert_eq!(
        r.get_str("path").unwrap().as_deref(),
        Some("/var/log/ecelerity/mainlog")
    );
    assert_eq!(r.get_str("cidr").unwrap().as_deref(), Some("10.0.0.0/16"));
}

#[test]
fn option_without_equals_needs_the_value_on_the_same_line() {
    let errs = errors("a\nb = 1\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .message
            .starts_with("expected `=`, `{` or a value after `a`")
    );
    // ...but a scope's `{` may be on the next line, named or not.
    let cfg = parse("s\n{\n}\nt \"i\"\n{ x 1 }\n");
    assert!(cfg.root().scope("s").is_some());
    let t = cfg.root().named_scope("T", "i").unwrap();
    assert_eq!(t.get_int("x").unwrap(), Some(1));
}

#[test]
fn scopes_merge_and_options_last_wins_with_warning() {
    let cfg = parse(
        "L { Listen a { x = 1 } Listen \"a\" { y = 2 } listen b { } }\nl { LISTEN a { x = 3 } Listen A { } }\n",
    );
    let l = cfg.root().scope("l").unwrap();
    assert_eq!(cfg.root().scopes("L").count(), 1);
    let listens: Vec<_> = l.scopes("listen").collect();
    let inst: Vec<_> = listens.iter().map(|s| s.instance().unwrap()).collect();
    assert_eq!(inst, ["a", "b", "A"], "instances compared exactly");
    assert_eq!(listens[0].get_int("x").unwrap(), Some(3));
    assert_eq!(listens[0].get_int("y").unwrap(), Some(2));
    assert_eq!(cfg.warnings().len(), 1);
    let w = &cfg.warnings()[0];
    assert!(w.message.contains("option `x` is set more than once"));
    assert_eq!(w.location.as_ref().unwrap().line, 2);
    assert!(
        w.help
            .as_deref()
            .unwrap()
            .contains("first set at t.conf:1:16")
    );
}

#[test]
fn several_errors_are_reported_together() {
    let errs =
        errors("a = (\n b = 1 }\n} }\nx = [ k ]\n\"q\" = 1\ninclude \"/nonexistent/x.conf\"\n");
    assert!(errs.len() >= 4, "{errs:#?}");
    let lines: Vec<u32> = errs
        .iter()
        .map(|e| e.location.as_ref().unwrap().line)
        .collect();
    assert!(
        lines.contains(&4) && lines.contains(&5) && lines.contains(&6),
        "{lines:?}"
    );
}

#[test]
fn nesting_limit_is_a_clear_error_not_a_crash() {
    let n = 1_000_000;
    let cases = [
        ("{", format!("x {}", "x { ".repeat(n))),
        ("(", format!("x = {}", "( ".repeat(n))),
        ("[", format!("x = {}", "[ k = ".repeat(n))),
        ("mixed", format!("x = {}", "( [ k = ".repeat(n))),
    ];
    for (what, text) in cases {
        let e = loader().load_str("deep.conf", &text, None).unwrap_err();
        let first = e.errors().next().unwrap();
        assert!(
            first
                .message
                .starts_with("nested too deeply: expected at most 64 levels"),
            "{what}: {}",
            first.message
        );
        assert!(e.len() <= 101, "{what}: {}", e.len());
    }
    // 64 levels are fine.
    let ok = format!("{}{}", "s { ".repeat(63), "} ".repeat(63));
    assert!(loader().load_str("ok.conf", &ok, None).is_ok());
}

#[test]
fn typed_getters_convert_and_locate_errors() {
    let cfg = parse(
        "t {\n b1 = On b2 = DISABLED b3 = yes b4 = 0 bad = maybe\n i = -42 u = 42 o = 0660 o2 = 755 o3 = 0o17 o4 = 089\n d1 = 5 d2 = 250ms d3 = 2m d4 = 1h d5 = 1.5 d6 = 3s d7 = soon\n l = ( a b ) s = word\n}\n",
    );
    let t = cfg.root().scope("t").unwrap();
    assert_eq!(t.get_bool("b1").unwrap(), Some(true));
    assert_eq!(t.get_bool("b2").unwrap(), Some(false));
    assert_eq!(t.get_bool("b3").unwrap(), Some(true));
    assert_eq!(t.get_bool("b4").unwrap(), Some(false));
    let e = t.get_bool("bad").unwrap_err();
    assert_eq!(e.location, Some(Location::new("t.conf", 2, 46)));
    assert!(e.message.starts_with("option `bad` must be a boolean"));
    assert!(e.to_string().contains(" 2 |  b1 = On"), "{e}");
    assert_eq!(t.get_int("i").unwrap(), Some(-42));
    assert!(t.get_u64("i").is_err());
    assert_eq!(t.get_u64("u").unwrap(), Some(42));
    assert_eq!(t.get_octal("o").unwrap(), Some(0o660));
    assert_eq!(t.get_octal("o2").unwrap(), Some(0o755));
    assert_eq!(t.get_octal("o3").unwrap(), Some(0o17));
    assert!(t.get_octal("o4").is_err());
    assert_eq!(t.get_duration("d1").unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(
        t.get_duration("d2").unwrap(),
        Some(Duration::from_millis(250))
    );
    assert_eq!(
        t.get_duration("d3").unwrap(),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        t.get_duration("d4").unwrap(),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(
        t.get_duration("d5").unwrap(),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(t.get_duration("d6").unwrap(), Some(Duration::from_secs(3)));
    assert!(t.get_duration("d7").is_err());
    assert!(t.get_int("l").unwrap_err().message.contains("found a list"));
    assert!(t.get_list("s").is_err());
    assert_eq!(t.get_int("missing").unwrap(), None);
}

#[test]
fn lookup_falls_back_to_enclosing_scopes() {
    let cfg = parse("g = top\nouter { o = 1 inner \"x\" { i = 2 o = 3 } other { } }\n");
    let outer = cfg.root().scope("outer").unwrap();
    let inner = outer.named_scope("inner", "x").unwrap();
    let other = outer.scope("other").unwrap();
    assert_eq!(inner.get_int("o").unwrap(), Some(3));
    assert_eq!(other.get_int("o").unwrap(), Some(1));
    assert_eq!(other.get_str("g").unwrap().as_deref(), Some("top"));
    assert!(other.option("o").is_none());
    assert_eq!(other.lookup("o").unwrap().scope().name(), "outer");
    assert_eq!(inner.parent().unwrap().name(), "outer");
    assert_eq!(inner.path(), ["outer", "inner"]);
}

#[test]
fn schema_checks_kinds_instances_and_unknown_scopes() {
    let schema = Schema::new().scope(
        ScopeSchema::anonymous("svc")
            .option("port", Kind::Int, Some("4809"))
            .option("enable", Kind::Bool, None)
            .child(ScopeSchema::named("Listen").option("enable", Kind::Bool, None))
            .child(ScopeSchema::anonymous("Tls")),
    );
    let mut cfg = parse(
        "svc {\n port = many\n enable = perhaps\n Lisen \"a\" { }\n Listen { }\n Tls \"x\" { }\n prot = 1\n}\nother { whatever = 1 }\n",
    );
    let err = cfg.validate(&schema).unwrap_err();
    let msgs: Vec<String> = err.iter().map(|d| d.message.clone()).collect();
    assert_eq!(msgs.len(), 6, "{msgs:#?}");
    assert!(msgs.contains(&"option `port` must be an integer, found `many`".to_string()));
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("option `enable` must be a boolean"))
    );
    assert!(msgs.contains(&"unknown scope `Lisen` in scope `svc`".to_string()));
    assert!(msgs.contains(&"scope `Listen` needs an instance name, found none".to_string()));
    assert!(msgs.contains(&"scope `Tls` takes no instance name, found \"x\"".to_string()));
    assert!(msgs.contains(&"unknown option `prot` in scope `svc`".to_string()));
    let port = err.iter().find(|d| d.message.contains("`port`")).unwrap();
    assert_eq!(
        port.location,
        Some(Location::new("t.conf", 2, 9)),
        "at the value"
    );
    let lisen = err.iter().find(|d| d.message.contains("Lisen")).unwrap();
    assert_eq!(lisen.help.as_deref(), Some("did you mean `Listen`?"));
    let prot = err.iter().find(|d| d.message.contains("prot")).unwrap();
    assert_eq!(prot.help.as_deref(), Some("did you mean `port`?"));
}

#[test]
fn schema_with_a_bad_default_is_reported() {
    let schema = Schema::new().scope(ScopeSchema::anonymous("s").option("n", Kind::Int, Some("x")));
    let mut cfg = parse("s { }");
    let err = cfg.validate(&schema).unwrap_err();
    assert!(
        err.to_string().contains("option `n` must be an integer"),
        "{err}"
    );
}

#[test]
fn env_overrides_apply_with_origin_locations() {
    let mut cfg = common_msgc();
    let ov = env_overrides_from([
        ("EC_CONF__MSGC_SERVER__PORT", "4810"),
        ("ec_conf__cluster__nodeaddr", "10.0.0.5"),
        ("EC_CONF__MSGC_CLIENT__SERVER", "( a:1 \"b:2\" )"),
        ("EC_CONF__MSGC_SERVER__PEERS", "[ n1 = 10.0.0.1 ]"),
        ("EC_CONF__MSGC_SERVER__DEBUG_LEVEL", "not ( one value"),
        ("UNRELATED", "x"),
        ("EC_CONFX__A", "x"),
    ]);
    let keys: Vec<&str> = ov.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "cluster.nodeaddr",
            "msgc_client.server",
            "msgc_server.debug_level",
            "msgc_server.peers",
            "msgc_server.port"
        ]
    );
    assert_eq!(ov[0].origin, "env EC_CONF__CLUSTER__NODEADDR");
    cfg.apply_overrides(ov).unwrap();
    let r = cfg.root();
    let msgc = r.scope("msgc_server").unwrap();
    assert_eq!(msgc.get_int("port").unwrap(), Some(4810));
    let port = msgc.option("port").unwrap();
    assert_eq!(
        port.location().to_string(),
        "env EC_CONF__MSGC_SERVER__PORT:1:1"
    );
    assert_eq!(
        msgc.get_dict("peers").unwrap().unwrap(),
        vec![("n1".to_string(), "10.0.0.1".to_string())]
    );
    assert_eq!(
        msgc.get_str("debug_level").unwrap().as_deref(),
        Some("not ( one value"),
        "not one value: taken as a plain string"
    );
    // The cluster scope did not exist: created.
    assert_eq!(
        r.scope("cluster")
            .unwrap()
            .get_str("nodeaddr")
            .unwrap()
            .as_deref(),
        Some("10.0.0.5")
    );
    assert_eq!(
        r.scope("msgc_client")
            .unwrap()
            .get_list("server")
            .unwrap()
            .unwrap(),
        vec!["a:1".to_string(), "b:2".to_string()]
    );
    // A bad override value is located at its origin.
    cfg.apply_overrides([Override::new(
        "msgc_server.port",
        "lots",
        "env EC_CONF__MSGC_SERVER__PORT",
    )])
    .unwrap();
    let e = cfg
        .root()
        .scope("msgc_server")
        .unwrap()
        .get_int("port")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("--> env EC_CONF__MSGC_SERVER__PORT:1:1"),
        "{e}"
    );
    // Bad keys are errors.
    let e = cfg
        .apply_overrides([
            Override::new("a..b", "1", "test"),
            Override::new("x y", "1", "test"),
        ])
        .unwrap_err();
    assert_eq!(e.len(), 2);
}

fn common_msgc() -> Config {
    loader()
        .load_file(&common::example("msgc_server.conf"))
        .unwrap()
}

#[test]
fn config_crate_format_layers_file_and_environment() {
    let path = common::example("ecelerity-cluster.conf");
    let env: config::Map<String, String> = [
        ("EC_CONF__MSGC_SERVER__PORT", "4810"),
        ("EC_CONF__CLUSTER__NODEADDR", "10.0.0.5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cfg = config::Config::builder()
        .add_source(config::File::new(path.to_str().unwrap(), Ecelerity))
        .add_source(
            config::Environment::with_prefix("EC_CONF")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env)),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.get_string("msgc_server.port").unwrap(), "4810");
    assert_eq!(cfg.get_string("cluster.nodeaddr").unwrap(), "10.0.0.5");
    // From the file (and its include): untouched values.
    assert_eq!(
        cfg.get_string("msgc_server.keepalive_interval").unwrap(),
        "5"
    );
    assert_eq!(cfg.get_string("cluster.nodename").unwrap(), "node1");
    assert_eq!(cfg.get_int("cluster.topology.10/24.cidrmask").ok(), None);
    let topo = cfg.get_table("cluster.topology").unwrap();
    assert!(topo.contains_key("10.10.0.0/24"));
    let listen = cfg.get_table("eccluster_listener.listen").unwrap();
    assert!(listen.contains_key("*:4802"));
    let server = cfg.get_array("msgc_client.server").unwrap();
    assert_eq!(server[0].clone().into_string().unwrap(), "127.0.0.1:4809");
    let peers = cfg.get_table("msgc_server.peers").unwrap();
    assert_eq!(peers["node2"].clone().into_string().unwrap(), "10.10.0.12");
}

#[test]
fn config_crate_format_reports_errors() {
    let path = common::example("tricky/bad-unterminated.conf");
    let e = config::Config::builder()
        .add_source(config::File::new(path.to_str().unwrap(), Ecelerity))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("unterminated string"), "{e}");
}

#[test]
fn readonly_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ro.conf"), "ro_scope { a = 1 }\n").unwrap();
    std::fs::write(d.join("twice.conf"), "tw = 1\n").unwrap();
    std::fs::write(
        d.join("main.conf"),
        "rw = 1\nreadonly_include \"ro.conf\"\nx { include twice.conf }\ny { include twice.conf }\n",
    )
    .unwrap();
    let cfg = loader().load_file(&d.join("main.conf")).unwrap();
    let r = cfg.root();
    assert!(!r.option("rw").unwrap().readonly());
    let ro = r.scope("ro_scope").unwrap();
    assert!(ro.readonly());
    assert!(ro.option("a").unwrap().readonly());
    // A file included more than once is read-only at every inclusion.
    for s in ["x", "y"] {
        let o = r.scope(s).unwrap().option("tw").unwrap();
        assert!(o.readonly(), "{s}");
        assert!(o.location().file.ends_with("twice.conf"));
    }
    assert!(!r.scope("x").unwrap().readonly());
}

#[test]
fn includes_in_scopes_missing_files_and_search_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("lib")).unwrap();
    std::fs::write(d.join("lib/frag.conf"), "opt = from_lib\n").unwrap();
    let text = "outer { include \"frag.conf\" }\n";
    let e = loader().load_str("main.conf", text, Some(d)).unwrap_err();
    let err = e.errors().next().unwrap();
    assert!(err.message.contains("included file `frag.conf` not found"));
    assert_eq!(err.location, Some(Location::new("main.conf", 1, 9)));
    let l = Loader::with_search_path(vec![d.join("lib")]);
    let cfg = l.load_str("main.conf", text, Some(d)).unwrap();
    assert_eq!(
        cfg.root()
            .scope("outer")
            .unwrap()
            .get_str("opt")
            .unwrap()
            .as_deref(),
        Some("from_lib")
    );
    // The includer's directory wins over the search path.
    std::fs::write(d.join("frag.conf"), "opt = local\n").unwrap();
    let cfg = l.load_str("main.conf", text, Some(d)).unwrap();
    assert_eq!(
        cfg.root()
            .scope("outer")
            .unwrap()
            .get_str("opt")
            .unwrap()
            .as_deref(),
        Some("local")
    );
    // Includes can be disabled for untrusted text.
    let e = l
        .clone()
        .without_includes()
        .load_str("main.conf", text, Some(d))
        .unwrap_err();
    assert!(e.to_string().contains("includes are disabled"));
    // Special files are refused.
    let e = loader()
        .load_str("m.conf", "include \"/dev/null\"\n", None)
        .unwrap_err();
    assert!(e.to_string().contains("expected a regular file"), "{e}");
}

#[test]
fn to_source_round_trips_and_dump_has_locations() {
    let cfg = common_msgc();
    let src = cfg.to_source();
    let again = loader().load_str("again.conf", &src, None).unwrap();
    assert_eq!(again.to_source(), src);
    let j = cfg.to_json();
    assert_eq!(j["items"][0]["name"], "msgc_server");
    assert!(
        j["items"][0]["location"]
            .as_str()
            .unwrap()
            .ends_with("msgc_server.conf:2:1")
    );
}

#[test]
fn load_file_errors() {
    let e = loader()
        .load_file(Path::new("/nonexistent.conf"))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("error: cannot read configuration file")
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bin.conf");
    std::fs::write(&p, b"a = \xff\xfe\n").unwrap();
    let e = loader().load_file(&p).unwrap_err();
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
}

#[test]
fn services_can_make_located_diagnostics() {
    let cfg = common_msgc();
    let peers = cfg
        .root()
        .scope("msgc_server")
        .unwrap()
        .option("peers")
        .unwrap();
    let d = cfg.annotate(
        Diagnostic::error("peer name `Node1` must be lower-case")
            .at(peers.location().clone())
            .with_help("write `node1`"),
    );
    let s = d.to_string();
    assert!(s.contains(" 3 |   peers = [\n"), "{s}");
    assert!(s.contains("   |   ^^^^^\n"), "{s}");
    assert!(s.ends_with("   = help: write `node1`\n"), "{s}");
}

#[test]
fn large_scopes_merge_and_find_like_small_ones() {
    // Past a dozen items a scope is indexed by hash: behaviour must not change.
    let mut text = String::from("big {\n");
    for i in 0..40 {
        text.push_str(&format!(
            "opt{i} = {i}\nsub{i} {{ a = {i} }}\nnamed \"n{i}\" {{ }}\n"
        ));
    }
    for i in (0..40).step_by(7) {
        text.push_str(&format!(
            "OPT{i} = x{i}\nSUB{i} {{ b = {i} }}\nNamed \"n{i}\" {{ c = 1 }}\n"
        ));
    }
    text.push_str("}\n");
    let cfg = parse(&text);
    let big = cfg.root().scope("big").unwrap();
    assert_eq!(big.options().count(), 40);
    assert_eq!(big.children().count(), 80);
    assert_eq!(cfg.warnings().len(), 6);
    assert_eq!(big.get_str("opt14").unwrap().as_deref(), Some("x14"));
    assert_eq!(big.get_str("Opt15").unwrap().as_deref(), Some("15"));
    let sub = big.scope("sub21").unwrap();
    assert_eq!(sub.get_int("a").unwrap(), Some(21));
    assert_eq!(sub.get_int("b").unwrap(), Some(21));
    assert!(
        big.named_scope("NAMED", "n35")
            .unwrap()
            .option("c")
            .is_some()
    );
    assert!(big.named_scope("named", "N35").is_none());
    assert!(big.scope("sub40").is_none());
}

#[test]
fn validation_of_a_huge_bad_file_is_capped_and_fast() {
    let mut text = String::from("svc {\n");
    for i in 0..50_000 {
        text.push_str(&format!("unknown{i} = {i}\n"));
    }
    text.push_str("}\n");
    let mut cfg = parse(&text);
    let schema = Schema::new().scope(ScopeSchema::anonymous("svc").option("port", Kind::Int, None));
    let start = std::time::Instant::now();
    let err = cfg.validate(&schema).unwrap_err();
    assert_eq!(err.len(), 101);
    assert_eq!(err.0[100].message, "too many errors: 49900 more not shown");
    assert!(err.0[99].source_line.as_deref() == Some("unknown99 = 99"));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn value_on_the_next_line_and_missing_values() {
    let cfg = parse("a =\n  spread\nb = 1\n");
    assert_eq!(cfg.root().get_str("a").unwrap().as_deref(), Some("spread"));
    for text in ["a =\nb = 1\n", "a =\nb { }\n", "a =\nb c {\n}\n"] {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{text}: {errs:#?}");
        assert_eq!(
            errs[0].message, "expected a value after `a =`, found the end of the line",
            "{text}"
        );
        assert_eq!(errs[0].location, Some(Location::new("t.conf", 1, 3)));
    }
}

#[test]
fn byte_order_mark_and_crlf_line_endings() {
    let cfg = parse("\u{feff}msgc_server {\r\n  port = 4809\r\n  peers = [ a = \"1\" ]\r\n}\r\n");
    let s = cfg
        .root()
        .scope("msgc_server")
        .expect("BOM is not part of the name");
    assert_eq!(s.name(), "msgc_server");
    assert_eq!(s.get_int("port").unwrap(), Some(4809));
    let e = loader()
        .load_str("crlf.conf", "a = \"open\r\nb = 1\r\n", None)
        .unwrap_err();
    let d = e.errors().next().unwrap();
    assert_eq!(d.location, Some(Location::new("crlf.conf", 1, 5)));
    assert_eq!(d.source_line.as_deref(), Some("a = \"open"));
}

#[test]
fn repeated_overrides_quote_their_latest_text() {
    let mut cfg = parse("s { }");
    let o = |v: &str| Override::new("s.n", v, "env EC_CONF__S__N");
    cfg.apply_overrides([o("first")]).unwrap();
    cfg.apply_overrides([o("second")]).unwrap();
    let e = cfg.root().scope("s").unwrap().get_int("n").unwrap_err();
    assert_eq!(e.source_line.as_deref(), Some("second"));
}
