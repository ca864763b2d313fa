//! Every conversion between `msgc-core`'s domain types and the protobuf
//! messages: peer messages (`msgc.v1.Mesh`) both ways, and what clients see
//! (`msgc.v1.Bus`: events, members, positions, hellos).
//!
//! Decoding a peer message checks it: a missing field, a server name that is
//! not in `peers`, or an op naming an origin its batch does not list is a
//! [`WireError`], and the link it came on is dropped. Server names are
//! interned through [`Names`], so a decoded op does not allocate a name.

use std::collections::BTreeMap;

use msgc_core::{
    ChangeKind, Event, FlushState, Group, GroupTable, GroupView, InstallRecord, Member, MemberKey,
    NodeRecord, Op, OpKind, PeerMsg, Position, Row, ServerId, ServerName, SessionId, Source, View,
    ViewId,
};
use pb::peer_message::Kind;
use proto::msgc::v1 as pb;

/// Why a peer message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A field the message needs is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A server name that is not in `peers`.
    #[error("server name {0:?} is not in peers")]
    UnknownServer(String),
    /// An op's origin index is outside its batch's origins.
    #[error("op origin {0} is not in the message's origins")]
    BadOrigin(u32),
    /// A change kind that is not a known `ViewChange`.
    #[error("unknown change kind {0}")]
    BadChange(i32),
}

/// The server names of `peers`, to intern decoded names.
#[derive(Debug, Clone)]
pub struct Names(Vec<ServerName>);

impl Names {
    /// The names a peer may mention.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut names: Vec<ServerName> = names.into_iter().map(ServerName::new).collect();
        names.sort();
        names.dedup();
        Self(names)
    }

    /// The interned name, if it is one of `peers`.
    pub fn get(&self, name: &str) -> Result<ServerName, WireError> {
        self.0
            .binary_search_by(|n| n.as_str().cmp(name))
            .map(|i| self.0[i].clone())
            .map_err(|_| WireError::UnknownServer(name.to_owned()))
    }

    fn server(&self, id: Option<pb::ServerId>) -> Result<ServerId, WireError> {
        let id = id.ok_or(WireError::Missing("server id"))?;
        self.server_of(&id)
    }

    fn server_of(&self, id: &pb::ServerId) -> Result<ServerId, WireError> {
        Ok(ServerId {
            name: self.get(&id.name)?,
            incarnation: id.incarnation,
        })
    }

    fn servers(&self, ids: &[pb::ServerId]) -> Result<Vec<ServerId>, WireError> {
        ids.iter().map(|id| self.server_of(id)).collect()
    }

    fn view_id(&self, id: Option<pb::ViewId>) -> Result<ViewId, WireError> {
        let id = id.ok_or(WireError::Missing("view id"))?;
        Ok(ViewId {
            epoch: id.epoch,
            proposer: ServerId {
                name: self.get(&id.proposer)?,
                incarnation: id.proposer_incarnation,
            },
        })
    }

    fn view(&self, view: Option<pb::View>) -> Result<View, WireError> {
        let view = view.ok_or(WireError::Missing("view"))?;
        Ok(View {
            id: self.view_id(view.id)?,
            members: self.servers(&view.members)?,
        })
    }

    fn key(&self, key: Option<pb::MemberKey>) -> Result<MemberKey, WireError> {
        let key = key.ok_or(WireError::Missing("member key"))?;
        Ok(MemberKey {
            server: ServerId {
                name: self.get(&key.server)?,
                incarnation: key.incarnation,
            },
            session: SessionId(key.session),
        })
    }

    fn member(&self, member: Option<pb::GroupMember>) -> Result<Member, WireError> {
        let member = member.ok_or(WireError::Missing("group member"))?;
        Ok(Member {
            key: self.key(member.key)?,
            private_name: member.private_name,
            capabilities: member.capabilities,
            node: member.node.map(node_from_wire),
        })
    }

    fn table(&self, table: Option<pb::GroupTable>) -> Result<GroupTable, WireError> {
        let table = table.ok_or(WireError::Missing("group table"))?;
        let mut out = GroupTable::default();
        for g in table.groups {
            let members = g
                .members
                .into_iter()
                .map(|m| self.member(Some(m)))
                .collect::<Result<Vec<_>, _>>()?;
            out.set(
                g.group,
                Group {
                    gid: g.gid,
                    members,
                },
            );
        }
        out.raise_floor(table.gid_floor);
        Ok(out)
    }

    fn record(&self, record: Option<pb::InstallRecord>) -> Result<InstallRecord, WireError> {
        let record = record.ok_or(WireError::Missing("install record"))?;
        let mut sources = BTreeMap::new();
        for s in record.sources {
            let source = Source {
                from: self.view_id(s.from)?,
                cut: s.cut,
                keep_below: s.keep_below,
                keep_from: s
                    .keep_from
                    .into_iter()
                    .map(|k| self.server(Some(k)))
                    .collect::<Result<_, _>>()?,
            };
            sources.insert(self.server(s.member)?, source);
        }
        Ok(InstallRecord {
            view: self.view(record.view)?,
            sources,
            table: self.table(record.table)?,
            high_water: self.marks(record.high_water)?,
        })
    }

    fn marks(&self, marks: Vec<pb::OriginMark>) -> Result<BTreeMap<ServerId, u64>, WireError> {
        marks
            .into_iter()
            .map(|m| Ok((self.server(m.origin)?, m.seq)))
            .collect()
    }

    fn row(&self, row: pb::Row) -> Result<Row, WireError> {
        Ok(Row {
            server: self.server(row.server)?,
            version: row.version,
            view: self.view_id(row.view)?,
            answered: row.answered.map(|a| self.view_id(Some(a))).transpose()?,
            links: self.servers(&row.links)?,
        })
    }

    fn op(&self, origins: &[ServerId], op: pb::Op) -> Result<Op, WireError> {
        let origin = origins
            .get(op.origin as usize)
            .ok_or(WireError::BadOrigin(op.origin))?
            .clone();
        let kind = match op.kind.ok_or(WireError::Missing("op kind"))? {
            pb::op::Kind::Publish(p) => OpKind::Publish {
                group: p.group,
                sender: p.sender,
                payload: p.payload,
            },
            pb::op::Kind::Join(j) => OpKind::Join {
                group: j.group,
                member: self.member(j.member)?,
            },
            pb::op::Kind::Leave(l) => OpKind::Leave {
                group: l.group,
                key: self.key(l.key)?,
                reason: change_from_wire(l.reason)?,
            },
        };
        Ok(Op {
            origin,
            origin_seq: op.origin_seq,
            kind,
        })
    }

    fn ops(&self, origins: &[pb::ServerId], ops: Vec<pb::Op>) -> Result<Vec<Op>, WireError> {
        let origins = self.servers(origins)?;
        ops.into_iter().map(|op| self.op(&origins, op)).collect()
    }

    fn flush(&self, f: pb::FlushState) -> Result<FlushState, WireError> {
        let origins = self.servers(&f.origins)?;
        let membership = f
            .membership
            .into_iter()
            .map(|s| {
                let op = s.op.ok_or(WireError::Missing("membership op"))?;
                Ok((s.seq, self.op(&origins, op)?))
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        let held = f
            .held
            .into_iter()
            .map(|r| {
                let origin = origins.get(r.origin as usize);
                let origin = origin.ok_or(WireError::BadOrigin(r.origin))?;
                Ok((origin.clone(), r.origin_seq))
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        Ok(FlushState {
            proposal: self.view_id(f.proposal)?,
            current: self.view_id(f.current)?,
            holds: f.holds.map(|r| self.record(Some(*r))).transpose()?,
            delivered: f.delivered,
            received: f.received,
            stable: f.stable,
            table: self.table(f.table)?,
            membership,
            high_water: self.marks(f.high_water)?,
            held,
        })
    }

    /// A peer message; `None` for a hello (only the first one means anything,
    /// and the mesh reads it itself).
    pub fn decode(&self, msg: pb::PeerMessage) -> Result<Option<PeerMsg>, WireError> {
        let msg = match msg.kind.ok_or(WireError::Missing("message kind"))? {
            Kind::Hello(_) => return Ok(None),
            Kind::Keepalive(k) => PeerMsg::Keepalive {
                sent_us: k.sent_us,
                echo_us: k.echo_us,
            },
            Kind::Rows(r) => PeerMsg::Rows(
                r.rows
                    .into_iter()
                    .map(|row| self.row(row))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Submit(s) => PeerMsg::Submit {
                view: self.view_id(s.view)?,
                ops: self.ops(&s.origins, s.ops)?,
            },
            Kind::Sequenced(s) => PeerMsg::Sequenced {
                view: self.view_id(s.view)?,
                first: s.first,
                ops: self.ops(&s.origins, s.ops)?,
                stable: s.stable,
                acked: s.acked,
            },
            Kind::Fetch(f) => PeerMsg::Fetch {
                proposal: self.view_id(f.proposal)?,
                view: self.view_id(f.view)?,
                lagger: self.server(f.lagger)?,
                after: f.after,
                upto: f.upto,
            },
            Kind::Transfer(t) => PeerMsg::Transfer {
                proposal: self.view_id(t.proposal)?,
                view: self.view_id(t.view)?,
                after: t.after,
                upto: t.upto,
                ops: self.ops(&t.origins, t.ops)?,
            },
            Kind::Progress(p) => PeerMsg::Progress {
                view: self.view_id(p.view)?,
                received: p.received,
                stable: p.stable,
            },
            Kind::Propose(p) => PeerMsg::Propose {
                view: self.view(p.view)?,
            },
            Kind::FlushState(f) => PeerMsg::Flush(Box::new(self.flush(f)?)),
            Kind::Refuse(r) => PeerMsg::Refuse {
                proposal: self.view_id(r.proposal)?,
                known: self.view_id(r.known)?,
            },
            Kind::Install(i) => PeerMsg::Install {
                record: Box::new(self.record(i.record.map(|r| *r))?),
            },
            Kind::InstallAck(a) => PeerMsg::InstallAck {
                view: self.view_id(a.view)?,
            },
            Kind::Commit(c) => PeerMsg::Commit {
                view: self.view_id(c.view)?,
            },
        };
        Ok(Some(msg))
    }

    /// Every message of a frame, in order.
    pub fn decode_frame(&self, frame: pb::PeerFrame) -> Result<Vec<PeerMsg>, WireError> {
        let mut out = Vec::with_capacity(frame.messages.len());
        for msg in frame.messages {
            if let Some(msg) = self.decode(msg)? {
                out.push(msg);
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------- encoding

fn server_to_wire(id: &ServerId) -> pb::ServerId {
    pb::ServerId {
        name: id.name.as_str().to_owned(),
        incarnation: id.incarnation,
    }
}

fn servers_to_wire(ids: &[ServerId]) -> Vec<pb::ServerId> {
    ids.iter().map(server_to_wire).collect()
}

fn view_id_to_wire(id: &ViewId) -> pb::ViewId {
    pb::ViewId {
        epoch: id.epoch,
        proposer: id.proposer.name.as_str().to_owned(),
        proposer_incarnation: id.proposer.incarnation,
    }
}

fn view_to_wire(view: &View) -> pb::View {
    pb::View {
        id: Some(view_id_to_wire(&view.id)),
        members: servers_to_wire(&view.members),
    }
}

fn key_to_wire(key: &MemberKey) -> pb::MemberKey {
    pb::MemberKey {
        server: key.server.name.as_str().to_owned(),
        incarnation: key.server.incarnation,
        session: key.session.0,
    }
}

fn member_to_wire(member: Member) -> pb::GroupMember {
    pb::GroupMember {
        key: Some(key_to_wire(&member.key)),
        private_name: member.private_name,
        capabilities: member.capabilities,
        node: member.node.map(node_to_wire),
    }
}

fn table_to_wire(table: GroupTable) -> pb::GroupTable {
    let gid_floor = table.gid_floor();
    let groups = table
        .iter()
        .map(|(name, g)| pb::GroupState {
            group: name.clone(),
            gid: g.gid,
            members: g.members.iter().cloned().map(member_to_wire).collect(),
        })
        .collect();
    pb::GroupTable { groups, gid_floor }
}

fn record_to_wire(record: InstallRecord) -> pb::InstallRecord {
    pb::InstallRecord {
        view: Some(view_to_wire(&record.view)),
        sources: record
            .sources
            .iter()
            .map(|(member, s)| pb::Source {
                member: Some(server_to_wire(member)),
                from: Some(view_id_to_wire(&s.from)),
                cut: s.cut,
                keep_below: s.keep_below,
                keep_from: s.keep_from.iter().map(server_to_wire).collect(),
            })
            .collect(),
        table: Some(table_to_wire(record.table)),
        high_water: marks_to_wire(&record.high_water),
    }
}

fn marks_to_wire(marks: &BTreeMap<ServerId, u64>) -> Vec<pb::OriginMark> {
    marks
        .iter()
        .map(|(origin, seq)| pb::OriginMark {
            origin: Some(server_to_wire(origin)),
            seq: *seq,
        })
        .collect()
}

fn row_to_wire(row: Row) -> pb::Row {
    pb::Row {
        server: Some(server_to_wire(&row.server)),
        version: row.version,
        view: Some(view_id_to_wire(&row.view)),
        answered: row.answered.as_ref().map(view_id_to_wire),
        links: servers_to_wire(&row.links),
    }
}

/// The distinct origins of a batch of ops, in first-seen order.
#[derive(Default)]
struct Origins(Vec<ServerId>);

impl Origins {
    fn index(&mut self, id: &ServerId) -> u32 {
        let at = match self.0.iter().position(|o| o == id) {
            Some(at) => at,
            None => {
                self.0.push(id.clone());
                self.0.len() - 1
            }
        };
        u32::try_from(at).unwrap_or(u32::MAX)
    }

    fn op(&mut self, op: Op) -> pb::Op {
        let kind = match op.kind {
            OpKind::Publish {
                group,
                sender,
                payload,
            } => pb::op::Kind::Publish(pb::PublishOp {
                group,
                sender,
                payload,
            }),
            OpKind::Join { group, member } => pb::op::Kind::Join(pb::JoinOp {
                group,
                member: Some(member_to_wire(member)),
            }),
            OpKind::Leave { group, key, reason } => pb::op::Kind::Leave(pb::LeaveOp {
                group,
                key: Some(key_to_wire(&key)),
                reason: change_to_wire(reason) as i32,
            }),
        };
        pb::Op {
            origin: self.index(&op.origin),
            origin_seq: op.origin_seq,
            kind: Some(kind),
        }
    }

    fn ops(&mut self, ops: Vec<Op>) -> Vec<pb::Op> {
        ops.into_iter().map(|op| self.op(op)).collect()
    }

    fn into_wire(self) -> Vec<pb::ServerId> {
        servers_to_wire(&self.0)
    }
}

fn flush_to_wire(f: FlushState) -> pb::FlushState {
    let mut origins = Origins::default();
    let membership = f
        .membership
        .into_iter()
        .map(|(seq, op)| pb::SeqOp {
            seq,
            op: Some(origins.op(op)),
        })
        .collect();
    let held = f
        .held
        .iter()
        .map(|(origin, origin_seq)| pb::OpRef {
            origin: origins.index(origin),
            origin_seq: *origin_seq,
        })
        .collect();
    pb::FlushState {
        proposal: Some(view_id_to_wire(&f.proposal)),
        current: Some(view_id_to_wire(&f.current)),
        holds: f.holds.map(|r| Box::new(record_to_wire(r))),
        delivered: f.delivered,
        received: f.received,
        stable: f.stable,
        table: Some(table_to_wire(f.table)),
        origins: origins.into_wire(),
        membership,
        high_water: marks_to_wire(&f.high_water),
        held,
    }
}

/// A peer message for the wire.
pub fn encode(msg: PeerMsg) -> pb::PeerMessage {
    let kind = match msg {
        PeerMsg::Keepalive { sent_us, echo_us } => {
            Kind::Keepalive(pb::Keepalive { sent_us, echo_us })
        }
        PeerMsg::Rows(rows) => Kind::Rows(pb::Rows {
            rows: rows.into_iter().map(row_to_wire).collect(),
        }),
        PeerMsg::Submit { view, ops } => {
            let mut origins = Origins::default();
            let ops = origins.ops(ops);
            Kind::Submit(pb::Submit {
                view: Some(view_id_to_wire(&view)),
                origins: origins.into_wire(),
                ops,
            })
        }
        PeerMsg::Sequenced {
            view,
            first,
            ops,
            stable,
            acked,
        } => {
            let mut origins = Origins::default();
            let ops = origins.ops(ops);
            Kind::Sequenced(pb::Sequenced {
                view: Some(view_id_to_wire(&view)),
                first,
                origins: origins.into_wire(),
                ops,
                stable,
                acked,
            })
        }
        PeerMsg::Fetch {
            proposal,
            view,
            lagger,
            after,
            upto,
        } => Kind::Fetch(pb::Fetch {
            proposal: Some(view_id_to_wire(&proposal)),
            view: Some(view_id_to_wire(&view)),
            lagger: Some(server_to_wire(&lagger)),
            after,
            upto,
        }),
        PeerMsg::Transfer {
            proposal,
            view,
            after,
            upto,
            ops,
        } => {
            let mut origins = Origins::default();
            let ops = origins.ops(ops);
            Kind::Transfer(pb::Transfer {
                proposal: Some(view_id_to_wire(&proposal)),
                view: Some(view_id_to_wire(&view)),
                after,
                upto,
                origins: origins.into_wire(),
                ops,
            })
        }
        PeerMsg::Progress {
            view,
            received,
            stable,
        } => Kind::Progress(pb::Progress {
            view: Some(view_id_to_wire(&view)),
            received,
            stable,
        }),
        PeerMsg::Propose { view } => Kind::Propose(pb::Propose {
            view: Some(view_to_wire(&view)),
        }),
        PeerMsg::Flush(f) => Kind::FlushState(flush_to_wire(*f)),
        PeerMsg::Refuse { proposal, known } => Kind::Refuse(pb::Refuse {
            proposal: Some(view_id_to_wire(&proposal)),
            known: Some(view_id_to_wire(&known)),
        }),
        PeerMsg::Install { record } => Kind::Install(pb::Install {
            record: Some(Box::new(record_to_wire(*record))),
        }),
        PeerMsg::InstallAck { view } => Kind::InstallAck(pb::InstallAck {
            view: Some(view_id_to_wire(&view)),
        }),
        PeerMsg::Commit { view } => Kind::Commit(pb::Commit {
            view: Some(view_id_to_wire(&view)),
        }),
    };
    pb::PeerMessage { kind: Some(kind) }
}

// ---------------------------------------------------------------- client API

fn change_to_wire(change: ChangeKind) -> pb::ViewChange {
    match change {
        ChangeKind::Join => pb::ViewChange::Join,
        ChangeKind::Leave => pb::ViewChange::Leave,
        ChangeKind::ServerLost => pb::ViewChange::ServerLost,
        ChangeKind::PartitionMerge => pb::ViewChange::PartitionMerge,
        ChangeKind::Disconnect => pb::ViewChange::Disconnect,
    }
}

fn change_from_wire(change: i32) -> Result<ChangeKind, WireError> {
    match pb::ViewChange::try_from(change) {
        Ok(pb::ViewChange::Join) => Ok(ChangeKind::Join),
        Ok(pb::ViewChange::Leave) => Ok(ChangeKind::Leave),
        Ok(pb::ViewChange::ServerLost) => Ok(ChangeKind::ServerLost),
        Ok(pb::ViewChange::PartitionMerge) => Ok(ChangeKind::PartitionMerge),
        Ok(pb::ViewChange::Disconnect) => Ok(ChangeKind::Disconnect),
        Ok(pb::ViewChange::Unspecified) | Err(_) => Err(WireError::BadChange(change)),
    }
}

fn node_to_wire(node: NodeRecord) -> pb::NodeRecord {
    pb::NodeRecord {
        node_name: node.node_name,
        subcluster: node.subcluster,
        node_type: node.node_type,
        version: node.version,
        listener_address: node.listener_address,
    }
}

/// A client's node record as the core keeps it.
pub fn node_from_wire(node: pb::NodeRecord) -> NodeRecord {
    NodeRecord {
        node_name: node.node_name,
        subcluster: node.subcluster,
        node_type: node.node_type,
        version: node.version,
        listener_address: node.listener_address,
    }
}

/// A client's hello as the core takes it (an empty name: the core makes one).
pub fn hello_from_wire(hello: pb::Hello) -> msgc_core::Hello {
    msgc_core::Hello {
        client_name: (!hello.client_name.is_empty()).then_some(hello.client_name),
        no_self_delivery: hello.no_self_delivery,
        node: hello.node.map(node_from_wire),
    }
}

/// A position as clients see it (`view_id` is the view's epoch).
pub fn position_to_wire(position: Position) -> pb::Position {
    pb::Position {
        view_id: position.epoch,
        seq: position.seq,
    }
}

/// A member as clients see it (its server by name; the key stays inside).
pub fn member_to_client(member: Member) -> pb::Member {
    pb::Member {
        private_name: member.private_name,
        server: member.key.server.name.as_str().to_owned(),
        capabilities: member.capabilities,
        node: member.node.map(node_to_wire),
    }
}

fn group_view_to_wire(view: GroupView) -> pb::GroupView {
    pb::GroupView {
        group: view.group,
        gid: view.gid,
        change: change_to_wire(view.change) as i32,
        members: view.members.into_iter().map(member_to_client).collect(),
        changed: view.changed,
        position: Some(position_to_wire(view.position)),
    }
}

/// An event for a client.
pub fn event_to_wire(event: Event) -> pb::Event {
    let kind = match event {
        Event::Delivery {
            group,
            sender,
            payload,
            position,
            origin: _,
        } => pb::event::Kind::Delivery(pb::Delivery {
            group,
            sender,
            payload,
            position: Some(position_to_wire(position)),
        }),
        Event::View(view) => pb::event::Kind::View(group_view_to_wire(view)),
    };
    pb::Event { kind: Some(kind) }
}

/// Roughly the encoded size of an event (for frame limits).
pub fn event_size(event: &Event) -> usize {
    match event {
        Event::Delivery {
            group,
            sender,
            payload,
            ..
        } => 24 + group.len() + sender.len() + payload.len(),
        Event::View(view) => {
            32 + view.group.len()
                + view
                    .members
                    .iter()
                    .map(|m| 48 + m.private_name.len() + m.capabilities.len())
                    .sum::<usize>()
        }
    }
}

/// A group with its members, for the admin API.
pub fn group_to_wire(name: String, group: Group) -> pb::GroupInfo {
    let members: Vec<pb::Member> = group.members.into_iter().map(member_to_client).collect();
    pb::GroupInfo {
        group: name,
        gid: group.gid,
        leader: members
            .first()
            .map(|m| m.private_name.clone())
            .unwrap_or_default(),
        members,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prost::Message;

    fn id(name: &str, inc: u64) -> ServerId {
        ServerId::new(name, inc)
    }

    fn names() -> Names {
        Names::new(["a", "b", "c"])
    }

    fn vid(epoch: u64) -> ViewId {
        ViewId {
            epoch,
            proposer: id("a", 7),
        }
    }

    fn member(server: &str, session: u64) -> Member {
        Member {
            key: MemberKey {
                server: id(server, 3),
                session: SessionId(session),
            },
            private_name: format!("#c{session}#{server}"),
            capabilities: Bytes::from_static(b"caps"),
            node: Some(NodeRecord {
                node_name: "n1".into(),
                subcluster: "sub".into(),
                node_type: "mta".into(),
                version: "1".into(),
                listener_address: "10.0.0.1:4802".into(),
            }),
        }
    }

    fn ops() -> Vec<Op> {
        vec![
            Op {
                origin: id("b", 2),
                origin_seq: 1,
                kind: OpKind::Publish {
                    group: "g".into(),
                    sender: "#x#b".into(),
                    payload: Bytes::from_static(b"hi"),
                },
            },
            Op {
                origin: id("c", 9),
                origin_seq: 4,
                kind: OpKind::Join {
                    group: "g".into(),
                    member: member("c", 5),
                },
            },
            Op {
                origin: id("b", 2),
                origin_seq: 2,
                kind: OpKind::Leave {
                    group: "h".into(),
                    key: member("b", 1).key,
                    reason: ChangeKind::Disconnect,
                },
            },
        ]
    }

    fn table() -> GroupTable {
        let mut t = GroupTable::default();
        t.join("g", member("a", 1));
        t.join("g", member("b", 2));
        t.join("gone", member("c", 3));
        t.leave("gone", &member("c", 3).key);
        t
    }

    fn record(epoch: u64) -> InstallRecord {
        let view = View {
            id: vid(epoch),
            members: vec![id("a", 7), id("b", 2)],
        };
        let sources = [
            (
                id("a", 7),
                Source {
                    from: vid(epoch - 1),
                    cut: 10,
                    keep_below: 10,
                    keep_from: vec![id("a", 7)],
                },
            ),
            (
                id("b", 2),
                Source {
                    from: ViewId {
                        epoch: epoch - 2,
                        proposer: id("b", 2),
                    },
                    cut: 3,
                    keep_below: 3,
                    keep_from: vec![],
                },
            ),
        ]
        .into();
        InstallRecord {
            view,
            sources,
            table: table(),
            high_water: [(id("b", 2), 4), (id("c", 9), 1)].into(),
        }
    }

    fn every_message() -> Vec<PeerMsg> {
        vec![
            PeerMsg::Keepalive {
                sent_us: 5,
                echo_us: 0,
            },
            PeerMsg::Rows(vec![
                Row {
                    server: id("b", 2),
                    version: 3,
                    view: vid(4),
                    answered: Some(vid(5)),
                    links: vec![id("a", 7), id("c", 9)],
                },
                Row {
                    server: id("c", 9),
                    version: 1,
                    view: vid(1),
                    answered: None,
                    links: vec![],
                },
            ]),
            PeerMsg::Submit {
                view: vid(4),
                ops: ops(),
            },
            PeerMsg::Sequenced {
                view: vid(4),
                first: 7,
                ops: ops(),
                stable: 6,
                acked: 6,
            },
            PeerMsg::Sequenced {
                view: vid(4),
                first: 10,
                ops: vec![],
                stable: 9,
                acked: 9,
            },
            PeerMsg::Progress {
                view: vid(4),
                received: 9,
                stable: 0,
            },
            PeerMsg::Propose {
                view: record(5).view,
            },
            PeerMsg::Flush(Box::new(FlushState {
                proposal: vid(6),
                current: vid(5),
                holds: Some(record(5)),
                delivered: 3,
                received: 8,
                stable: 2,
                table: table(),
                membership: ops()
                    .into_iter()
                    .skip(1)
                    .enumerate()
                    .map(|(i, op)| (4 + i as u64, op))
                    .collect(),
                high_water: [(id("a", 7), 12)].into(),
                held: vec![(id("b", 2), 5), (id("c", 9), 4), (id("a", 7), 13)],
            })),
            PeerMsg::Refuse {
                proposal: vid(6),
                known: vid(8),
            },
            PeerMsg::Install {
                record: Box::new(record(5)),
            },
            PeerMsg::Fetch {
                proposal: vid(6),
                view: vid(4),
                lagger: id("c", 9),
                after: 3,
                upto: 9,
            },
            PeerMsg::Transfer {
                proposal: vid(6),
                view: vid(4),
                after: 3,
                upto: 9,
                ops: ops(),
            },
            PeerMsg::InstallAck { view: vid(5) },
            PeerMsg::Commit { view: vid(5) },
        ]
    }

    #[test]
    fn every_peer_message_round_trips_through_bytes() {
        let names = names();
        for msg in every_message() {
            let bytes = encode(msg.clone()).encode_to_vec();
            let decoded = pb::PeerMessage::decode(&bytes[..]).unwrap();
            assert_eq!(names.decode(decoded).unwrap(), Some(msg.clone()), "{msg:?}");
        }
    }

    #[test]
    fn a_batch_names_each_origin_once() {
        let pb::PeerMessage {
            kind: Some(Kind::Sequenced(s)),
        } = encode(PeerMsg::Sequenced {
            view: vid(1),
            first: 1,
            ops: ops(),
            stable: 0,
            acked: 0,
        })
        else {
            panic!("not a sequenced batch");
        };
        assert_eq!(s.origins.len(), 2);
        assert_eq!(
            s.ops.iter().map(|o| o.origin).collect::<Vec<_>>(),
            [0, 1, 0]
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let names = names();
        let empty = pb::PeerMessage { kind: None };
        assert_eq!(names.decode(empty), Err(WireError::Missing("message kind")));
        let no_view = pb::PeerMessage {
            kind: Some(Kind::Commit(pb::Commit { view: None })),
        };
        assert_eq!(names.decode(no_view), Err(WireError::Missing("view id")));
        let mut stranger = encode(PeerMsg::Commit { view: vid(1) });
        if let Some(Kind::Commit(c)) = &mut stranger.kind {
            c.view.as_mut().unwrap().proposer = "mallory".into();
        }
        assert_eq!(
            names.decode(stranger),
            Err(WireError::UnknownServer("mallory".into()))
        );
        let mut bad_origin = encode(PeerMsg::Submit {
            view: vid(1),
            ops: ops(),
        });
        if let Some(Kind::Submit(s)) = &mut bad_origin.kind {
            s.ops[0].origin = 9;
        }
        assert_eq!(names.decode(bad_origin), Err(WireError::BadOrigin(9)));
        let mut bad_reason = encode(PeerMsg::Submit {
            view: vid(1),
            ops: ops(),
        });
        if let Some(Kind::Submit(s)) = &mut bad_reason.kind
            && let Some(pb::op::Kind::Leave(l)) = &mut s.ops[2].kind
        {
            l.reason = 99;
        }
        assert_eq!(names.decode(bad_reason), Err(WireError::BadChange(99)));
        let hello = pb::PeerMessage {
            kind: Some(Kind::Hello(pb::PeerHello::default())),
        };
        assert_eq!(names.decode(hello), Ok(None), "a later hello is ignored");
    }

    #[test]
    fn clients_see_epochs_names_and_no_keys() {
        let event = Event::View(GroupView {
            group: "g".into(),
            gid: 4,
            change: ChangeKind::PartitionMerge,
            members: vec![member("b", 2)],
            changed: vec!["#c2#b".into()],
            position: Position { epoch: 6, seq: 11 },
        });
        let Some(pb::event::Kind::View(v)) = event_to_wire(event).kind else {
            panic!("not a view");
        };
        assert_eq!(v.change, pb::ViewChange::PartitionMerge as i32);
        assert_eq!(
            v.position,
            Some(pb::Position {
                view_id: 6,
                seq: 11
            })
        );
        assert_eq!(v.members[0].server, "b");
        assert_eq!(v.members[0].private_name, "#c2#b");
        assert_eq!(v.members[0].node.as_ref().unwrap().node_name, "n1");
        let info = group_to_wire("g".into(), table().get("g").unwrap().clone());
        assert_eq!(info.leader, "#c1#a");
        assert_eq!(info.gid, 2);
        let hello = hello_from_wire(pb::Hello::default());
        assert_eq!(hello.client_name, None);
    }
}
