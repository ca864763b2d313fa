//! Every `Listen` form of `ECCluster_Listener` binds as configured on the real
//! binary: `ip:p`, `*:p`, `:p`, `[*]:p`, `[::1]:p` (where the machine has ::1),
//! a Unix socket with its `file_mode`, and a disabled Listen that does not bind.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{NodeProc, eventually, free_port, wait_serving};
use proto::eccluster::v1::InfoRequest;

/// True when this machine can bind `[::1]`.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Speaks the start of HTTP/2 on a Unix socket and expects the server's
/// SETTINGS frame back: a gRPC server is answering there.
fn http2_answers_on(path: &std::path::Path) -> Result<(), String> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .map_err(|e| e.to_string())?;
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).map_err(|e| e.to_string())?;
    if header[3] == 4 {
        Ok(())
    } else {
        Err(format!(
            "first frame is of type {}, not SETTINGS",
            header[3]
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listen_form_binds_as_configured_and_a_disabled_one_does_not() {
    let (p_ip, p_star, p_colon, p_disabled, p_v6) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("eccluster.sock");
    let ipv6 = has_ipv6_loopback();
    let v6_listens = if ipv6 {
        // `[*]:p` beside `*:p` on the same port: the IPv6 wildcard is IPv6-only.
        format!("  Listen \"[*]:{p_star}\" {{ }}\n  Listen \"[::1]:{p_v6}\" {{ }}\n")
    } else {
        println!("skipping the IPv6 Listen forms: this machine cannot bind [::1]");
        String::new()
    };
    let conf = format!(
        "ECCluster_Listener {{\n  listen_backlog = 64\n  disable_nagle_algorithm = true\n\
         \x20 Listen \"127.0.0.1:{p_ip}\" {{ tcp_recv_buffer_size = 65536 tcp_send_buffer_size = 65536 }}\n\
         \x20 Listen \"*:{p_star}\" {{ }}\n\
         \x20 Listen \":{p_colon}\" {{ }}\n\
         {v6_listens}\
         \x20 Listen \"{}\" {{ file_mode = 0600 }}\n\
         \x20 Listen \"127.0.0.1:{p_disabled}\" {{ enable = false }}\n\
         }}\n\
         cluster {{\n  nodename = \"forms\"\n  enabled = false\n}}\n",
        sock.display()
    );
    let node = NodeProc::start("forms", &format!("127.0.0.1:{p_ip}"), &conf, &[]);

    // Each TCP form answers gRPC health (cluster disabled: ready at once).
    let mut tcp = vec![
        format!("127.0.0.1:{p_ip}"),
        format!("127.0.0.1:{p_star}"),
        format!("127.0.0.1:{p_colon}"),
    ];
    if ipv6 {
        tcp.push(format!("[::1]:{p_star}"));
        tcp.push(format!("[::1]:{p_v6}"));
    }
    for addr in &tcp {
        wait_serving(addr, "").await;
        wait_serving(addr, "eccluster.v1.Node").await;
    }

    // The Unix socket: its file mode, and HTTP/2 answering on it.
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    eventually("HTTP/2 on the Unix socket", || async {
        http2_answers_on(&sock)
    })
    .await;

    // The disabled Listen is not bound.
    let refused = std::net::TcpStream::connect(("127.0.0.1", p_disabled));
    assert!(
        refused.is_err(),
        "disabled Listen 127.0.0.1:{p_disabled} accepted a connection"
    );

    // Info lists exactly what was bound, in configuration order.
    let mut client = node.client().await;
    let info = client.info(InfoRequest {}).await.unwrap().into_inner();
    let mut want = vec![
        format!("127.0.0.1:{p_ip}"),
        format!("0.0.0.0:{p_star}"),
        format!("0.0.0.0:{p_colon}"),
    ];
    if ipv6 {
        want.push(format!("[::]:{p_star}"));
        want.push(format!("[::1]:{p_v6}"));
    }
    want.push(sock.display().to_string());
    assert_eq!(info.listen_addresses, want);
    // nodeaddr unset: the first non-wildcard Listen IP, with that Listen's port.
    assert_eq!(info.address, format!("127.0.0.1:{p_ip}"));
    assert!(!info.msgc_connected);
    drop(node);
}
