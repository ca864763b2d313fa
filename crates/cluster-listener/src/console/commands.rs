//! The read-only console command set every node answers:
//!
//! | command | answer |
//! |---|---|
//! | `info` (`cluster info`) | who the node is and how it is linked to the bus |
//! | `membership` (`cluster membership`) | the cluster as this node sees it, leader first |
//! | `logs` | each offered log: path, size, each subscriber's checkpoint offset |
//! | `spool` | message counts in the spool's `incoming/`, `tmp/`, `envelopes/` |
//! | `config get <scope> <option>` (or `<scope>.<option>`) | the option's effective value and where it comes from |
//! | `help` | this list |
//!
//! Nothing here changes the node.

use std::fmt::Write as _;
use std::path::Path;

use confparse::Value;
use proto::eccluster::v1::NodeReply;

use crate::logs::LogsService;
use crate::service::NodeContext;

/// The commands, for `help` and refusals.
pub const HELP: &str =
    "commands: info | membership | logs | spool | config get <scope> <option> | help\n";

/// What a node needs to answer commands.
#[derive(Debug)]
pub struct Answerer {
    ctx: std::sync::Arc<NodeContext>,
    logs: LogsService,
}

impl Answerer {
    /// Answers from `ctx`; `logs` lists log positions.
    pub fn new(ctx: std::sync::Arc<NodeContext>, logs: LogsService) -> Self {
        Self { ctx, logs }
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.ctx.cfg.nodename
    }

    /// Runs `command` and names the reply after this node.
    pub fn execute(&self, command: &str) -> NodeReply {
        let words: Vec<&str> = command.split_whitespace().collect();
        let words = match words.as_slice() {
            ["cluster", rest @ ..] if !rest.is_empty() => rest,
            all => all,
        };
        let result = match words {
            ["info"] => Ok(self.info()),
            ["membership"] => Ok(self.membership()),
            ["logs"] => self.log_positions(),
            ["spool"] => Ok(self.spool()),
            ["config", "get", scope, option] => self.config_get(scope, option),
            ["config", "get", dotted] => match dotted.rsplit_once('.') {
                Some((scope, option)) => self.config_get(scope, option),
                None => Err(format!("config get needs <scope> <option>\n{HELP}")),
            },
            ["help"] => Ok(HELP.to_owned()),
            [] => Err(format!("empty command\n{HELP}")),
            _ => Err(format!("unknown command `{command}`\n{HELP}")),
        };
        let (ok, output) = match result {
            Ok(output) => (true, output),
            Err(output) => (false, output),
        };
        NodeReply {
            node: self.node().to_owned(),
            ok,
            output,
        }
    }

    fn info(&self) -> String {
        let ctx = &self.ctx;
        let cfg = &ctx.cfg;
        let link = ctx.membership.link();
        let mut out = String::new();
        let _ = writeln!(out, "node: {}", cfg.nodename);
        let _ = writeln!(out, "address: {}", ctx.address);
        let _ = writeln!(out, "subcluster: {}", cfg.subcluster);
        let _ = writeln!(out, "node_type: {}", cfg.node_type);
        let _ = writeln!(out, "version: {}", crate::VERSION);
        let _ = writeln!(out, "uptime_seconds: {}", ctx.started.elapsed().as_secs());
        let _ = writeln!(
            out,
            "msgc: {} ({}, {})",
            if link.connected { "connected" } else { "down" },
            link.server_name,
            link.private_name
        );
        let leader = ctx.membership.leader().unwrap_or_default();
        let _ = writeln!(out, "cluster_leader: {leader}");
        out
    }

    fn membership(&self) -> String {
        let m = self.ctx.membership.snapshot();
        let mut out = format!(
            "{} gid {} leader {} ({} nodes)\n",
            m.cluster_group,
            m.gid,
            m.leader,
            m.nodes.len()
        );
        for n in &m.nodes {
            let _ = writeln!(
                out,
                "{} {} subcluster={} server={} groups={}",
                n.node_name,
                n.address,
                n.subcluster,
                n.msgc_server,
                n.groups.join(",")
            );
        }
        out
    }

    fn log_positions(&self) -> Result<String, String> {
        let list = self.logs.list().map_err(|e| e.to_string())?;
        if list.logs.is_empty() {
            return Ok("no logs offered (cluster logs)\n".to_owned());
        }
        let mut out = String::new();
        for log in &list.logs {
            let _ = writeln!(out, "{} {} size={}", log.name, log.path, log.size);
            for sub in &log.subscribers {
                match &sub.checkpoint {
                    Some(p) => {
                        let _ =
                            writeln!(out, "  {} offset={} inode={}", sub.name, p.offset, p.inode);
                    }
                    None => {
                        let _ = writeln!(out, "  {} (never committed)", sub.name);
                    }
                }
            }
        }
        Ok(out)
    }

    fn spool(&self) -> String {
        let dir = &self.ctx.cfg.spool_dir;
        let count = |sub: &str| count_files(&dir.join(sub));
        format!(
            "spool {}: incoming={} tmp={} envelopes={}\n",
            dir.display(),
            count("incoming"),
            count("tmp"),
            count("envelopes")
        )
    }

    fn config_get(&self, scope: &str, option: &str) -> Result<String, String> {
        let conf = &self.ctx.cfg.conf.0;
        let root = conf.root();
        let Some(found) = root.scope(scope) else {
            let default = conf.schema().and_then(|s| s.default_for(&[scope], option));
            return match default {
                Some((path, text)) => Ok(format!("{path} = {text} (default)\n")),
                None => Err(format!("no scope `{scope}` with option `{option}`\n")),
            };
        };
        match (found.lookup(option), found.resolve(option)) {
            (Some(set), _) => Ok(format!(
                "{scope}.{option} = {} ({})\n",
                render(set.value()),
                set.location()
            )),
            (None, Some(default)) => Ok(format!(
                "{scope}.{option} = {} (default)\n",
                render(&default)
            )),
            (None, None) => Err(format!("{scope}.{option} is not set and has no default\n")),
        }
    }
}

/// Regular files directly in `dir` (0 if it does not exist).
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .count()
    })
}

/// A value as it would be written in a configuration file.
fn render(value: &Value) -> String {
    match value {
        Value::Scalar(s) if s.quoted => format!("{:?}", s.text),
        Value::Scalar(s) => s.text.clone(),
        Value::List(l) => {
            let items: Vec<String> = l.items.iter().map(render).collect();
            format!("( {} )", items.join(" "))
        }
        Value::Dict(d) => {
            let entries: Vec<String> = d
                .entries
                .iter()
                .map(|e| format!("{} = {}", e.key, render(&e.value)))
                .collect();
            format!("[ {} ]", entries.join(" "))
        }
    }
}
