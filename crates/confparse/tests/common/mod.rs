//! Shared test helpers: paths to the sample configs and the schemas of the two services
//! as the reference document describes them.
#![allow(dead_code)]

use std::path::PathBuf;

use confparse::{Kind, Schema, ScopeSchema};

/// The directory holding the sample configurations.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/conf-examples");

/// A sample configuration by relative path.
pub fn example(rel: &str) -> PathBuf {
    PathBuf::from(EXAMPLES).join(rel)
}

/// Options valid in a listener scope and in each of its `Listen` scopes.
fn listener_options(s: ScopeSchema, defaults: bool) -> ScopeSchema {
    let d = |v: &'static str| if defaults { Some(v) } else { None };
    s.option("enable", Kind::Bool, d("true"))
        .option("listen_backlog", Kind::Int, d("500"))
        .option("accept_queue_backlog", Kind::Int, d("0"))
        .option("concurrency", Kind::Int, d("0"))
        .option("events_per_iter", Kind::Int, d("0"))
        .option("disable_nagle_algorithm", Kind::Bool, d("false"))
        .option("file_mode", Kind::Octal, d("0660"))
        .option("tcp_recv_buffer_size", Kind::Int, d("4096"))
        .option("tcp_send_buffer_size", Kind::Int, d("4096"))
        .option("pool_name", Kind::Str, None)
}

/// A listener scope (`ECCluster_Listener`, `msgcserver_listener`) with `Listen` children.
pub fn listener(name: &str) -> ScopeSchema {
    listener_options(ScopeSchema::anonymous(name), true)
        .child(listener_options(ScopeSchema::named("Listen"), false))
}

fn msgc_timers(s: ScopeSchema) -> ScopeSchema {
    s.option("connect_timeout", Kind::Duration, Some("60"))
        .option("idle_timeout", Kind::Duration, Some("30"))
        .option("keepalive_interval", Kind::Duration, Some("5"))
        .option("reconnect_interval", Kind::Duration, Some("5"))
        .option("max_backlog", Kind::Int, Some("5000"))
        .option("messages_per_iter", Kind::Int, Some("20"))
        .option("tcpbuf_size", Kind::Int, Some("131072"))
        .option("debug_level", Kind::Str, Some("ERROR"))
}

/// `msgc_server { }`.
pub fn msgc_server() -> ScopeSchema {
    msgc_timers(
        ScopeSchema::anonymous("msgc_server")
            .option("peers", Kind::Dict, None)
            .option("port", Kind::Int, Some("4809")),
    )
}

/// `msgc_client { }`.
pub fn msgc_client() -> ScopeSchema {
    msgc_timers(
        ScopeSchema::anonymous("msgc_client")
            .option("server", Kind::List, None)
            .option("bind_address", Kind::Str, None),
    )
}

/// What msgc-server owns.
pub fn msgc_server_schema() -> Schema {
    Schema::new()
        .scope(msgc_server())
        .scope(listener("msgcserver_listener"))
        .scope(msgc_client())
}

/// `cluster { }` with its declared sub-scopes.
pub fn cluster() -> ScopeSchema {
    ScopeSchema::anonymous("cluster")
        .option("cluster_group", Kind::Str, Some("ec_cluster"))
        .option("control_group", Kind::Str, Some("ec_console"))
        .option("nodename", Kind::Str, None)
        .option("nodeaddr", Kind::Str, None)
        .option("logs", Kind::Dict, None)
        .option("heartbeats_per_sec", Kind::Int, Some("1"))
        .option("view_mature_time", Kind::Duration, Some("5"))
        .option("enabled", Kind::Bool, Some("true"))
        .option("debug_level", Kind::Str, None)
        .child(ScopeSchema::named("Replicate").open())
        .child(
            ScopeSchema::named("Topology")
                .option("cidrmask", Kind::Int, None)
                .option("interface", Kind::Str, None),
        )
}

/// What cluster-listener owns.
pub fn cluster_listener_schema() -> Schema {
    Schema::new()
        .scope(listener("ECCluster_Listener"))
        .scope(cluster())
        .scope(msgc_server())
        .scope(listener("msgcserver_listener"))
        .scope(msgc_client())
}
