//! A machine's links to its peers, and what they learn together.

use std::collections::BTreeMap;

use super::disk::Cursor;
use super::link::Link;
use crate::messages::MachineId;

/// The reliable link to each peer machine, by peer.
///
/// The shortest round trip measured on any link is handed to every link as a prior, so that a
/// link that has not measured its own yet (its first packets lost, or cut by a partition) probes
/// at the pace of its siblings rather than backing off blind.
#[derive(Debug, Default)]
pub(super) struct Links {
    by_peer: BTreeMap<MachineId, Link>,
    min_rtt_us: Option<u64>,
}

impl Links {
    /// The link to `peer`, created on first use.
    pub(super) fn to(&mut self, peer: MachineId) -> &mut Link {
        let prior = self.min_rtt_us;
        self.by_peer.entry(peer).or_insert_with(|| {
            let mut link = Link::default();
            if let Some(prior) = prior {
                link.set_prior_rtt(prior);
            }
            link
        })
    }

    /// The link to `peer`, if it exists.
    pub(super) fn get_mut(&mut self, peer: MachineId) -> Option<&mut Link> {
        self.by_peer.get_mut(&peer)
    }

    /// Takes in what the link to `peer` has measured: if it is the shortest round trip of the
    /// machine so far, every link gets it as its prior.
    pub(super) fn measured(&mut self, peer: MachineId) {
        let Some(rtt) = self.by_peer.get(&peer).and_then(Link::min_rtt_us) else {
            return;
        };
        if self.min_rtt_us.is_some_and(|min| min <= rtt) {
            return;
        }
        self.min_rtt_us = Some(rtt);
        for link in self.by_peer.values_mut() {
            link.set_prior_rtt(rtt);
        }
    }

    /// Packets sent and not yet acknowledged, over every link.
    pub(super) fn unacknowledged(&self) -> usize {
        self.by_peer.values().map(Link::unacknowledged).sum()
    }

    /// How far each peer's stream was delivered, by peer.
    pub(super) fn cursors(&self) -> Vec<Cursor> {
        self.by_peer
            .iter()
            .map(|(peer, link)| {
                let (incarnation, next) = link.cursor();
                Cursor {
                    peer: *peer,
                    incarnation,
                    next,
                }
            })
            .filter(|cursor| cursor.next > 0 || cursor.incarnation > 0)
            .collect()
    }

    /// The spawns and terminations sent to each peer and not yet acknowledged, peer by peer.
    pub(super) fn unacknowledged_runtime(&self) -> Vec<(MachineId, super::Envelope)> {
        self.by_peer
            .iter()
            .flat_map(|(peer, link)| {
                link.unacknowledged_runtime()
                    .map(move |payload| (*peer, payload.clone()))
            })
            .collect()
    }

    /// Every peer this machine has a link with.
    pub(super) fn peers(&self) -> Vec<MachineId> {
        self.by_peer.keys().copied().collect()
    }

    /// The links of a rebooted machine: each peer's stream received from its cursor.
    pub(super) fn resumed(cursors: &[Cursor]) -> Self {
        Links {
            by_peer: cursors
                .iter()
                .map(|cursor| {
                    (
                        cursor.peer,
                        Link::resumed((cursor.incarnation, cursor.next)),
                    )
                })
                .collect(),
            min_rtt_us: None,
        }
    }
}
