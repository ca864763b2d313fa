//! `msgc groups`, `msgc view` and `msgc watch`, from `msgc.v1.Admin`.
//!
//! `watch` polls `GetServerView` (every `--interval`, default 0.5 s) and
//! prints a line whenever the view, the coordinator, a link's state or the
//! server answering changes: the Admin API has no streaming call, and
//! polling also lets `watch` fail over to the next server when its server
//! goes away, and say so.

use std::process::ExitCode;
use std::time::Duration;

use proto::msgc::v1::admin_client::AdminClient;
use proto::msgc::v1::{
    GetServerViewRequest, GroupInfo, LinkState, ListGroupsRequest, ServerStatus,
};
use serde_json::json;

use crate::args::WatchArgs;
use crate::connect::Servers;

/// `msgc groups [GROUP]`.
pub async fn groups(
    servers: &Servers,
    group: Option<String>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let (_, channel) = servers.channel().await?;
    let reply = AdminClient::new(channel)
        .list_groups(ListGroupsRequest {
            group: group.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    if json_out {
        let groups: Vec<_> = reply.groups.iter().map(group_json).collect();
        println!("{}", serde_json::to_string_pretty(&groups)?);
        return Ok(ExitCode::SUCCESS);
    }
    if reply.groups.is_empty() {
        match &group {
            Some(g) => println!("no group {g:?} on the bus"),
            None => println!("no groups on the bus"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = match &group {
        None => reply
            .groups
            .iter()
            .map(|g| {
                let members: Vec<&str> =
                    g.members.iter().map(|m| m.private_name.as_str()).collect();
                vec![
                    g.group.clone(),
                    g.gid.to_string(),
                    g.members.len().to_string(),
                    g.leader.clone(),
                    members.join(" "),
                ]
            })
            .collect(),
        Some(_) => reply.groups.iter().flat_map(member_rows).collect(),
    };
    let header: &[&str] = match group {
        None => &["GROUP", "GID", "N", "LEADER", "MEMBERS"],
        Some(_) => &["GROUP", "GID", "MEMBER", "SERVER", "NODE", "NODE ADDRESS"],
    };
    print!("{}", table(header, &rows));
    Ok(ExitCode::SUCCESS)
}

fn member_rows(g: &GroupInfo) -> Vec<Vec<String>> {
    g.members
        .iter()
        .map(|m| {
            let node = m.node.clone().unwrap_or_default();
            vec![
                g.group.clone(),
                g.gid.to_string(),
                m.private_name.clone(),
                m.server.clone(),
                node.node_name,
                node.listener_address,
            ]
        })
        .collect()
}

fn group_json(g: &GroupInfo) -> serde_json::Value {
    json!({
        "group": g.group,
        "gid": g.gid,
        "leader": g.leader,
        "members": g.members.iter().map(|m| json!({
            "private_name": m.private_name,
            "server": m.server,
            "node": m.node.as_ref().map(|n| n.node_name.clone()),
        })).collect::<Vec<_>>(),
    })
}

async fn server_view(channel: tonic::transport::Channel) -> Result<ServerStatus, tonic::Status> {
    AdminClient::new(channel)
        .get_server_view(GetServerViewRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// `msgc view`.
pub async fn view(servers: &Servers, json_out: bool) -> anyhow::Result<ExitCode> {
    let (_, channel) = servers.channel().await?;
    let status = server_view(channel).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&status_json(&status))?);
    } else {
        print!("{}", render_view(&status));
    }
    Ok(ExitCode::SUCCESS)
}

fn link_state(state: i32) -> &'static str {
    LinkState::try_from(state)
        .map_or("UNKNOWN", |s| s.as_str_name())
        .trim_start_matches("LINK_STATE_")
}

/// The view and links as a table.
pub fn render_view(s: &ServerStatus) -> String {
    let mut out = format!(
        "server {}  view {}{}  coordinator {}  members {}  sessions {}\n",
        s.server,
        s.view_id,
        if s.view_change_in_progress {
            " (changing)"
        } else {
            ""
        },
        s.coordinator,
        s.members.join(" "),
        s.sessions
    );
    let rows: Vec<Vec<String>> = s
        .links
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.address.clone(),
                link_state(l.state).to_owned(),
                format!("{:.1}s", l.state_age_ms as f64 / 1000.0),
                if l.rtt_us == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.2}ms", l.rtt_us as f64 / 1000.0)
                },
                l.backlog.to_string(),
                l.last_error.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(
            &[
                "PEER",
                "ADDRESS",
                "STATE",
                "FOR",
                "RTT",
                "BACKLOG",
                "LAST ERROR",
            ],
            &rows,
        ));
    }
    out
}

fn status_json(s: &ServerStatus) -> serde_json::Value {
    json!({
        "server": s.server,
        "view_id": s.view_id,
        "members": s.members,
        "coordinator": s.coordinator,
        "sessions": s.sessions,
        "view_change_in_progress": s.view_change_in_progress,
        "links": s.links.iter().map(|l| json!({
            "name": l.name, "address": l.address, "state": link_state(l.state),
            "state_age_ms": l.state_age_ms, "rtt_us": l.rtt_us,
            "last_error": l.last_error, "backlog": l.backlog,
        })).collect::<Vec<_>>(),
    })
}

/// What `watch` compares: changes in anything else (ages, RTTs) are not news.
fn watched(server: &str, s: &ServerStatus) -> String {
    let links: Vec<String> = s
        .links
        .iter()
        .map(|l| format!("{}={}", l.name, link_state(l.state)))
        .collect();
    format!(
        "{server} {} view {} members [{}] coordinator {} links {}",
        s.server,
        s.view_id,
        s.members.join(" "),
        s.coordinator,
        links.join(" ")
    )
}

/// `msgc watch`: a line per change, timestamped.
pub async fn watch(servers: &Servers, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let interval = Duration::from_secs_f64(args.interval.clamp(0.01, 3600.0));
    let mut last = String::new();
    let mut printed = 0u64;
    let mut start = 0usize;
    loop {
        let (addr, channel) = servers.channel_from(start).await?;
        loop {
            let status = match server_view(channel.clone()).await {
                Ok(status) => status,
                Err(err) => {
                    println!(
                        "{} {addr}: {} (trying the next server)",
                        now(),
                        err.message()
                    );
                    break;
                }
            };
            let state = watched(&addr, &status);
            if state != last {
                println!(
                    "{} {addr} {}",
                    now(),
                    state.split_once(' ').map_or("", |(_, r)| r)
                );
                last = state;
                printed += 1;
                if args.count.is_some_and(|c| printed >= c) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                _ = tokio::time::sleep(interval) => {}
            }
        }
        start += 1;
        tokio::time::sleep(interval).await;
    }
}

/// Wall-clock time of day, UTC, `HH:MM:SS.mmm`.
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    )
}

/// Left-aligned columns, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
