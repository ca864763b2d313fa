//! Shared test helpers: paths to the sample configs and the schemas of the two services
//! as the reference document describes them.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

/// The directory holding the sample configurations.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/conf-examples");

/// A sample configuration by relative path.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(EXAMPLES).join(rel)
}

pub use confparse::momentum::{cluster_listener_schema, msgc_server_schema};
