//! Causal history: for every message in flight, the chain of deliveries that led to it, so that a
//! node's error can be reported with the trace of messages behind it.

use std::fmt;
use std::sync::Arc;

use crate::messages::{Message, NodeHandle};
use crate::time::Micros;

/// The longest chain kept; a longer one is cut back to its newest [`KEEP_AFTER_CUT`] hops.
const MAX_DEPTH: u32 = 64;
const KEEP_AFTER_CUT: usize = 32;

/// What led to an event: the last delivery in its causal chain, if any.
pub(super) type Cause = Option<Arc<Hop>>;

/// One delivery in a causal chain: `from --type--> to` at a virtual time.
#[derive(Debug)]
pub struct Hop {
    at_us: Micros,
    from: Option<NodeHandle>,
    to: NodeHandle,
    message: Message,
    parent: Cause,
    depth: u32,
}

impl Hop {
    /// The hop for a delivery caused by `parent`.
    pub(super) fn after(
        parent: Cause,
        at_us: Micros,
        from: Option<NodeHandle>,
        to: NodeHandle,
        message: Message,
    ) -> Arc<Hop> {
        let parent = match parent {
            Some(parent) if parent.depth >= MAX_DEPTH => Some(cut(&parent)),
            other => other,
        };
        let depth = parent.as_ref().map_or(1, |p| p.depth + 1);
        Arc::new(Hop {
            at_us,
            from,
            to,
            message,
            parent,
            depth,
        })
    }

    /// The chain ending at `self`, oldest first.
    fn chain(self: &Arc<Hop>) -> Vec<Arc<Hop>> {
        let mut hops = Vec::new();
        let mut next = Some(Arc::clone(self));
        while let Some(hop) = next {
            next = hop.parent.clone();
            hops.push(hop);
        }
        hops.reverse();
        hops
    }
}

/// Rebuilds the newest hops of a chain that grew too long, so memory stays bounded while the
/// most recent history (the part that explains a failure) is kept.
fn cut(tip: &Arc<Hop>) -> Arc<Hop> {
    let chain = tip.chain();
    let keep = &chain[chain.len().saturating_sub(KEEP_AFTER_CUT)..];
    let mut rebuilt: Cause = None;
    for (index, hop) in keep.iter().enumerate() {
        rebuilt = Some(Arc::new(Hop {
            at_us: hop.at_us,
            from: hop.from,
            to: hop.to,
            message: hop.message.clone(),
            parent: rebuilt,
            depth: index as u32 + 1,
        }));
    }
    rebuilt.unwrap_or_else(|| Arc::clone(tip))
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self
            .from
            .map_or_else(|| String::from("outside"), |handle| handle.to_string());
        write!(
            f,
            "{:>10.3} ms  {} --{}--> {}",
            self.at_us.as_millis_f64(),
            from,
            self.message.kind(),
            self.to
        )
    }
}

/// The messages of the causal chain ending at `cause`, oldest first, one line each.
pub(super) fn history(cause: Option<&Arc<Hop>>) -> Vec<String> {
    cause
        .map(|tip| tip.chain().iter().map(|hop| hop.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{MachineId, NodeId};

    fn handle(serial: u32) -> NodeHandle {
        NodeHandle {
            id: NodeId { origin: 0, serial },
            machine: MachineId(0),
        }
    }

    #[test]
    fn simulated_long_causal_chains_are_cut_to_their_newest_hops() {
        let message = Message::tagged("ping", serde_json::Map::new());
        let mut tip: Cause = None;
        for step in 0..1000u32 {
            tip = Some(Hop::after(
                tip,
                Micros(u64::from(step)),
                Some(handle(step)),
                handle(step + 1),
                message.clone(),
            ));
        }
        let tip = tip.expect("a chain");
        let chain = tip.chain();
        assert!(chain.len() as u32 <= MAX_DEPTH + 1);
        assert!(chain.len() > KEEP_AFTER_CUT);
        assert_eq!(chain.last().map(|hop| hop.at_us), Some(Micros(999)));
        assert!(chain
            .windows(2)
            .all(|pair| pair[0].at_us.0 + 1 == pair[1].at_us.0));
    }
}
