//! Events ordered by (time, insertion order): the simulator's agenda, and a machine's timers.

use std::cmp::Reverse;

use dary_heap::QuaternaryHeap;

use crate::time::Micros;

/// Bits of a key given to the slot number; the sequence number gets the other 40 of the low
/// 64 bits (about a trillion events per run).
const SLOT_BITS: u32 = 24;

/// The most events that can be scheduled at once.
pub const MAX_PENDING_EVENTS: usize = 1 << SLOT_BITS;

/// More events are scheduled at once than the queue can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {MAX_PENDING_EVENTS} events are scheduled at once")]
pub struct QueueFull;

/// A priority queue of events keyed by time, ties broken by insertion order, so the order of
/// events never depends on anything but the order the simulation scheduled them in.
///
/// A four-ary heap (half the depth of a binary heap, a node's children on shared cache lines)
/// holds only 16-byte keys — time, sequence number and slot packed into one `u128` — while the
/// events live in a slab of reusable slots. Pops of whole events from a binary heap dominated
/// the profile of large runs.
pub(crate) struct EventQueue<E> {
    heap: QuaternaryHeap<Reverse<u128>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: QuaternaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `at_us`, after everything already scheduled for that time.
    pub(crate) fn push(&mut self, at_us: Micros, event: E) -> Result<(), QueueFull> {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None if self.slots.len() < MAX_PENDING_EVENTS => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
            None => return Err(QueueFull),
        };
        let order = (self.next_seq << SLOT_BITS) | u64::from(slot);
        self.heap
            .push(Reverse((u128::from(at_us.0) << 64) | u128::from(order)));
        self.next_seq += 1;
        Ok(())
    }

    /// Removes and returns the earliest event if it is due at or before `limit_us`.
    pub(crate) fn pop_due(&mut self, limit_us: Micros) -> Option<(Micros, E)> {
        let Reverse(next) = self.heap.peek()?;
        if ((*next >> 64) as u64) > limit_us.0 {
            return None;
        }
        let Reverse(next) = self.heap.pop()?;
        let at_us = Micros((next >> 64) as u64);
        let slot = (next as u32) & ((1 << SLOT_BITS) - 1);
        self.free.push(slot);
        self.slots[slot as usize].take().map(|event| (at_us, event))
    }

    /// When the earliest event is due, if any is scheduled (a machine sleeps until then).
    pub(crate) fn next_at(&self) -> Option<Micros> {
        let Reverse(next) = self.heap.peek()?;
        Some(Micros((*next >> 64) as u64))
    }

    /// How many events are scheduled.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every scheduled event, in no particular order.
    pub(crate) fn pending(&self) -> impl Iterator<Item = &E> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_events_come_out_by_time_then_insertion_order() {
        let mut queue = EventQueue::new();
        for (at, name) in [(5, "c"), (1, "a"), (5, "d"), (1, "b"), (9, "e")] {
            queue.push(Micros(at), name).expect("room");
        }
        assert_eq!(queue.pop_due(Micros(4)), Some((Micros(1), "a")));
        assert_eq!(queue.pop_due(Micros(4)), Some((Micros(1), "b")));
        assert_eq!(queue.pop_due(Micros(4)), None);
        assert_eq!(queue.next_at(), Some(Micros(5)));
        queue.push(Micros(5), "f").expect("room");
        let rest: Vec<_> = std::iter::from_fn(|| queue.pop_due(Micros(100))).collect();
        assert_eq!(
            rest,
            vec![
                (Micros(5), "c"),
                (Micros(5), "d"),
                (Micros(5), "f"),
                (Micros(9), "e")
            ]
        );
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn simulated_reused_slots_keep_insertion_order() {
        let mut queue = EventQueue::new();
        for round in 0..100u64 {
            queue.push(Micros(round), round).expect("room");
            queue.push(Micros(round), round + 1000).expect("room");
            assert_eq!(queue.pop_due(Micros(round)), Some((Micros(round), round)));
            assert_eq!(
                queue.pop_due(Micros(round)),
                Some((Micros(round), round + 1000))
            );
        }
    }
}
