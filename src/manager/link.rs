//! Reliable delivery between two machines: sequence numbers, acknowledgements, retransmission
//! with backoff, duplicate suppression and in-order delivery.
//!
//! Every envelope one NodeManager sends another (node messages, spawns, terminations) travels on
//! the link for that ordered pair of machines. So nodes get exactly-once, in-order delivery from
//! the runtime, whatever the network below drops, duplicates or reorders, and a spawn always
//! reaches its machine before any message the same machine sends to the new node afterwards.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Envelope;
use crate::messages::NodeId;

/// How long a packet waits for its acknowledgement before it is first retransmitted.
pub const INITIAL_RETRANSMIT_MS: u64 = 100;
/// The longest wait between retransmissions of one packet (the backoff doubles up to this).
/// Kept short so that a link recovers within a fraction of a second of a partition healing.
pub const MAX_RETRANSMIT_MS: u64 = 200;
/// A gap that an acknowledgement reveals is resent at once (fast retransmit), unless the missing
/// packet was itself sent less than this long ago.
pub const FAST_RETRANSMIT_GUARD_MS: u64 = 50;
/// How long a receiver gathers packets before acknowledging them all at once.
pub const ACK_DELAY_MS: u64 = 5;
/// The most out-of-order sequence numbers one acknowledgement lists.
const MAX_SELECTIVE_ACKS: usize = 64;

/// Counters of what the link layer did, kept per node and per machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Packets sent for the first time.
    pub sent: u64,
    /// Packets whose acknowledgement came back.
    pub acknowledged: u64,
    /// Packets sent again because no acknowledgement came in time.
    pub retransmitted: u64,
    /// Packets received again after they had been delivered, and dropped.
    pub duplicates_suppressed: u64,
}

impl LinkCounters {
    /// Adds `other` to these counters.
    pub fn add(&mut self, other: &LinkCounters) {
        self.sent += other.sent;
        self.acknowledged += other.acknowledged;
        self.retransmitted += other.retransmitted;
        self.duplicates_suppressed += other.duplicates_suppressed;
    }
}

/// A packet to send again: its sequence number, its payload, and the node that sent it.
pub(super) type Resend = (u64, Envelope, Option<NodeId>);

/// A packet sent and not yet acknowledged.
#[derive(Debug)]
struct Pending {
    seq: u64,
    payload: Envelope,
    /// The node that sent it, to credit its counters.
    sender: Option<NodeId>,
    last_sent_us: u64,
    attempts: u32,
}

impl Pending {
    fn due_us(&self) -> u64 {
        let backoff = INITIAL_RETRANSMIT_MS
            .saturating_mul(1 << self.attempts.min(16))
            .min(MAX_RETRANSMIT_MS);
        self.last_sent_us + backoff * 1000
    }
}

/// One direction of sending and one of receiving between this machine and one peer.
#[derive(Debug, Default)]
pub(super) struct Link {
    next_seq: u64,
    /// Unacknowledged packets in sequence order.
    unacked: VecDeque<Pending>,
    /// Whether a retransmission check is scheduled.
    retransmit_armed: bool,
    /// The next sequence number to deliver from the peer.
    next_expected: u64,
    /// Packets from the peer that arrived ahead of a gap.
    early: BTreeMap<u64, Envelope>,
    /// Whether an acknowledgement to the peer is scheduled.
    ack_armed: bool,
}

/// What a received packet means for this machine.
pub(super) struct Received {
    /// The packet's payload if it is the next in order (more may follow from
    /// [`Link::next_ready`]).
    pub deliverable: Option<Envelope>,
    /// Whether the packet had already been received.
    pub duplicate: bool,
}

/// What an acknowledgement settled.
pub(super) struct Acknowledged {
    /// The sender node of each packet acknowledged.
    pub credited: Vec<Option<NodeId>>,
    /// Packets to resend now: (sequence number, payload, sender node).
    pub resend: Vec<Resend>,
}

/// An acknowledgement's content: everything below `upto`, and the listed later packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AckRange {
    pub upto: u64,
    pub also: Vec<u64>,
}

impl Link {
    /// Numbers a payload and keeps it until acknowledged; returns its sequence number and
    /// whether a retransmission check must be scheduled.
    pub(super) fn send(
        &mut self,
        now_us: u64,
        payload: Envelope,
        sender: Option<NodeId>,
    ) -> (u64, Option<u64>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pending = Pending {
            seq,
            payload,
            sender,
            last_sent_us: now_us,
            attempts: 0,
        };
        let check = self.arm_retransmit(pending.due_us());
        self.unacked.push_back(pending);
        (seq, check)
    }

    /// Removes acknowledged packets and returns the senders of each, to credit, and the packets
    /// to resend at once: those missing below a packet the peer reports having (a gap), unless
    /// sent very recently. Resent packets are marked as sent now.
    pub(super) fn acknowledge(&mut self, now_us: u64, ack: &AckRange) -> Acknowledged {
        let mut credited = Vec::new();
        // Packets are kept in sequence order, so those below `upto` are a prefix.
        while let Some(pending) = self.unacked.front() {
            if pending.seq >= ack.upto {
                break;
            }
            credited.push(pending.sender);
            self.unacked.pop_front();
        }
        let mut resend = Vec::new();
        if ack.also.is_empty() {
            return Acknowledged { credited, resend };
        }
        let also: BTreeSet<u64> = ack.also.iter().copied().collect();
        self.unacked.retain(|pending| {
            let acked = also.contains(&pending.seq);
            if acked {
                credited.push(pending.sender);
            }
            !acked
        });
        if let Some(highest) = also.last() {
            for pending in self.unacked.iter_mut() {
                if pending.seq > *highest {
                    break;
                }
                if pending.last_sent_us + FAST_RETRANSMIT_GUARD_MS * 1000 <= now_us {
                    pending.last_sent_us = now_us;
                    resend.push((pending.seq, pending.payload.clone(), pending.sender));
                }
            }
        }
        Acknowledged { credited, resend }
    }

    /// The packets whose retransmission is due at `now_us` (marked as resent), and when the
    /// next check is due, if any packet remains unacknowledged.
    pub(super) fn due_retransmissions(&mut self, now_us: u64) -> (Vec<Resend>, Option<u64>) {
        self.retransmit_armed = false;
        let mut due = Vec::new();
        for pending in self.unacked.iter_mut() {
            if pending.due_us() <= now_us {
                pending.attempts += 1;
                pending.last_sent_us = now_us;
                due.push((pending.seq, pending.payload.clone(), pending.sender));
            }
        }
        let next = self.unacked.iter().map(Pending::due_us).min();
        let check = next.and_then(|at| self.arm_retransmit(at));
        (due, check)
    }

    fn arm_retransmit(&mut self, at_us: u64) -> Option<u64> {
        if self.retransmit_armed {
            return None;
        }
        self.retransmit_armed = true;
        Some(at_us)
    }

    /// Takes in a packet from the peer; returns its payload if it is next in order, and whether
    /// an acknowledgement must be scheduled. A packet ahead of a gap waits in a buffer; once the
    /// gap is filled, [`Link::next_ready`] hands the buffered packets out in order.
    pub(super) fn receive(&mut self, seq: u64, payload: Envelope) -> (Received, bool) {
        let schedule_ack = !self.ack_armed;
        self.ack_armed = true;
        let received = if seq < self.next_expected || self.early.contains_key(&seq) {
            Received {
                deliverable: None,
                duplicate: true,
            }
        } else if seq == self.next_expected {
            self.next_expected += 1;
            Received {
                deliverable: Some(payload),
                duplicate: false,
            }
        } else {
            self.early.insert(seq, payload);
            Received {
                deliverable: None,
                duplicate: false,
            }
        };
        (received, schedule_ack)
    }

    /// The next buffered payload that is now in order, if any.
    pub(super) fn next_ready(&mut self) -> Option<Envelope> {
        let next = self.early.remove(&self.next_expected)?;
        self.next_expected += 1;
        Some(next)
    }

    /// The acknowledgement to send now.
    pub(super) fn take_ack(&mut self) -> AckRange {
        self.ack_armed = false;
        AckRange {
            upto: self.next_expected,
            also: self
                .early
                .keys()
                .take(MAX_SELECTIVE_ACKS)
                .copied()
                .collect(),
        }
    }

    /// How many packets are sent and not yet acknowledged.
    pub(super) fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    fn payload(n: u32) -> Envelope {
        Envelope::Terminate {
            id: NodeId {
                origin: 0,
                serial: n,
            },
        }
    }

    #[test]
    fn simulated_link_delivers_in_order_and_suppresses_duplicates() {
        let mut link = Link::default();
        let (got, ack) = link.receive(1, payload(1));
        assert!(got.deliverable.is_none() && !got.duplicate && ack);
        let (got, ack) = link.receive(0, payload(0));
        assert_eq!(got.deliverable, Some(payload(0)));
        assert_eq!(link.next_ready(), Some(payload(1)));
        assert_eq!(link.next_ready(), None);
        assert!(!ack, "an acknowledgement is already scheduled");
        let (got, _) = link.receive(1, payload(1));
        assert!(got.duplicate && got.deliverable.is_none());
        assert_eq!(
            link.take_ack(),
            AckRange {
                upto: 2,
                also: vec![]
            }
        );
    }

    #[test]
    fn simulated_link_acknowledges_selectively() {
        let mut link = Link::default();
        link.receive(0, payload(0));
        link.receive(2, payload(2));
        link.receive(3, payload(3));
        assert_eq!(
            link.take_ack(),
            AckRange {
                upto: 1,
                also: vec![2, 3]
            }
        );
    }

    #[test]
    fn simulated_a_gap_in_an_acknowledgement_is_resent_at_once() {
        let mut link = Link::default();
        for n in 0..4 {
            link.send(0, payload(n), None);
        }
        let settled = link.acknowledge(
            100_000,
            &AckRange {
                upto: 1,
                also: vec![2],
            },
        );
        assert_eq!(settled.credited.len(), 2);
        let resent: Vec<u64> = settled.resend.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(
            resent,
            vec![1],
            "only the gap below the highest packet received"
        );
        let again = link.acknowledge(
            110_000,
            &AckRange {
                upto: 1,
                also: vec![2],
            },
        );
        assert!(again.resend.is_empty(), "not twice within the guard");
    }

    #[test]
    fn simulated_link_retransmits_with_backoff_until_acknowledged() {
        let mut link = Link::default();
        let message = Message::tagged("ping", serde_json::Map::new());
        let sender = Some(NodeId {
            origin: 0,
            serial: 9,
        });
        let deliver = Envelope::Deliver {
            from: None,
            to: NodeId {
                origin: 1,
                serial: 1,
            },
            message,
        };
        let (seq, check) = link.send(0, deliver, sender);
        assert_eq!(check, Some(INITIAL_RETRANSMIT_MS * 1000));
        let (due, next) = link.due_retransmissions(INITIAL_RETRANSMIT_MS * 1000);
        assert_eq!(due.len(), 1);
        assert_eq!(
            next,
            Some(3 * INITIAL_RETRANSMIT_MS * 1000),
            "backoff doubles"
        );
        assert_eq!(
            link.due_retransmissions(3 * INITIAL_RETRANSMIT_MS * 1000).1,
            Some(3 * INITIAL_RETRANSMIT_MS * 1000 + MAX_RETRANSMIT_MS * 1000),
            "and stops doubling at the cap"
        );
        let settled = link.acknowledge(
            200_000,
            &AckRange {
                upto: seq + 1,
                also: vec![],
            },
        );
        assert_eq!(settled.credited, vec![sender]);
        assert!(settled.resend.is_empty());
        assert_eq!(link.unacknowledged(), 0);
        let (due, next) = link.due_retransmissions(10_000_000);
        assert!(due.is_empty() && next.is_none());
    }
}
