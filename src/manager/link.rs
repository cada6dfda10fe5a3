//! Reliable delivery between two machines: sequence numbers, acknowledgements, retransmission
//! paced by the measured round trip, duplicate suppression and in-order delivery.
//!
//! Every envelope one NodeManager sends another (node messages, spawns, terminations) travels on
//! the link for that ordered pair of machines. So nodes get exactly-once, in-order delivery from
//! the runtime, whatever the network below drops, duplicates or reorders, and a spawn always
//! reaches its machine before any message the same machine sends to the new node afterwards.
//!
//! Loss is detected two ways, as modern TCP does:
//! - **by time order** (RACK, RFC 8985): once a packet is acknowledged, every packet sent before
//!   it (by more than a reordering window, which stays zero until the link has seen reordering)
//!   and still unacknowledged is lost, and is sent again at once;
//! - **by timeout** (RFC 6298, with RFC 8985's rule for what else a timeout reveals): when
//!   nothing new is acknowledged for a retransmission timeout derived from the measured round
//!   trip, the oldest unacknowledged packet is sent again, and with it every packet sent more
//!   than a round trip (plus the reordering window) ago; the timeout doubles. Before any round
//!   trip is measured only the oldest packet goes, and its acknowledgement measures the link.
//!
//! So the number of retransmissions follows what is actually lost, at any latency.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::rtt::RttEstimator;
use super::Envelope;
use crate::messages::NodeId;

/// How long a receiver gathers packets before acknowledging them all at once.
pub const ACK_DELAY_MS: u64 = 5;
/// While packets wait beyond a gap, the receiver acknowledges again after this long, then after
/// twice as long, and so on (up to 256 times as long): if every acknowledgement of the gap was
/// lost, the sender — which may have nothing else to send, and no round trip measured to time
/// out by — still learns what is missing.
pub const GAP_REACK_MS: u64 = 200;
/// The most out-of-order sequence numbers one acknowledgement lists.
const MAX_SELECTIVE_ACKS: usize = 64;

/// A packet to send again: its sequence number, its payload, and the node that sent it.
pub(super) type Resend = (u64, Envelope, Option<NodeId>);

/// A packet sent and not yet acknowledged.
#[derive(Debug)]
struct Pending {
    seq: u64,
    payload: Envelope,
    /// The node that sent it, to credit its counters.
    sender: Option<NodeId>,
    /// When it was last (re)transmitted.
    sent_us: u64,
    /// Whether it was ever sent more than once (its round trip is then ambiguous: Karn's rule).
    retransmitted: bool,
    /// Whether the peer acknowledged it selectively, ahead of a gap. It is kept until the gap is
    /// acknowledged too: a peer that crashes loses what it held beyond the gap (TCP's reneging),
    /// and then it must be sent again.
    sacked: bool,
}

/// What an acknowledgement tells of one packet it settles.
#[derive(Debug, Clone, Copy)]
struct Settled {
    seq: u64,
    sender: Option<NodeId>,
    sent_us: u64,
    retransmitted: bool,
}

impl Settled {
    fn of(pending: &Pending) -> Self {
        Settled {
            seq: pending.seq,
            sender: pending.sender,
            sent_us: pending.sent_us,
            retransmitted: pending.retransmitted,
        }
    }
}

impl Pending {
    fn resend(&mut self, now_us: u64) -> Resend {
        self.sent_us = now_us;
        self.retransmitted = true;
        (self.seq, self.payload.clone(), self.sender)
    }
}

/// One direction of sending and one of receiving between this machine and one peer.
#[derive(Debug, Default)]
pub(super) struct Link {
    next_seq: u64,
    /// Unacknowledged packets in sequence order.
    unacked: VecDeque<Pending>,
    rtt: RttEstimator,
    /// Timeouts in a row without an acknowledgement of anything new.
    backoffs: u32,
    /// Whether the oldest packet was resent because the peer was heard from, since the last
    /// timeout.
    probed: bool,
    /// When the retransmission timer expires; set while packets are unacknowledged.
    deadline_us: Option<u64>,
    /// The earliest wake-up scheduled for this link's timer and not yet fired.
    wake_us: Option<u64>,
    /// The (send time, sequence number) of the most recently sent packet known delivered.
    delivered_mark: (u64, u64),
    /// The highest sequence number known delivered.
    highest_delivered: Option<u64>,
    /// The latest (send time, sequence number) the peer has echoed.
    latest_echo: Option<(u64, u64)>,
    /// Whether a packet was ever delivered after a later-sent one (then a reordering window
    /// applies before a packet is judged lost).
    reordering_seen: bool,
    /// The next sequence number to deliver from the peer.
    next_expected: u64,
    /// Packets from the peer that arrived ahead of a gap.
    early: BTreeMap<u64, Envelope>,
    /// Whether an acknowledgement to the peer is scheduled.
    ack_armed: bool,
    /// Whether an acknowledgement of a gap is scheduled.
    gap_ack_armed: bool,
    /// Acknowledgements of the current gap sent so far.
    gap_acks: u32,
    /// The peer's incarnation whose packets `next_expected` and `early` count.
    peer_sending: u32,
    /// The latest incarnation of the peer heard of (by a packet, an acknowledgement or its
    /// announcement after a reboot).
    peer_known: u32,
    /// Whether a packet arrived since the last acknowledgement.
    echo_fresh: bool,
    /// The (send time, sequence number) of the latest-sent copy received since the last
    /// acknowledgement.
    echo: (u64, u64),
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
    /// Packets found lost, to resend now: (sequence number, payload, sender node).
    pub resend: Vec<Resend>,
    /// When the link's timer must wake up, if that is earlier than any wake-up scheduled.
    pub wake_us: Option<u64>,
}

/// An acknowledgement's content: everything below `upto`, and the listed later packets; and the
/// send time and sequence number of the latest-sent copy received since the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AckRange {
    pub upto: u64,
    pub also: Vec<u64>,
    pub echo_us: u64,
    pub echo_seq: u64,
}

impl Link {
    /// Numbers a payload and keeps it until acknowledged; returns its sequence number and when
    /// the link's timer must wake up, if a wake-up must be scheduled.
    pub(super) fn send(
        &mut self,
        now_us: u64,
        payload: Envelope,
        sender: Option<NodeId>,
    ) -> (u64, Option<u64>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.push_back(Pending {
            seq,
            payload,
            sender,
            sent_us: now_us,
            retransmitted: false,
            sacked: false,
        });
        if self.deadline_us.is_none() {
            self.deadline_us = Some(now_us.saturating_add(self.rtt.backed_off_us(self.backoffs)));
        }
        (seq, self.wake_for_deadline())
    }

    /// Removes acknowledged packets, measures the round trip from the echoed send time, and
    /// finds by time order the packets that are lost (those resent are marked as sent now).
    pub(super) fn acknowledge(&mut self, now_us: u64, ack: &AckRange) -> Acknowledged {
        self.learn_from_echo(now_us, (ack.echo_us, ack.echo_seq));
        let mut acked = Vec::new();
        // Packets are kept in sequence order, so those below `upto` are a prefix. One already
        // acknowledged selectively was credited then.
        while self.unacked.front().is_some_and(|p| p.seq < ack.upto) {
            if let Some(pending) = self.unacked.pop_front().filter(|pending| !pending.sacked) {
                acked.push(Settled::of(&pending));
            }
        }
        if !ack.also.is_empty() {
            let also: BTreeSet<u64> = ack.also.iter().copied().collect();
            for pending in self.unacked.iter_mut() {
                if !pending.sacked && also.contains(&pending.seq) {
                    pending.sacked = true;
                    acked.push(Settled::of(pending));
                }
            }
        }
        self.learn_from(&acked);
        let resend = self.lost_by_time_order(now_us);
        if acked.is_empty() {
            return Acknowledged {
                credited: Vec::new(),
                resend,
                wake_us: None,
            };
        }
        // Something new arrived: the timer restarts from the un-backed-off timeout.
        self.backoffs = 0;
        self.probed = false;
        self.deadline_us =
            (!self.unacked.is_empty()).then(|| now_us.saturating_add(self.rtt.backed_off_us(0)));
        Acknowledged {
            credited: acked.iter().map(|pending| pending.sender).collect(),
            resend,
            wake_us: self.wake_for_deadline(),
        }
    }

    /// Measures the round trip of the copy the peer echoes, and marks it delivered. An echo no
    /// later than one seen before (a late copy) measures nothing.
    fn learn_from_echo(&mut self, now_us: u64, echo: (u64, u64)) {
        if self.latest_echo.is_some_and(|latest| echo <= latest) || echo.0 > now_us {
            return;
        }
        self.latest_echo = Some(echo);
        self.rtt.sample(now_us - echo.0);
        self.delivered_mark = self.delivered_mark.max(echo);
    }

    /// Updates the delivered mark from newly acknowledged packets. Only a packet sent once says
    /// exactly when it was sent; the copy of a resent packet that arrived is told by the echo.
    fn learn_from(&mut self, acked: &[Settled]) {
        for pending in acked.iter().filter(|pending| !pending.retransmitted) {
            if self.highest_delivered.is_some_and(|h| h > pending.seq) {
                self.reordering_seen = true;
            }
            self.delivered_mark = self.delivered_mark.max((pending.sent_us, pending.seq));
        }
        let highest = acked.iter().map(|pending| pending.seq).max();
        self.highest_delivered = self.highest_delivered.max(highest);
    }

    /// How much later than a delivered packet a packet may arrive before it is judged lost: zero
    /// until the link has seen reordering, then a quarter of the shortest round trip.
    fn reordering_window_us(&self) -> u64 {
        if self.reordering_seen {
            self.rtt.min_rtt_us().unwrap_or(0) / 4
        } else {
            0
        }
    }

    /// The unacknowledged packets sent before the most recently sent delivered one (by more than
    /// the reordering window), marked as resent now.
    fn lost_by_time_order(&mut self, now_us: u64) -> Vec<Resend> {
        let window_us = self.reordering_window_us();
        let mark = self.delivered_mark;
        self.unacked
            .iter_mut()
            .filter(|pending| {
                !pending.sacked && (pending.sent_us.saturating_add(window_us), pending.seq) < mark
            })
            .map(|pending| pending.resend(now_us))
            .collect()
    }

    /// Handles the link's timer at `now_us`: if the retransmission timeout has expired, resends
    /// the oldest unacknowledged packet, and every other one sent more than a round trip (plus
    /// the reordering window) ago if the round trip is known, and backs the timeout off. Returns
    /// what to resend and when the timer must wake up next, if it must.
    pub(super) fn on_timer(&mut self, now_us: u64) -> (Vec<Resend>, Option<u64>) {
        if self.wake_us.is_some_and(|wake| wake <= now_us) {
            self.wake_us = None;
        }
        let Some(deadline) = self.deadline_us else {
            return (Vec::new(), None);
        };
        let mut resend = Vec::new();
        if deadline <= now_us {
            let overdue_us = self
                .rtt
                .srtt_us()
                .map(|srtt| srtt.saturating_add(self.reordering_window_us()));
            let mut oldest = true;
            for pending in self.unacked.iter_mut().filter(|pending| !pending.sacked) {
                let overdue =
                    overdue_us.is_some_and(|after| now_us.saturating_sub(pending.sent_us) >= after);
                if oldest || overdue {
                    resend.push(pending.resend(now_us));
                }
                oldest = false;
            }
            self.backoffs = self.backoffs.saturating_add(1);
            self.probed = false;
            self.deadline_us = Some(now_us.saturating_add(self.rtt.backed_off_us(self.backoffs)));
        }
        (resend, self.wake_for_deadline())
    }

    /// The peer was heard from (a packet or an acknowledgement arrived): if this link has timed
    /// out since anything was last acknowledged, the way back may have just opened (a partition
    /// healed, a pause ended), so the oldest packet is resent now instead of at the backed-off
    /// deadline — once per timeout.
    pub(super) fn peer_heard(&mut self, now_us: u64) -> Option<Resend> {
        if self.backoffs == 0 || self.probed {
            return None;
        }
        self.probed = true;
        self.unacked
            .iter_mut()
            .find(|pending| !pending.sacked)
            .map(|oldest| oldest.resend(now_us))
    }

    /// Hears of the peer's incarnation `incarnation` (on a packet, an acknowledgement or an
    /// announcement). If it is newer than any heard before, the peer has rebooted and lost what
    /// it held beyond a gap: every unacknowledged packet is sent again now, and the timer starts
    /// over. Returns what to resend.
    pub(super) fn heard_incarnation(&mut self, now_us: u64, incarnation: u32) -> Vec<Resend> {
        if incarnation <= self.peer_known {
            return Vec::new();
        }
        self.peer_known = incarnation;
        self.backoffs = 0;
        self.probed = false;
        if self.unacked.is_empty() {
            return Vec::new();
        }
        self.deadline_us = Some(now_us.saturating_add(self.rtt.backed_off_us(0)));
        self.unacked
            .iter_mut()
            .map(|pending| {
                pending.sacked = false;
                pending.resend(now_us)
            })
            .collect()
    }

    /// When the link's timer must wake up for its current deadline, if no wake-up is scheduled
    /// at or before it.
    pub(super) fn wake(&mut self) -> Option<u64> {
        self.wake_for_deadline()
    }

    /// Whether a packet of the peer's incarnation `incarnation` belongs to the stream this link
    /// receives: a packet of an older incarnation is stale (its sender crashed since) and is
    /// dropped; the first packet of a newer one starts the stream over from sequence number 0.
    pub(super) fn accepts(&mut self, incarnation: u32) -> bool {
        if incarnation < self.peer_sending {
            return false;
        }
        if incarnation > self.peer_sending {
            self.peer_sending = incarnation;
            self.next_expected = 0;
            self.early.clear();
            self.gap_acks = 0;
            self.echo_fresh = false;
        }
        true
    }

    /// The durable part of the receiving side: which incarnation of the peer this machine has
    /// delivered from, and up to which sequence number.
    pub(super) fn cursor(&self) -> (u32, u64) {
        (self.peer_sending, self.next_expected)
    }

    /// A link of a rebooted machine, receiving from where the crashed incarnation had delivered.
    pub(super) fn resumed(cursor: (u32, u64)) -> Self {
        Link {
            peer_sending: cursor.0,
            peer_known: cursor.0,
            next_expected: cursor.1,
            ..Link::default()
        }
    }

    /// The wake-up to schedule for the current deadline, if none is scheduled at or before it.
    fn wake_for_deadline(&mut self) -> Option<u64> {
        let deadline = self.deadline_us?;
        if self.wake_us.is_some_and(|wake| wake <= deadline) {
            return None;
        }
        self.wake_us = Some(deadline);
        Some(deadline)
    }

    /// Takes in a packet from the peer; returns its payload if it is next in order, and whether
    /// an acknowledgement must be scheduled. A packet ahead of a gap waits in a buffer; once the
    /// gap is filled, [`Link::next_ready`] hands the buffered packets out in order.
    pub(super) fn receive(
        &mut self,
        seq: u64,
        sent_us: u64,
        payload: Envelope,
    ) -> (Received, bool) {
        let schedule_ack = !self.ack_armed;
        self.ack_armed = true;
        if !self.echo_fresh {
            self.echo = (0, 0);
            self.echo_fresh = true;
        }
        self.echo = self.echo.max((sent_us, seq));
        let received = if seq < self.next_expected || self.early.contains_key(&seq) {
            Received {
                deliverable: None,
                duplicate: true,
            }
        } else if seq == self.next_expected {
            self.next_expected += 1;
            self.gap_acks = 0;
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

    /// The acknowledgement to send now. It echoes the latest copy received since the previous
    /// one, or that one's echo again if nothing arrived since.
    pub(super) fn take_ack(&mut self) -> AckRange {
        self.ack_armed = false;
        self.echo_fresh = false;
        let echo = self.echo;
        AckRange {
            echo_us: echo.0,
            echo_seq: echo.1,
            upto: self.next_expected,
            also: self
                .early
                .keys()
                .take(MAX_SELECTIVE_ACKS)
                .copied()
                .collect(),
        }
    }

    /// Lets the shortest round trip measured on any of the machine's links stand in for this
    /// link's own until it has one.
    pub(super) fn set_prior_rtt(&mut self, prior_us: u64) {
        self.rtt.set_prior(prior_us);
    }

    /// The shortest round trip measured on this link, if any.
    pub(super) fn min_rtt_us(&self) -> Option<u64> {
        self.rtt.min_rtt_us()
    }

    /// After an acknowledgement: if packets wait beyond a gap and no acknowledgement of it is
    /// scheduled, how long until the gap is acknowledged again (the wait doubles each time, and
    /// starts over once the gap moves).
    pub(super) fn arm_gap_ack(&mut self) -> Option<u64> {
        if self.early.is_empty() || self.gap_ack_armed {
            return None;
        }
        self.gap_ack_armed = true;
        let after_us = (GAP_REACK_MS * 1000) << self.gap_acks.min(8);
        self.gap_acks = self.gap_acks.saturating_add(1);
        Some(after_us)
    }

    /// The gap acknowledgement's timer fired: whether a gap is still there to acknowledge.
    pub(super) fn gap_ack_due(&mut self) -> bool {
        self.gap_ack_armed = false;
        !self.early.is_empty()
    }

    /// The spawns and terminations sent on this link and not yet acknowledged, in order: what a
    /// machine's disk keeps of its link-layer buffers, so that a crash does not lose a node the
    /// runtime promised.
    pub(super) fn unacknowledged_runtime(&self) -> impl Iterator<Item = &Envelope> {
        self.unacked
            .iter()
            .map(|pending| &pending.payload)
            .filter(|payload| {
                matches!(payload, Envelope::Spawn { .. } | Envelope::Terminate { .. })
            })
    }

    /// How many packets are sent and not yet acknowledged (those acknowledged only selectively
    /// among them).
    pub(super) fn unacknowledged(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::rtt::INITIAL_RTO_MS;

    fn payload(n: u32) -> Envelope {
        Envelope::Terminate {
            id: NodeId {
                origin: 0,
                serial: n,
            },
        }
    }

    /// An acknowledgement that echoes the copy of packet `echo_seq` sent at `echo_us`.
    fn ack(upto: u64, also: &[u64], (echo_us, echo_seq): (u64, u64)) -> AckRange {
        AckRange {
            upto,
            also: also.to_vec(),
            echo_us,
            echo_seq,
        }
    }

    fn seqs(resend: &[Resend]) -> Vec<u64> {
        resend.iter().map(|(seq, _, _)| *seq).collect()
    }

    #[test]
    fn simulated_link_delivers_in_order_and_suppresses_duplicates() {
        let mut link = Link::default();
        let (got, ack_now) = link.receive(1, 700, payload(1));
        assert!(got.deliverable.is_none() && !got.duplicate && ack_now);
        let (got, ack_now) = link.receive(0, 500, payload(0));
        assert_eq!(got.deliverable, Some(payload(0)));
        assert_eq!(link.next_ready(), Some(payload(1)));
        assert_eq!(link.next_ready(), None);
        assert!(!ack_now, "an acknowledgement is already scheduled");
        let (got, _) = link.receive(1, 900, payload(1));
        assert!(got.duplicate && got.deliverable.is_none());
        assert_eq!(
            link.take_ack(),
            ack(2, &[], (900, 1)),
            "echoes the latest copy"
        );
    }

    #[test]
    fn simulated_link_acknowledges_selectively() {
        let mut link = Link::default();
        link.receive(0, 1, payload(0));
        link.receive(2, 3, payload(2));
        link.receive(3, 2, payload(3));
        assert_eq!(link.take_ack(), ack(1, &[2, 3], (3, 2)));
    }

    #[test]
    fn simulated_a_packet_sent_before_a_delivered_one_is_resent_at_once() {
        let mut link = Link::default();
        for n in 0..4 {
            link.send(u64::from(n) * 1000, payload(n), None);
        }
        let settled = link.acknowledge(50_000, &ack(1, &[2], (2000, 2)));
        assert_eq!(settled.credited.len(), 2);
        assert_eq!(
            seqs(&settled.resend),
            vec![1],
            "only what was sent before the latest delivered packet"
        );
        let again = link.acknowledge(52_000, &ack(1, &[2], (2000, 2)));
        assert!(again.resend.is_empty(), "nothing new acknowledged");
        let later = link.acknowledge(60_000, &ack(1, &[2, 3], (3000, 3)));
        assert!(
            later.resend.is_empty(),
            "the resent packet was sent after packet 3, so it is not judged lost again"
        );
    }

    #[test]
    fn simulated_packets_sent_together_are_ordered_by_sequence_number() {
        let mut link = Link::default();
        for n in 0..3 {
            link.send(0, payload(n), None);
        }
        let settled = link.acknowledge(40_000, &ack(0, &[2], (0, 2)));
        assert_eq!(seqs(&settled.resend), vec![0, 1]);
    }

    #[test]
    fn simulated_timeout_resends_only_the_oldest_packet_and_backs_off() {
        let mut link = Link::default();
        let (_, wake) = link.send(0, payload(0), None);
        link.send(10, payload(1), None);
        assert_eq!(wake, Some(INITIAL_RTO_MS * 1000));
        let (resend, next) = link.on_timer(INITIAL_RTO_MS * 1000);
        assert_eq!(seqs(&resend), vec![0]);
        assert_eq!(next, Some(3 * INITIAL_RTO_MS * 1000), "the timeout doubled");
        let (resend, _) = link.on_timer(2 * INITIAL_RTO_MS * 1000);
        assert!(resend.is_empty(), "not due yet");
        let (resend, next) = link.on_timer(3 * INITIAL_RTO_MS * 1000);
        assert_eq!(seqs(&resend), vec![0]);
        assert_eq!(next, Some(7 * INITIAL_RTO_MS * 1000));
    }

    #[test]
    fn simulated_a_timeout_also_resends_what_is_older_than_a_round_trip() {
        let mut link = Link::default();
        link.send(0, payload(0), None);
        link.acknowledge(40_000, &ack(1, &[], (0, 0)));
        link.send(100_000, payload(1), None);
        link.send(150_000, payload(2), None);
        link.send(190_000, payload(3), None);
        // One 40 ms sample: the timeout is 40 + 4 * 20 ms, due at 220 ms.
        let (resend, _) = link.on_timer(220_000);
        assert_eq!(
            seqs(&resend),
            vec![1, 2],
            "the oldest, and what was sent a round trip (40 ms) ago or more"
        );
    }

    #[test]
    fn simulated_the_timeout_follows_the_measured_round_trip() {
        let mut link = Link::default();
        let rtt_us = 120_000_000;
        link.send(0, payload(0), None);
        link.send(0, payload(1), None);
        let settled = link.acknowledge(rtt_us, &ack(1, &[], (0, 0)));
        assert!(settled.resend.is_empty());
        assert_eq!(
            settled.wake_us, None,
            "the wake-up set at the first send comes first"
        );
        let (resend, wake) = link.on_timer(INITIAL_RTO_MS * 1000);
        assert!(resend.is_empty(), "the deadline moved on");
        assert_eq!(
            wake,
            Some(rtt_us + 2 * rtt_us),
            "min(srtt + 4 * rttvar, 2 * min_rtt) after the acknowledgement"
        );
        link.send(rtt_us, payload(2), None);
        let (resend, _) = link.on_timer(rtt_us + rtt_us);
        assert!(resend.is_empty(), "a long round trip is not a loss");
    }

    #[test]
    fn simulated_the_echo_measures_the_copy_that_arrived() {
        let mut link = Link::default();
        link.send(0, payload(0), None);
        // The first copy is lost; the timeout resends it at 200 ms; its copy comes back 40 ms
        // later. Measured from the first send (Karn's ambiguity) the round trip would be 240 ms.
        let (resend, _) = link.on_timer(INITIAL_RTO_MS * 1000);
        assert_eq!(seqs(&resend), vec![0]);
        let settled = link.acknowledge(240_000, &ack(1, &[], (200_000, 0)));
        assert!(settled.resend.is_empty());
        link.send(300_000, payload(1), None);
        let (_, wake) = link.on_timer(300_000);
        assert_eq!(wake, None, "the deadline is already scheduled");
        let (resend, _) = link.on_timer(419_000);
        assert!(resend.is_empty());
        let (resend, _) = link.on_timer(420_000);
        assert_eq!(
            seqs(&resend),
            vec![1],
            "timeout = 40 + 4 * 20 ms, from a 40 ms round trip, not 240 ms"
        );
    }

    #[test]
    fn simulated_an_acknowledgement_of_a_first_copy_marks_nothing_sent_later_lost() {
        let mut link = Link::default();
        link.send(0, payload(0), None);
        link.acknowledge(40_000, &ack(1, &[], (0, 0)));
        link.send(100_000, payload(1), None);
        link.send(290_000, payload(2), None);
        let (resend, _) = link.on_timer(300_000);
        assert_eq!(
            seqs(&resend),
            vec![1],
            "a spurious timeout: packet 2 is younger than a round trip"
        );
        // The first copy of packet 1 arrives after all: the echo tells its send time, so packet
        // 2 (sent after it) is not judged lost.
        let settled = link.acknowledge(305_000, &ack(2, &[], (100_000, 1)));
        assert!(settled.resend.is_empty());
    }

    #[test]
    fn simulated_hearing_from_the_peer_after_a_timeout_resends_the_oldest_packet_once() {
        let mut link = Link::default();
        link.send(0, payload(0), None);
        link.send(0, payload(1), None);
        assert!(link.peer_heard(10_000).is_none(), "no timeout yet");
        link.on_timer(INITIAL_RTO_MS * 1000);
        let probe = link.peer_heard(250_000).map(|(seq, _, _)| seq);
        assert_eq!(probe, Some(0));
        assert!(link.peer_heard(260_000).is_none(), "once per timeout");
        link.on_timer(3 * INITIAL_RTO_MS * 1000);
        assert!(link.peer_heard(700_000).is_some());
    }

    #[test]
    fn simulated_a_gap_is_acknowledged_again_with_backoff_until_it_fills() {
        let mut link = Link::default();
        link.receive(1, 10, payload(1));
        assert_eq!(link.take_ack(), ack(0, &[1], (10, 1)));
        assert_eq!(link.arm_gap_ack(), Some(GAP_REACK_MS * 1000));
        assert_eq!(link.arm_gap_ack(), None, "one at a time");
        assert!(link.gap_ack_due());
        assert_eq!(
            link.take_ack(),
            ack(0, &[1], (10, 1)),
            "nothing new: the same echo again"
        );
        assert_eq!(
            link.arm_gap_ack(),
            Some(2 * GAP_REACK_MS * 1000),
            "backs off"
        );
        assert!(link.gap_ack_due());
        link.receive(0, 20, payload(0));
        assert_eq!(link.next_ready(), Some(payload(1)));
        link.take_ack();
        assert_eq!(link.arm_gap_ack(), None, "no gap left");
    }
}
