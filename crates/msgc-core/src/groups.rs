//! The replicated group table: every server delivers the same ops in the same
//! order, so every server of a view holds the same table and every member
//! computes the same leader (the first, longest-standing member).

use std::collections::BTreeMap;

use crate::ids::MemberKey;
use crate::op::{Member, OpKind};

/// One group's membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Grows with every membership change.
    pub gid: u32,
    /// Members in join order; the first is the leader.
    pub members: Vec<Member>,
}

impl Group {
    fn position(&self, key: &MemberKey) -> Option<usize> {
        self.members.iter().position(|m| &m.key == key)
    }

    /// True if the session is a member.
    pub fn contains(&self, key: &MemberKey) -> bool {
        self.position(key).is_some()
    }
}

/// Every group with members. A group is forgotten when its last member leaves
/// (memory follows live groups); a group created later starts above
/// `gid_floor`, the highest gid any forgotten group reached, so gids a member
/// sees keep growing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTable {
    groups: BTreeMap<String, Group>,
    gid_floor: u32,
}

impl GroupTable {
    /// Adds a member; `None` if it was already one (the op is a no-op).
    pub fn join(&mut self, group: &str, member: Member) -> Option<&Group> {
        let floor = self.gid_floor;
        let entry = self
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                gid: floor,
                members: Vec::new(),
            });
        if entry.contains(&member.key) {
            return None;
        }
        entry.members.push(member);
        entry.gid = entry.gid.wrapping_add(1);
        Some(entry)
    }

    /// Removes a member and returns the group as it is now and the member;
    /// `None` if it was not a member.
    pub fn leave(&mut self, group: &str, key: &MemberKey) -> Option<(Group, Member)> {
        let entry = self.groups.get_mut(group)?;
        let at = entry.position(key)?;
        let gone = entry.members.remove(at);
        entry.gid = entry.gid.wrapping_add(1);
        let now = entry.clone();
        if now.members.is_empty() {
            self.groups.remove(group);
            self.gid_floor = self.gid_floor.max(now.gid);
        }
        Some((now, gone))
    }

    /// Applies a join or leave op (publishes change nothing).
    pub fn apply(&mut self, kind: &OpKind) {
        match kind {
            OpKind::Join { group, member } => {
                self.join(group, member.clone());
            }
            OpKind::Leave { group, key, .. } => {
                self.leave(group, key);
            }
            OpKind::Publish { .. } => {}
        }
    }

    /// The gid every newly created group starts above.
    pub fn gid_floor(&self) -> u32 {
        self.gid_floor
    }

    /// Raises the floor (merging tables of several sides).
    pub fn raise_floor(&mut self, floor: u32) {
        self.gid_floor = self.gid_floor.max(floor);
    }

    /// The group, if it has members.
    pub fn get(&self, group: &str) -> Option<&Group> {
        self.groups.get(group)
    }

    /// Every group in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Group)> {
        self.groups.iter()
    }

    /// Number of groups with members.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True if no group has members.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Sets a group outright (building a merged table); an empty group is
    /// forgotten and raises the floor.
    pub fn set(&mut self, group: String, state: Group) {
        if state.members.is_empty() {
            self.gid_floor = self.gid_floor.max(state.gid);
            self.groups.remove(&group);
        } else {
            self.groups.insert(group, state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ServerId, SessionId};

    fn member(session: u64) -> Member {
        Member {
            key: MemberKey {
                server: ServerId::new("s", 1),
                session: SessionId(session),
            },
            private_name: format!("#c{session}#s"),
            capabilities: bytes::Bytes::new(),
            node: None,
        }
    }

    #[test]
    fn join_and_leave_bump_gid_and_keep_join_order() {
        let mut t = GroupTable::default();
        assert_eq!(t.join("g", member(1)).unwrap().gid, 1);
        assert_eq!(t.join("g", member(2)).unwrap().gid, 2);
        assert!(t.join("g", member(1)).is_none(), "second join is a no-op");
        let (g, _) = t.leave("g", &member(1).key).unwrap();
        assert_eq!(g.gid, 3);
        assert_eq!(g.members[0].key, member(2).key, "leader moves on");
        assert!(t.leave("g", &member(1).key).is_none());
        let (g, _) = t.leave("g", &member(2).key).unwrap();
        assert!(g.members.is_empty());
        assert!(t.get("g").is_none(), "an empty group is forgotten");
        assert_eq!(
            t.join("other", member(3)).unwrap().gid,
            5,
            "above the floor"
        );
    }

    #[test]
    fn a_reused_name_is_another_member() {
        let mut t = GroupTable::default();
        let old = member(1);
        let mut new = member(2);
        new.private_name = old.private_name.clone();
        t.join("g", old.clone());
        assert!(t.join("g", new.clone()).is_some(), "new session, same name");
        let (g, _) = t.leave("g", &old.key).unwrap();
        assert_eq!(
            g.members,
            vec![new],
            "the old session's leave keeps the new one"
        );
    }
}
