//! Property tests: printing any parsed tree and parsing it again gives the same tree;
//! generated sources parse to exactly the generated model; no input panics; deep
//! nesting is a clear error.

mod common;

use confparse::{Config, Loader};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

fn loader() -> Loader {
    Loader::with_search_path(Vec::new()).without_includes()
}

/// A generated value.
#[derive(Clone, Debug)]
enum GVal {
    Word(String),
    Dq(String),
    Sq(String),
    List(Vec<GVal>),
    Dict(Vec<(String, bool, GVal)>),
}

/// A generated statement.
#[derive(Clone, Debug)]
enum GItem {
    Opt {
        name: String,
        eq: bool,
        value: GVal,
    },
    Scope {
        name: String,
        instance: Option<(String, u8)>,
        items: Vec<GItem>,
    },
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("not a keyword", |n| {
        !n.eq_ignore_ascii_case("include") && !n.eq_ignore_ascii_case("readonly_include")
    })
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.:-]{1,10}",
        "/[a-z]{1,4}/[a-z0-9.]{1,6}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.0\\.0/[0-9]{1,2}",
        "\\*:[0-9]{1,5}",
        "\\[::1\\]:[0-9]{1,4}".prop_map(|s| s.replace(['[', ']'], "")),
    ]
}

fn scalar() -> impl Strategy<Value = GVal> {
    prop_oneof![
        word().prop_map(GVal::Word),
        "[ -~\t\n\u{e9}\u{4e2d}]{0,10}".prop_map(GVal::Dq),
        "[ -&(-~\u{e9}]{0,10}".prop_map(GVal::Sq),
    ]
}

fn value() -> impl Strategy<Value = GVal> {
    scalar().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(GVal::List),
            prop::collection::vec(
                (prop_oneof![word(), "[ -~]{0,6}"], any::<bool>(), inner),
                0..4
            )
            .prop_map(GVal::Dict),
        ]
    })
}

fn dedupe(items: Vec<GItem>) -> Vec<GItem> {
    let mut seen_opts = std::collections::HashSet::new();
    let mut seen_scopes = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| match i {
            GItem::Opt { name, .. } => seen_opts.insert(name.to_ascii_lowercase()),
            GItem::Scope { name, instance, .. } => seen_scopes.insert((
                name.to_ascii_lowercase(),
                instance.as_ref().map(|(i, _)| i.clone()),
            )),
        })
        .collect()
}

fn item() -> impl Strategy<Value = GItem> {
    let opt = (name(), any::<bool>(), value()).prop_map(|(name, eq, value)| GItem::Opt {
        name,
        eq,
        value,
    });
    opt.prop_recursive(5, 64, 6, |inner| {
        (
            name(),
            prop::option::of((prop_oneof![word(), "[ -~]{0,8}"], 0u8..3)),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(name, instance, items)| GItem::Scope {
                name,
                instance,
                items: dedupe(items),
            })
    })
}

fn items() -> impl Strategy<Value = Vec<GItem>> {
    prop::collection::vec(item(), 0..8).prop_map(dedupe)
}

fn dq(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn render_value(v: &GVal, out: &mut String) {
    match v {
        GVal::Word(w) => out.push_str(w),
        GVal::Dq(s) => out.push_str(&dq(s)),
        GVal::Sq(s) => {
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
        GVal::List(items) => {
            out.push('(');
            for (i, v) in items.iter().enumerate() {
                out.push_str(if i % 2 == 0 { " " } else { "\n  " });
                render_value(v, out);
            }
            out.push_str(" )");
        }
        GVal::Dict(entries) => {
            out.push_str("[\n");
            for (k, quoted, v) in entries {
                if *quoted || !is_word(k) {
                    out.push_str(&dq(k));
                } else {
                    out.push_str(k);
                }
                out.push_str(" = ");
                render_value(v, out);
                out.push_str(" /* c */\n");
            }
            out.push(']');
        }
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && !s.contains("/*")
        && s.bytes()
            .all(|b| !b.is_ascii_whitespace() && !b"#\"'={}[]()".contains(&b))
}

fn render(items: &[GItem], out: &mut String) {
    for (i, it) in items.iter().enumerate() {
        match it {
            GItem::Opt { name, eq, value } => {
                out.push_str(name);
                out.push_str(if *eq { " = " } else { " " });
                render_value(value, out);
            }
            GItem::Scope {
                name,
                instance,
                items,
            } => {
                out.push_str(name);
                match instance {
                    Some((inst, 0)) if is_word(inst) => {
                        out.push(' ');
                        out.push_str(inst);
                    }
                    Some((inst, 1)) if !inst.contains('\'') => {
                        out.push_str(" '");
                        out.push_str(inst);
                        out.push('\'');
                    }
                    Some((inst, _)) => {
                        out.push(' ');
                        out.push_str(&dq(inst));
                    }
                    None => {}
                }
                out.push_str(if i % 2 == 0 { " {\n" } else { "\n{ " });
                render(items, out);
                out.push('}');
            }
        }
        out.push_str(match i % 3 {
            0 => "\n",
            1 => " # comment { ( \" \n",
            _ => " /* a\n comment */ ",
        });
    }
}

fn model_value(v: &GVal) -> Json {
    match v {
        GVal::Word(w) => json!({"scalar": w, "quoted": false}),
        GVal::Dq(s) | GVal::Sq(s) => json!({"scalar": s, "quoted": true}),
        GVal::List(items) => json!({"list": items.iter().map(model_value).collect::<Vec<_>>()}),
        GVal::Dict(entries) => json!({"dict": entries
            .iter()
            .map(|(k, _, v)| json!({"key": k, "value": model_value(v)}))
            .collect::<Vec<_>>()}),
    }
}

fn model(name: &str, instance: Option<&str>, items: &[GItem]) -> Json {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), json!("scope"));
    m.insert("name".into(), json!(name));
    if let Some(i) = instance {
        m.insert("instance".into(), json!(i));
    }
    let items: Vec<Json> = items
        .iter()
        .map(|it| match it {
            GItem::Opt { name, value, .. } => {
                json!({"kind": "option", "name": name, "value": model_value(value)})
            }
            GItem::Scope {
                name,
                instance,
                items,
            } => model(name, instance.as_ref().map(|(i, _)| i.as_str()), items),
        })
        .collect();
    m.insert("items".into(), Json::Array(items));
    Json::Object(m)
}

/// The dump without locations and read-only flags.
fn shape(cfg: &Config) -> Json {
    fn strip(v: &mut Json) {
        match v {
            Json::Object(m) => {
                m.remove("location");
                m.remove("readonly");
                m.values_mut().for_each(strip);
            }
            Json::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut j = cfg.to_json();
    strip(&mut j);
    j
}

fn load(text: &str) -> Config {
    match loader().load_str("gen.conf", text, None) {
        Ok(c) => c,
        Err(e) => panic!("should parse:\n{e}\n---\n{text}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Generated sources parse to exactly the model, and printing + reparsing gives
    /// the same tree.
    #[test]
    fn print_parse_round_trip(items in items()) {
        let mut text = String::new();
        render(&items, &mut text);
        let cfg = load(&text);
        prop_assert_eq!(shape(&cfg), model("", None, &items), "source:\n{}", text);
        let printed = cfg.to_source();
        let again = load(&printed);
        prop_assert_eq!(shape(&again), shape(&cfg), "printed:\n{}", printed);
        prop_assert_eq!(again.to_source(), printed);
    }

    /// Random bytes never panic; failures are located errors.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = loader().load_str("rand.conf", &text, None) {
            prop_assert!(e.has_errors());
            let _ = e.to_string();
        }
    }

    /// Token soup (structurally interesting input) never panics, and anything that
    /// parses round-trips.
    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(
        prop_oneof![
            Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"), Just("="),
            Just("a"), Just("B"), Just("\"s"), Just("\"q\""), Just("'x'"), Just("#c\n"),
            Just("/*"), Just("*/"), Just("\n"), Just(" "), Just("include"), Just("\\"),
        ], 0..80)) {
        let text: String = toks.concat();
        if let Ok(cfg) = loader().load_str("soup.conf", &text, None) {
            let printed = cfg.to_source();
            let again = load(&printed);
            prop_assert_eq!(shape(&again), shape(&cfg));
        }
    }

    /// Every prefix of a valid generated file loads or fails cleanly.
    #[test]
    fn truncated_files_never_panic(items in items(), cut in any::<prop::sample::Index>()) {
        let mut text = String::new();
        render(&items, &mut text);
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let _ = loader().load_str("cut.conf", &text[..at], None).map(|c| c.to_source());
    }

    /// Nesting deeper than the limit is one clear error, whatever the bracket mix.
    #[test]
    fn deep_nesting_is_a_clear_error(kinds in prop::collection::vec(0u8..3, 65..3000)) {
        // Scopes first, then an option whose value nests lists and dictionaries.
        let scopes = kinds.iter().filter(|k| **k == 0).count();
        let mut text = "s { ".repeat(scopes);
        text.push_str("x = ");
        for k in kinds.iter().filter(|k| **k != 0) {
            text.push_str(if *k == 1 { "( " } else { "[ k = " });
        }
        let e = loader().load_str("deep.conf", &text, None).unwrap_err();
        let first = e.errors().next().unwrap();
        prop_assert!(first.message.contains("nested too deeply"), "{}", first.message);
    }
}

/// Truncating the sample configurations at every byte never panics.
#[test]
fn truncated_samples_never_panic() {
    for f in [
        "msgc_server.conf",
        "ecelerity-cluster.conf",
        "tricky/case-and-comments.conf",
        "tricky/bad-unterminated.conf",
    ] {
        let text = std::fs::read_to_string(common::example(f)).unwrap();
        for at in 0..=text.len() {
            if text.is_char_boundary(at) {
                let _ = loader().load_str(f, &text[..at], None);
            }
        }
    }
}

/// 100,000 unclosed `{` (and `(`): a clear error, no stack overflow.
#[test]
fn hundred_thousand_braces() {
    for text in [
        "a {".repeat(100_000),
        format!("a = {}", "(".repeat(100_000)),
        "{".repeat(100_000),
    ] {
        let e = loader().load_str("deep.conf", &text, None).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("nested too deeply")
                || s.contains("expected an option, a scope or an include, found `{`"),
            "{}",
            &s[..s.len().min(400)]
        );
    }
}
