//! Fuzz target: any bytes through the whole load path, with invariants checked.
//!
//! * loading never panics (errors are fine);
//! * a successful load prints (`to_source`) to text that loads again to the same tree;
//! * rendering diagnostics, dumping JSON and the typed getters never panic.
#![no_main]

use confparse::Loader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let loader = Loader::with_search_path(Vec::new()).without_includes();
    match loader.load_str("fuzz.conf", &text, None) {
        Err(diags) => {
            let _ = diags.to_string();
        }
        Ok(cfg) => {
            let printed = cfg.to_source();
            let again = match loader.load_str("printed.conf", &printed, None) {
                Ok(c) => c,
                Err(e) => panic!("printed tree does not parse:\n{e}\n---\n{printed}"),
            };
            assert_eq!(printed, again.to_source(), "round trip changed the tree");
            let _ = cfg.to_json();
            for w in cfg.warnings() {
                let _ = w.to_string();
            }
            let mut stack = vec![cfg.root()];
            while let Some(s) = stack.pop() {
                for o in s.options() {
                    let n = o.name();
                    let _ = (s.get_str(n), s.get_int(n), s.get_u64(n), s.get_octal(n));
                    let _ = (
                        s.get_bool(n),
                        s.get_duration(n),
                        s.get_list(n),
                        s.get_dict(n),
                    );
                    if let Err(d) = s.get_int(n) {
                        let _ = d.to_string();
                    }
                }
                stack.extend(s.children());
            }
        }
    }
});
