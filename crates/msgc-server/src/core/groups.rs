//! The replicated group table: every server applies the same ops in the same
//! order, so every server holds the same table and every member computes the
//! same leader (the first, longest-standing member).

use std::collections::BTreeMap;

use proto::msgc::v1::{GroupState as WireGroup, Member};

/// One group's membership.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Grows with every membership change.
    pub gid: u32,
    /// Members in join order; the first is the leader.
    pub members: Vec<Member>,
}

impl Group {
    /// Position of the member with this private name.
    fn position(&self, private_name: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.private_name == private_name)
    }

    /// True if the private name is a member.
    pub fn contains(&self, private_name: &str) -> bool {
        self.position(private_name).is_some()
    }
}

/// Every group with members. A group is forgotten when its last member leaves
/// (so memory follows live groups, not every name ever used); a group created
/// later starts above `gid_floor`, the highest gid any forgotten group reached,
/// so a member that leaves and rejoins still sees its gids grow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupTable {
    groups: BTreeMap<String, Group>,
    gid_floor: u32,
}

impl GroupTable {
    /// Adds a member; `None` if it was already a member (the op is a no-op).
    pub fn join(&mut self, group: &str, member: Member) -> Option<&Group> {
        let floor = self.gid_floor;
        let entry = self
            .groups
            .entry(group.to_owned())
            .or_insert_with(|| Group {
                gid: floor,
                members: Vec::new(),
            });
        if entry.contains(&member.private_name) {
            return None;
        }
        entry.members.push(member);
        entry.gid = entry.gid.wrapping_add(1);
        Some(entry)
    }

    /// Removes a member and returns the group as it is now; `None` if it was
    /// not a member.
    pub fn leave(&mut self, group: &str, private_name: &str) -> Option<Group> {
        let entry = self.groups.get_mut(group)?;
        let at = entry.position(private_name)?;
        entry.members.remove(at);
        entry.gid = entry.gid.wrapping_add(1);
        let now = entry.clone();
        if now.members.is_empty() {
            self.groups.remove(group);
            self.gid_floor = self.gid_floor.max(now.gid);
        }
        Some(now)
    }

    /// The gid every newly created group starts above.
    pub fn gid_floor(&self) -> u32 {
        self.gid_floor
    }

    /// The group, if it was ever joined.
    pub fn get(&self, group: &str) -> Option<&Group> {
        self.groups.get(group)
    }

    /// Every group in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Group)> {
        self.groups.iter()
    }

    /// The table as sent in a view change.
    pub fn to_wire(&self) -> Vec<WireGroup> {
        self.groups
            .iter()
            .map(|(name, g)| WireGroup {
                group: name.clone(),
                gid: g.gid,
                members: g.members.clone(),
            })
            .collect()
    }

    /// A table received in a view change.
    pub fn from_wire(groups: Vec<WireGroup>, gid_floor: u32) -> Self {
        Self {
            groups: groups
                .into_iter()
                .filter(|g| !g.members.is_empty())
                .map(|g| {
                    (
                        g.group,
                        Group {
                            gid: g.gid,
                            members: g.members,
                        },
                    )
                })
                .collect(),
            gid_floor,
        }
    }

    /// Sets a group's state outright (used when installing a view); an empty
    /// group is forgotten.
    pub fn set(&mut self, group: String, state: Group) {
        if state.members.is_empty() {
            self.gid_floor = self.gid_floor.max(state.gid);
            self.groups.remove(&group);
        } else {
            self.groups.insert(group, state);
        }
    }

    /// Raises the floor (merging tables from several views).
    pub fn raise_floor(&mut self, floor: u32) {
        self.gid_floor = self.gid_floor.max(floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Member {
        Member {
            private_name: name.to_owned(),
            server: "s".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn join_and_leave_bump_gid_and_keep_join_order() {
        let mut t = GroupTable::default();
        assert_eq!(t.join("g", member("#a#s")).unwrap().gid, 1);
        assert_eq!(t.join("g", member("#b#s")).unwrap().gid, 2);
        assert!(
            t.join("g", member("#a#s")).is_none(),
            "second join is a no-op"
        );
        let g = t.leave("g", "#a#s").unwrap();
        assert_eq!(g.gid, 3);
        assert_eq!(
            g.members[0].private_name, "#b#s",
            "leader moves to the next oldest"
        );
        assert!(t.leave("g", "#a#s").is_none());
        assert!(t.leave("nope", "#a#s").is_none());
        let g = t.leave("g", "#b#s").unwrap();
        assert!(g.members.is_empty());
        assert!(t.get("g").is_none(), "an empty group is forgotten");
        let other = t.join("other", member("#c#s")).unwrap().gid;
        assert_eq!(other, 5, "new groups start above every forgotten gid");
        assert_eq!(t.join("g", member("#c#s")).unwrap().gid, 5);
    }

    #[test]
    fn wire_round_trip() {
        let mut t = GroupTable::default();
        t.join("g1", member("#a#s"));
        t.join("g2", member("#b#s"));
        t.join("g3", member("#c#s"));
        t.leave("g3", "#c#s");
        assert_eq!(GroupTable::from_wire(t.to_wire(), t.gid_floor()), t);
    }
}
