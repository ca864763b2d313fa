//! Schemas for the Momentum scopes this project reads, with Momentum's documented
//! defaults: the listener scopes (`ECCluster_Listener`, `msgcserver_listener`, each
//! with `Listen "<address>" { }` children), `msgc_server`, `msgc_client` and `cluster`
//! (with its `Replicate` and `Topology` sub-scopes).
//!
//! Services compose what they own from these pieces; `confparse check --schema NAME`
//! uses the composed schemas [`msgc_server_schema`], [`cluster_listener_schema`] and
//! [`all`]. Rules a schema cannot express (e.g. peer names must be lower-case) stay
//! with the services.

use crate::schema::{Kind, Schema, ScopeSchema};

/// Options valid in a listener scope and in each of its `Listen` scopes; defaults are
/// declared on the listener only, so a `Listen` falls back to its listener's value and
/// then to the listener's default.
///
/// TLS (this project's; Momentum documents none for these listeners, the
/// names are those of its other listeners): `tls_certificate` and `tls_key`
/// turn TLS on for a `Listen`; `tls_ca` verifies client certificates;
/// `tls_verify` is `require` (default: mutual TLS), `optional` or `no`.
/// Without them a `Listen` is plaintext.
///
/// Two defaults differ from Momentum's on purpose, because both listeners carry
/// gRPC (HTTP/2): `disable_nagle_algorithm` is true (Nagle with delayed ACKs stalls
/// small frames for 40 ms) and the TCP buffer sizes are 0, the OS's own autotuned
/// sizes (Momentum's 4096 bytes would throttle a stream to a few MB/s). Explicit
/// values are honoured.
fn listener_options(s: ScopeSchema, defaults: bool) -> ScopeSchema {
    let d = |v: &'static str| if defaults { Some(v) } else { None };
    s.option("enable", Kind::Bool, d("true"))
        .option("listen_backlog", Kind::Int, d("500"))
        .option("accept_queue_backlog", Kind::Int, d("0"))
        .option("concurrency", Kind::Int, d("0"))
        .option("events_per_iter", Kind::Int, d("0"))
        .option("disable_nagle_algorithm", Kind::Bool, d("true"))
        .option("file_mode", Kind::Octal, d("0660"))
        .option("tcp_recv_buffer_size", Kind::Int, d("0"))
        .option("tcp_send_buffer_size", Kind::Int, d("0"))
        .option("pool_name", Kind::Str, None)
        .option("tls_certificate", Kind::Str, None)
        .option("tls_key", Kind::Str, None)
        .option("tls_ca", Kind::Str, None)
        .option("tls_verify", Kind::Str, d("require"))
}

/// TLS to the bus: `tls_ca` (turns TLS on: the CAs that verify servers),
/// `tls_certificate` and `tls_key` (the client certificate of mutual TLS).
fn client_tls(s: ScopeSchema) -> ScopeSchema {
    s.option("tls_certificate", Kind::Str, None)
        .option("tls_key", Kind::Str, None)
        .option("tls_ca", Kind::Str, None)
}

/// A listener scope (e.g. `ECCluster_Listener`, `msgcserver_listener`) with its
/// `Listen` children, plus this project's `admin_listen` (the listener scope
/// only): the TCP address of the admin HTTP listener serving Prometheus
/// `/metrics`; no default, so metrics are off unless it is set.
pub fn listener(name: &str) -> ScopeSchema {
    listener_options(ScopeSchema::anonymous(name), true)
        .option("admin_listen", Kind::Str, None)
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

/// `msgc_server { peers = [ name = "address" ... ] port = 4809 ... }`, plus this
/// project's `max_message_size` (largest payload in bytes, default 1 MiB) and
/// `max_peer_bytes` (bytes queued for one peer before its link is cut,
/// default 64 MiB).
pub fn msgc_server() -> ScopeSchema {
    msgc_timers(
        ScopeSchema::anonymous("msgc_server")
            .option("peers", Kind::Dict, None)
            .option("port", Kind::Int, Some("4809"))
            .option("max_message_size", Kind::Int, Some("1048576"))
            .option("max_peer_bytes", Kind::Int, Some("67108864")),
    )
}

/// `msgc_client { server = ( "host:port" ) bind_address = ... }`, plus TLS
/// (`tls_ca`, `tls_certificate`, `tls_key`; no TLS by default).
pub fn msgc_client() -> ScopeSchema {
    client_tls(msgc_timers(
        ScopeSchema::anonymous("msgc_client")
            .option("server", Kind::List, Some("( \"127.0.0.1:4809\" )"))
            .option("bind_address", Kind::Str, None),
    ))
}

/// `cluster { }` with `Replicate "<name>" { }` (contents not checked) and
/// `Topology "<cidr>" { cidrmask interface }`, plus this project's options:
/// `subcluster`, `node_type` (advertised in the node record), `state_dir`
/// (log checkpoints), `spool_dir` (moved messages), `outgoing_dir` (the only
/// directory `MoveTo` reads from) and `max_message_size` (largest moved
/// message, default 64 MiB). Every default cluster-listener
/// applies is declared here, so this is the one place to read them:
/// subcluster `default` (group `ec_sc_default`), node type `node`, state in
/// `/var/lib/ecelerity/cluster`, spool in `/var/spool/ecelerity/cluster`,
/// `debug_level` `ERROR`. `nodename`, `nodeaddr` and `outgoing_dir` have no
/// default here: they are derived (from `--name`/`EC_NODE_NAME`/the host
/// name, from the first specific `Listen`, and `<spool_dir>/outgoing`).
pub fn cluster() -> ScopeSchema {
    ScopeSchema::anonymous("cluster")
        .option("subcluster", Kind::Str, Some("default"))
        .option("node_type", Kind::Str, Some("node"))
        .option(
            "state_dir",
            Kind::Str,
            Some("\"/var/lib/ecelerity/cluster\""),
        )
        .option(
            "spool_dir",
            Kind::Str,
            Some("\"/var/spool/ecelerity/cluster\""),
        )
        .option("outgoing_dir", Kind::Str, None)
        .option("max_message_size", Kind::Int, Some("67108864"))
        .option("cluster_group", Kind::Str, Some("ec_cluster"))
        .option("control_group", Kind::Str, Some("ec_console"))
        .option("nodename", Kind::Str, None)
        .option("nodeaddr", Kind::Str, None)
        .option("logs", Kind::Dict, None)
        .option("heartbeats_per_sec", Kind::Int, Some("1"))
        .option("view_mature_time", Kind::Duration, Some("5"))
        .option("enabled", Kind::Bool, Some("true"))
        .option("debug_level", Kind::Str, Some("ERROR"))
        .child(ScopeSchema::named("Replicate").unchecked())
        .child(
            ScopeSchema::named("Topology")
                .option("cidrmask", Kind::Int, None)
                .option("interface", Kind::Str, None),
        )
}

/// What msgc-server owns: `msgc_server`, `msgcserver_listener`, `msgc_client`.
pub fn msgc_server_schema() -> Schema {
    Schema::new()
        .scope(msgc_server())
        .scope(listener("msgcserver_listener"))
        .scope(msgc_client())
}

/// What cluster-listener owns: `ECCluster_Listener`, `cluster`, `msgc_client`
/// (the msgc scopes of an included `msgc_server.conf` are msgc-server's).
pub fn cluster_listener_schema() -> Schema {
    Schema::new()
        .scope(listener("ECCluster_Listener"))
        .scope(cluster())
        .scope(msgc_client())
}

/// Every scope described here (the union of the two services' schemas).
pub fn all() -> Schema {
    cluster_listener_schema()
        .scope(msgc_server())
        .scope(listener("msgcserver_listener"))
}

/// A composed schema by name: `msgc-server`, `cluster-listener` or `all`.
pub fn by_name(name: &str) -> Option<Schema> {
    match name {
        "msgc-server" => Some(msgc_server_schema()),
        "cluster-listener" => Some(cluster_listener_schema()),
        "all" => Some(all()),
        _ => None,
    }
}
