//! What a test records while it runs: client logs, publisher logs, the run.

use bytes::Bytes;
use proto::msgc::v1::{Delivery, GroupView, Position, ViewChange};
use serde::{Deserialize, Serialize};

use crate::payload::{MsgId, decode_payload, encode_payload};

/// A position in the bus's total order, `(view_id, seq)`, compared
/// lexicographically.
pub type Pos = (u64, u64);

/// Converts an optional wire position to a [`Pos`]; a missing position is `(0, 0)`.
pub fn pos_of(position: Option<&Position>) -> Pos {
    position.map_or((0, 0), |p| (p.view_id, p.seq))
}

/// The `<server>` part of a private name `#<client>#<server>`, if it has that form.
pub fn server_of(private_name: &str) -> Option<&str> {
    let rest = private_name.strip_prefix('#')?;
    let (_, server) = rest.split_once('#')?;
    (!server.is_empty()).then_some(server)
}

/// One event a client delivered, reduced to what the checker needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A message of a group.
    Delivery {
        /// The group it was delivered in.
        group: String,
        /// Private name of the sender, as the bus reported it.
        sender_private: String,
        /// The message identity decoded from the payload.
        id: MsgId,
        /// Its position in the total order.
        position: Pos,
    },
    /// A new membership view of a group.
    View {
        /// The group.
        group: String,
        /// The group view id.
        gid: u32,
        /// Why the view changed.
        #[serde(with = "change_serde")]
        change: ViewChange,
        /// Private names of the members, leader first.
        members: Vec<String>,
        /// Its position in the total order.
        position: Pos,
    },
}

impl Record {
    /// Records a delivery; `None` if its payload does not follow the
    /// [`encode_payload`] convention (a test should treat that as a failure).
    pub fn from_delivery(delivery: &Delivery) -> Option<Record> {
        Some(Record::Delivery {
            group: delivery.group.clone(),
            sender_private: delivery.sender.clone(),
            id: decode_payload(&delivery.payload)?,
            position: pos_of(delivery.position.as_ref()),
        })
    }

    /// Records a group view (an unknown change kind becomes `Unspecified`).
    pub fn from_view(view: &GroupView) -> Record {
        Record::View {
            group: view.group.clone(),
            gid: view.gid,
            change: view.change(),
            members: view
                .members
                .iter()
                .map(|m| m.private_name.clone())
                .collect(),
            position: pos_of(view.position.as_ref()),
        }
    }

    /// The group the event belongs to.
    pub fn group(&self) -> &str {
        match self {
            Record::Delivery { group, .. } | Record::View { group, .. } => group,
        }
    }

    /// The event's position in the total order.
    pub fn position(&self) -> Pos {
        match self {
            Record::Delivery { position, .. } | Record::View { position, .. } => *position,
        }
    }
}

/// Everything one client (one session) delivered, in delivery order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLog {
    /// The client's private name, `#<client>#<server>`.
    pub client: String,
    /// The server its session lived on.
    pub server: String,
    /// Delivered events, in delivery order.
    pub records: Vec<Record>,
    /// True if its server and its session lasted to the end of the run (only
    /// survivors are held to reliable delivery and the view-change checks).
    pub survived: bool,
}

impl ClientLog {
    /// An empty log of a client that (so far) survives.
    pub fn new(client: impl Into<String>, server: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            server: server.into(),
            records: Vec::new(),
            survived: true,
        }
    }

    /// Appends a delivery; returns false (recording nothing) if its payload
    /// does not follow the convention.
    pub fn push_delivery(&mut self, delivery: &Delivery) -> bool {
        match Record::from_delivery(delivery) {
            Some(record) => {
                self.records.push(record);
                true
            }
            None => false,
        }
    }

    /// Appends a group view.
    pub fn push_view(&mut self, view: &GroupView) {
        self.records.push(Record::from_view(view));
    }
}

/// What one publisher sent to one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherLog {
    /// The publisher tag put in each payload (the `sender` of its [`MsgId`]s).
    pub tag: String,
    /// The group it published to.
    pub group: String,
    /// Counters in send order.
    pub sent: Vec<u64>,
    /// How many of the first `sent` were acknowledged (sequenced).
    pub acked: u64,
    /// Optional lower bound on the positions of all its messages (e.g. the
    /// position of the last join view the test awaited before publishing).
    /// Lets the checker demand acknowledged messages that no client delivered
    /// at all; without it such messages are only bounded by neighbours from the
    /// same publisher that someone did deliver.
    #[serde(default)]
    pub not_before: Option<Pos>,
}

impl PublisherLog {
    /// An empty publisher log.
    pub fn new(tag: impl Into<String>, group: impl Into<String>) -> Self {
        Self {
            tag: tag.into(),
            group: group.into(),
            ..Self::default()
        }
    }

    /// Takes the next counter (one more than the last sent, starting at 1),
    /// records it as sent and returns its payload of `size` bytes.
    pub fn next_payload(&mut self, size: usize) -> Bytes {
        let counter = self.sent.last().map_or(1, |c| c + 1);
        self.sent.push(counter);
        encode_payload(&self.tag, counter, size)
    }

    /// Notes a cumulative acknowledgement count (never goes down, never past `sent`).
    pub fn ack(&mut self, acked_total: u64) {
        self.acked = self.acked.max(acked_total.min(self.sent.len() as u64));
    }

    /// The ids of the acknowledged messages, in send order.
    pub fn acked_ids(&self) -> impl Iterator<Item = MsgId> + '_ {
        let n = usize::try_from(self.acked).unwrap_or(usize::MAX);
        self.sent
            .iter()
            .take(n)
            .map(|c| MsgId::new(self.tag.clone(), *c))
    }
}

/// One recorded test run: every client's log, every publisher's log, and the
/// servers the test killed or cut off for good.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// One log per client session.
    pub clients: Vec<ClientLog>,
    /// One log per (publisher tag, group).
    pub publishers: Vec<PublisherLog>,
    /// Servers lost during the run; a server lost twice is listed twice.
    pub lost_servers: Vec<String>,
}

impl Run {
    /// The run as pretty JSON (to attach to a failing test's output).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Reads a run written by [`Run::to_json`].
    pub fn from_json(json: &str) -> Result<Run, serde_json::Error> {
        serde_json::from_str(json)
    }
}

mod change_serde {
    use proto::msgc::v1::ViewChange;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(c: &ViewChange, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.as_str_name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ViewChange, D::Error> {
        let name = String::deserialize(d)?;
        ViewChange::from_str_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown view change {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use proto::msgc::v1::Member;

    use super::*;

    #[test]
    fn from_wire_types() {
        let d = Delivery {
            group: "g".into(),
            sender: "#a#s1".into(),
            payload: encode_payload("p", 7, 32),
            position: Some(Position { view_id: 2, seq: 9 }),
        };
        assert_eq!(
            Record::from_delivery(&d),
            Some(Record::Delivery {
                group: "g".into(),
                sender_private: "#a#s1".into(),
                id: MsgId::new("p", 7),
                position: (2, 9),
            })
        );
        let bad = Delivery {
            payload: Bytes::from_static(b"nope"),
            ..d
        };
        assert_eq!(Record::from_delivery(&bad), None);

        let v = GroupView {
            group: "g".into(),
            gid: 3,
            change: ViewChange::ServerLost as i32,
            members: vec![
                Member {
                    private_name: "#a#s1".into(),
                    ..Member::default()
                },
                Member {
                    private_name: "#b#s2".into(),
                    ..Member::default()
                },
            ],
            changed: vec!["#c#s3".into()],
            position: None,
        };
        let r = Record::from_view(&v);
        assert_eq!(
            r,
            Record::View {
                group: "g".into(),
                gid: 3,
                change: ViewChange::ServerLost,
                members: vec!["#a#s1".into(), "#b#s2".into()],
                position: (0, 0),
            }
        );
        assert_eq!(r.group(), "g");
        assert_eq!(r.position(), (0, 0));
    }

    #[test]
    fn server_names() {
        assert_eq!(server_of("#ec0-20768#pono"), Some("pono"));
        assert_eq!(server_of("ec0#pono"), None);
        assert_eq!(server_of("#ec0"), None);
        assert_eq!(server_of("#ec0#"), None);
    }

    #[test]
    fn publisher_log_and_json() {
        let mut p = PublisherLog::new("p", "g");
        let first = p.next_payload(10);
        p.next_payload(10);
        p.ack(5);
        assert_eq!(decode_payload(&first), Some(MsgId::new("p", 1)));
        assert_eq!(p.sent, vec![1, 2]);
        assert_eq!(p.acked, 2);
        p.ack(1);
        assert_eq!(p.acked, 2);
        assert_eq!(p.acked_ids().count(), 2);

        let mut c = ClientLog::new("#a#s1", "s1");
        c.records.push(Record::View {
            group: "g".into(),
            gid: 1,
            change: ViewChange::Join,
            members: vec!["#a#s1".into()],
            position: (1, 1),
        });
        let run = Run {
            clients: vec![c],
            publishers: vec![p],
            lost_servers: vec!["s2".into()],
        };
        assert_eq!(Run::from_json(&run.to_json()).ok(), Some(run));
    }
}
