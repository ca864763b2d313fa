//! `cluster-listener console …`: the eccmgr verbs as subcommands, sent to
//! one node's `Console/Run` (this configuration's node, or `--node`).

use msgc_client::ClientTls;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use proto::eccluster::v1::console_client::ConsoleClient;
use proto::eccluster::v1::{ConsoleRequest, ConsoleResponse, ConsoleVerb};

/// `console` flags and verb.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// host:port of the node that sends the command (default: this
    /// configuration's node).
    #[arg(long)]
    pub node: Option<String>,
    /// Seconds the retrieve verbs wait for replies.
    #[arg(long, default_value_t = 5.0)]
    pub deadline: f64,
    /// Print the response as JSON.
    #[arg(long)]
    pub json: bool,
    /// The verb.
    #[command(subcommand)]
    pub verb: Verb,
}

/// The eccmgr verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Send a command to every node; do not wait.
    Broadcast {
        /// The command, e.g. `info`.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Send a command to every node and print each node's reply.
    Retrieve {
        /// The command, e.g. `membership`.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Send a command to one node; do not wait.
    Unicast {
        /// The node's name.
        node: String,
        /// The command.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Send a command to one node and print its reply.
    #[command(name = "retrieve_node")]
    RetrieveNode {
        /// The node's name.
        node: String,
        /// The command.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// The same for the nodes of one subcluster (over `ec_sc_<sc>`).
    Subcluster {
        /// `broadcast` or `retrieve`.
        #[command(subcommand)]
        verb: SubclusterVerb,
    },
}

/// The subcluster verbs.
#[derive(Debug, Subcommand)]
pub enum SubclusterVerb {
    /// Send a command to every node of the subcluster; do not wait.
    Broadcast {
        /// The subcluster.
        subcluster: String,
        /// The command.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Send a command to every node of the subcluster and print the replies.
    Retrieve {
        /// The subcluster.
        subcluster: String,
        /// The command.
        #[arg(required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

/// The request a verb makes.
pub fn request(verb: Verb, deadline: Duration) -> ConsoleRequest {
    let deadline_ms = u32::try_from(deadline.as_millis()).unwrap_or(u32::MAX);
    let make = |verb: ConsoleVerb, command: Vec<String>, node: String, subcluster: String| {
        ConsoleRequest {
            verb: verb as i32,
            command: command.join(" "),
            node,
            subcluster,
            deadline_ms,
        }
    };
    match verb {
        Verb::Broadcast { command } => make(
            ConsoleVerb::Broadcast,
            command,
            String::new(),
            String::new(),
        ),
        Verb::Retrieve { command } => {
            make(ConsoleVerb::Retrieve, command, String::new(), String::new())
        }
        Verb::Unicast { node, command } => make(ConsoleVerb::Unicast, command, node, String::new()),
        Verb::RetrieveNode { node, command } => {
            make(ConsoleVerb::RetrieveNode, command, node, String::new())
        }
        Verb::Subcluster {
            verb:
                SubclusterVerb::Broadcast {
                    subcluster,
                    command,
                },
        } => make(ConsoleVerb::Broadcast, command, String::new(), subcluster),
        Verb::Subcluster {
            verb:
                SubclusterVerb::Retrieve {
                    subcluster,
                    command,
                },
        } => make(ConsoleVerb::Retrieve, command, String::new(), subcluster),
    }
}

/// Sends the verb to the node at `node_addr` and prints the outcome. Exit
/// 0 when every target replied and accepted the command (or, for the
/// sending verbs, once sent), 1 otherwise.
pub async fn run(node_addr: &str, tls: Option<&ClientTls>, args: ConsoleArgs) -> ExitCode {
    let deadline = Duration::from_secs_f64(args.deadline.clamp(0.001, 120.0));
    let request = request(args.verb, deadline);
    let wait = matches!(
        ConsoleVerb::try_from(request.verb),
        Ok(ConsoleVerb::Retrieve | ConsoleVerb::RetrieveNode)
    );
    let response = async {
        let channel = msgc_client::channel_over(node_addr, tls, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        ConsoleClient::new(channel)
            .run(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.message().to_owned())
    };
    let response = match response.await {
        Ok(response) => response,
        Err(err) => {
            eprintln!("cluster-listener: console via {node_addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", to_json(&response));
    } else {
        print!("{}", render(&response, wait));
    }
    let complete = response.missing.is_empty() && response.replies.iter().all(|r| r.ok);
    if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The response as text: each reply under its node's name, then what is missing.
pub fn render(response: &ConsoleResponse, wait: bool) -> String {
    let mut out = String::new();
    if !wait {
        out.push_str(&format!(
            "sent over {} to {} (request {})\n",
            response.group,
            response.targets.join(" "),
            response.request_id
        ));
        return out;
    }
    for reply in &response.replies {
        let status = if reply.ok { "" } else { " (refused)" };
        out.push_str(&format!("== {}{status} ==\n{}", reply.node, reply.output));
        if !reply.output.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{} of {} nodes replied",
        response.replies.len(),
        response.targets.len()
    ));
    if !response.missing.is_empty() {
        out.push_str(&format!("; missing: {}", response.missing.join(" ")));
    }
    out.push('\n');
    out
}

fn to_json(response: &ConsoleResponse) -> serde_json::Value {
    serde_json::json!({
        "request_id": response.request_id,
        "group": response.group,
        "targets": response.targets,
        "replies": response.replies.iter().map(|r| serde_json::json!({
            "node": r.node, "ok": r.ok, "output": r.output,
        })).collect::<Vec<_>>(),
        "missing": response.missing,
    })
}
