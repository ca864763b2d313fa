//! Fuzz target: environment-style overrides (key and value text from the input)
//! applied to a loaded configuration, then printed and reloaded.
//!
//! Input: `NAME=VALUE` lines, as an environment would hold them.
#![no_main]

use confparse::{Loader, env_overrides_from};
use libfuzzer_sys::fuzz_target;

const BASE: &str = "msgc_server { port = 4809 peers = [ a = 1 ] }\ncluster { }\n";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let loader = Loader::with_search_path(Vec::new()).without_includes();
    let Ok(mut cfg) = loader.load_str("base.conf", BASE, None) else {
        panic!("base config must load");
    };
    let overrides = env_overrides_from(vars);
    let _ = cfg.apply_overrides(overrides);
    let _ = confparse::parse_value("fuzz", &text);
    let printed = cfg.to_source();
    match loader.load_str("printed.conf", &printed, None) {
        Ok(again) => assert_eq!(again.to_source(), printed),
        Err(e) => panic!("printed config does not parse:\n{e}\n---\n{printed}"),
    }
    let _ = cfg.to_json();
    for s in cfg.root().children() {
        for o in s.options() {
            let _ = (
                s.get_int(o.name()),
                s.get_dict(o.name()),
                s.get_list(o.name()),
            );
        }
    }
});
