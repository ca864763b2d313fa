//! A few cores on an instant, lossless network: the normal path and the
//! simplest view changes, end to end (the simulator covers faults).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use msgc_core::*;

struct Net {
    cores: BTreeMap<String, Core>,
    queue: VecDeque<(String, Input)>,
    now: Duration,
    next_link: u64,
    /// (a, b) -> link id of the pair, if up.
    links: BTreeMap<(String, String), LinkId>,
    delivered: BTreeMap<(String, SessionId), Vec<Event>>,
    acked: BTreeMap<(String, SessionId), usize>,
}

fn cfg(name: &str, peers: &[&str]) -> CoreConfig {
    CoreConfig {
        name: ServerName::new(name),
        peers: peers.iter().map(ServerName::new).collect(),
        keepalive_interval: Duration::from_millis(200),
        proposal_timeout: Duration::from_millis(600),
        ready_after: Duration::from_millis(500),
        stuck_after: Duration::from_secs(1),
    }
}

impl Net {
    fn new(names: &[&str]) -> Self {
        let cores = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.to_string(),
                    Core::new(cfg(n, names), 100 + i as u64, Duration::ZERO),
                )
            })
            .collect();
        Self {
            cores,
            queue: VecDeque::new(),
            now: Duration::ZERO,
            next_link: 1,
            links: BTreeMap::new(),
            delivered: BTreeMap::new(),
            acked: BTreeMap::new(),
        }
    }

    fn connect(&mut self, a: &str, b: &str) {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        self.links.insert((a.into(), b.into()), link);
        self.links.insert((b.into(), a.into()), link);
        let ida = self.cores[a].id().clone();
        let idb = self.cores[b].id().clone();
        self.queue
            .push_back((a.into(), Input::LinkUp { peer: idb, link }));
        self.queue
            .push_back((b.into(), Input::LinkUp { peer: ida, link }));
    }

    fn cut(&mut self, a: &str, b: &str) {
        if let Some(link) = self.links.remove(&(a.to_string(), b.to_string())) {
            self.links.remove(&(b.to_string(), a.to_string()));
            self.queue.push_back((
                a.into(),
                Input::LinkDown {
                    peer: ServerName::new(b),
                    link,
                },
            ));
            self.queue.push_back((
                b.into(),
                Input::LinkDown {
                    peer: ServerName::new(a),
                    link,
                },
            ));
        }
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((at, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 200_000, "no quiescence");
            let core = self.cores.get_mut(&at).unwrap();
            core.handle(self.now, input);
            core.handle(self.now, Input::EndOfTurn);
            for effect in core.take_effects() {
                self.apply(&at, effect);
            }
        }
    }

    fn apply(&mut self, at: &str, effect: Effect) {
        match effect {
            Effect::Send { to, link, msg }
                if self.links.get(&(at.to_string(), to.to_string())) == Some(&link) =>
            {
                let peer = ServerName::new(at);
                self.queue.push_back((
                    to.to_string(),
                    Input::Peer {
                        peer,
                        link,
                        msgs: vec![msg],
                    },
                ));
            }
            Effect::Deliver { session, event } => self
                .delivered
                .entry((at.into(), session))
                .or_default()
                .push(event),
            Effect::Acked { session, .. } => {
                *self.acked.entry((at.into(), session)).or_default() += 1
            }
            Effect::CloseLink { peer, link, .. }
                if self.links.get(&(at.to_string(), peer.to_string())) == Some(&link) =>
            {
                self.cut(at, peer.as_str());
            }
            _ => {}
        }
    }

    fn tick(&mut self, by: Duration) {
        self.now += by;
        let names: Vec<String> = self.cores.keys().cloned().collect();
        for n in names {
            self.queue.push_back((n, Input::Tick));
        }
        self.run();
    }

    fn open(&mut self, at: &str, client: &str) -> SessionId {
        let hello = Hello {
            client_name: Some(client.into()),
            ..Hello::default()
        };
        self.cores
            .get_mut(at)
            .unwrap()
            .open_session(self.now, hello)
            .unwrap()
            .id
    }

    fn command(&mut self, at: &str, s: SessionId, op: ClientOp) {
        self.queue
            .push_back((at.into(), Input::Commands(s, vec![op])));
        self.run();
    }

    fn payloads(&self, at: &str, s: SessionId) -> Vec<String> {
        self.delivered
            .get(&(at.to_string(), s))
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Delivery { payload, .. } => {
                    Some(String::from_utf8_lossy(payload).into_owned())
                }
                _ => None,
            })
            .collect()
    }
}

fn join(group: &str) -> ClientOp {
    ClientOp::Join {
        group: group.into(),
        capabilities: Bytes::new(),
    }
}

fn publish(group: &str, text: &str) -> ClientOp {
    ClientOp::Publish {
        group: group.into(),
        payload: Bytes::from(text.to_owned()),
    }
}

fn full_mesh(names: &[&'static str]) -> Net {
    let mut net = Net::new(names);
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            net.connect(a, b);
        }
    }
    net.run();
    net
}

#[test]
fn three_servers_form_one_view() {
    let net = full_mesh(&["a", "b", "c"]);
    for core in net.cores.values() {
        assert!(core.is_active(), "{:?} active", core.id());
        assert_eq!(core.view().members.len(), 3, "{:?}", core.view());
        assert_eq!(core.view().id, net.cores["a"].view().id);
    }
}

#[test]
fn publishes_reach_every_member_in_one_order_and_are_acked() {
    let mut net = full_mesh(&["a", "b", "c"]);
    let sa = net.open("a", "pa");
    let sb = net.open("b", "pb");
    let sc = net.open("c", "pc");
    for (at, s) in [("a", sa), ("b", sb), ("c", sc)] {
        net.command(at, s, join("g"));
    }
    for i in 0..5 {
        net.queue.push_back((
            "b".into(),
            Input::Commands(sb, vec![publish("g", &format!("b{i}"))]),
        ));
        net.queue.push_back((
            "c".into(),
            Input::Commands(sc, vec![publish("g", &format!("c{i}"))]),
        ));
    }
    net.run();
    let order = net.payloads("a", sa);
    assert_eq!(order.len(), 10, "{order:?}");
    assert_eq!(net.payloads("b", sb), order);
    assert_eq!(net.payloads("c", sc), order);
    assert_eq!(net.acked[&("b".to_string(), sb)], 5);
}

#[test]
fn a_cut_server_leaves_and_its_members_are_lost_once() {
    let mut net = full_mesh(&["a", "b", "c"]);
    let sa = net.open("a", "pa");
    let sc = net.open("c", "pc");
    net.command("a", sa, join("g"));
    net.command("c", sc, join("g"));
    net.cut("a", "c");
    net.cut("b", "c");
    net.run();
    net.tick(Duration::from_millis(50));
    assert_eq!(net.cores["a"].view().members.len(), 2);
    let lost: Vec<_> = net.delivered[&("a".to_string(), sa)]
        .iter()
        .filter(|e| matches!(e, Event::View(v) if v.change == ChangeKind::ServerLost))
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(net.cores["c"].view().members.len(), 1);
}

#[test]
fn a_non_transitive_cut_splits_into_cliques() {
    let mut net = full_mesh(&["a", "b", "c"]);
    net.cut("a", "c");
    net.run();
    net.tick(Duration::from_millis(250));
    let names = |n: &str| -> Vec<String> {
        net.cores[n]
            .view()
            .members
            .iter()
            .map(|m| m.name.to_string())
            .collect()
    };
    assert_eq!(names("a"), ["a", "b"]);
    assert_eq!(names("b"), ["a", "b"]);
    assert_eq!(names("c"), ["c"]);
    assert!(net.cores.values().all(Core::is_active));
}

#[test]
fn a_healed_partition_merges_and_announces_the_rejoined() {
    let mut net = full_mesh(&["a", "b", "c"]);
    let sa = net.open("a", "pa");
    let sc = net.open("c", "pc");
    net.command("a", sa, join("g"));
    net.command("c", sc, join("g"));
    net.cut("a", "c");
    net.cut("b", "c");
    net.run();
    // A smaller component is proposed after a quarter keepalive interval.
    net.tick(Duration::from_millis(50));
    net.connect("a", "c");
    net.connect("b", "c");
    net.run();
    net.tick(Duration::from_millis(50));
    assert!(
        net.cores
            .values()
            .all(|c| c.view().members.len() == 3 && c.is_active())
    );
    let merges = net.delivered[&("c".to_string(), sc)]
        .iter()
        .filter(|e| matches!(e, Event::View(v) if v.change == ChangeKind::PartitionMerge))
        .count();
    assert_eq!(merges, 1);
    net.command("a", sa, publish("g", "after"));
    assert_eq!(net.payloads("c", sc), ["after"]);
}
