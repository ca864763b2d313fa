//! Op transfer during a view change [rule 14c]: when some members of a side
//! hold fewer ops than the cut an install held on that side already gave
//! their view, the proposer has a member that holds them send the rest
//! before it plans, so the whole side can take that cut. (JGroups' FLUSH
//! and Totem's recovery retransmit missing messages the same way.)

use crate::Core;
use crate::ids::{Seq, ServerId, ViewId};
use crate::msg::PeerMsg;
use crate::op::Op;
use crate::plan::Transfer;

/// Ops per transfer message are cut at about this many bytes, so a frame
/// stays well below the transport's message limit whatever the backlog.
const CHUNK_BYTES: usize = 1 << 20;

impl Core {
    /// Proposer: starts the transfers its plan needs.
    pub(crate) fn start_transfers(&mut self, proposal: &ViewId, transfers: Vec<Transfer>) {
        for t in transfers {
            if t.holder == self.me {
                self.send_ops(proposal, &t.lagger, (t.after, t.upto));
            } else {
                let fetch = PeerMsg::Fetch {
                    proposal: proposal.clone(),
                    view: t.view,
                    lagger: t.lagger,
                    after: t.after,
                    upto: t.upto,
                };
                self.send(&t.holder.name, fetch);
            }
        }
    }

    /// Holder: the proposer it answered asks it to send ops to a lagger.
    pub(crate) fn on_fetch(
        &mut self,
        from: &ServerId,
        proposal: &ViewId,
        view: &ViewId,
        lagger: ServerId,
        range: (Seq, Seq),
    ) {
        let answered = self
            .answered
            .as_ref()
            .is_some_and(|(id, proposer)| id == proposal && proposer == from);
        if answered && self.view.id == *view {
            self.send_ops(proposal, &lagger, range);
        }
    }

    /// Sends ops `(after, upto]` of the current view, which this server
    /// holds, in chunks.
    fn send_ops(&mut self, proposal: &ViewId, to: &ServerId, (after, upto): (Seq, Seq)) {
        let delivered = self.order.delivered;
        if after < delivered || upto > self.order.received() || after >= upto {
            tracing::warn!(me = ?self.me, after, upto, delivered, "cannot transfer ops not held");
            return;
        }
        let ops: Vec<Op> = self
            .order
            .held
            .iter()
            .skip(usize::try_from(after - delivered).unwrap_or(usize::MAX))
            .take(usize::try_from(upto - after).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let mut first = after;
        for chunk in chunks(ops) {
            let n = chunk.len() as Seq;
            let msg = PeerMsg::Transfer {
                proposal: proposal.clone(),
                view: self.view.id.clone(),
                after: first,
                upto,
                ops: chunk,
            };
            self.send(&to.name, msg);
            first += n;
        }
    }

    /// Lagger: ops it lacked; once it holds them all, it answers the
    /// proposal again with its new state.
    pub(crate) fn on_transfer(
        &mut self,
        proposal: &ViewId,
        view: &ViewId,
        (after, upto): (Seq, Seq),
        ops: Vec<Op>,
    ) {
        let Some((id, proposer)) = self.answered.clone() else {
            return;
        };
        if id != *proposal || self.view.id != *view || after != self.order.received() {
            return;
        }
        self.order.held.extend(ops);
        if self.order.received() < upto {
            return;
        }
        let state = self.flush_state(proposal);
        if proposer == self.me {
            self.on_flush(&proposer, state);
        } else {
            self.send(&proposer.name, PeerMsg::Flush(Box::new(state)));
        }
    }
}

/// Splits ops into runs of about `CHUNK_BYTES` (at least one op each).
fn chunks(ops: Vec<Op>) -> Vec<Vec<Op>> {
    let mut out: Vec<Vec<Op>> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let w = op.kind.weight();
        match out.last_mut() {
            Some(last) if bytes + w <= CHUNK_BYTES => last.push(op),
            _ => {
                out.push(vec![op]);
                bytes = 0;
            }
        }
        bytes += w;
    }
    out
}
