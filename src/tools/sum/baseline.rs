//! `dist-zero bench --baseline`: what the simulator costs next to a bare event loop doing the
//! sum network's work.
//!
//! The bare loop is a real discrete-event loop — a binary heap of timed events, ties broken by
//! insertion order — over the very users of the benchmark's workload: each user's increments
//! leave its machine at their recorded times, cross the network (the same 20 ± 3 ms latency,
//! first-in first-out per pair of machines) to the one sum node, which batches what arrived and
//! every 30 ms sends the new total to every user's output on that user's machine. It has no
//! runtime: no link layer, no acknowledgements, no retransmission, no persistence, no trace. A
//! second run of the same loop encodes every message as JSON when it is sent and decodes it when
//! it arrives, which is what a runtime that keeps messages as JSON pays at least.
//!
//! Both loops check their result (every output ends at the sum of every increment), so neither
//! can be optimised away.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::apps::sum::{SumSection, UserAction, DEFAULT_SEND_INTERVAL_MS};

/// The latency of the benchmark's network, in microseconds: 20 ± 3 ms.
const LATENCY_US: std::ops::RangeInclusive<u64> = 17_000..=23_000;

/// What one run of the bare loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LoopRun {
    /// Events processed (timers and arrivals).
    pub(super) events: u64,
    /// Messages carried between nodes.
    pub(super) messages: u64,
    /// Whether every output ended at the sum of every increment.
    pub(super) correct: bool,
}

/// How the bare loop carries a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carry {
    /// As a plain Rust value.
    Typed,
    /// Encoded as JSON when sent, decoded when it arrives.
    Json,
}

/// The sum network's one message, as the runtime's JSON would carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Increment { amount: i64, total: i64 },
}

/// A message in flight: its value, or its JSON text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Payload {
    Typed { amount: i64, total: i64 },
    Json(Box<str>),
}

impl Payload {
    fn new(carry: Carry, amount: i64, total: i64) -> Self {
        match carry {
            Carry::Typed => Payload::Typed { amount, total },
            Carry::Json => Payload::Json(
                serde_json::to_string(&Wire::Increment { amount, total })
                    .unwrap_or_default()
                    .into_boxed_str(),
            ),
        }
    }

    /// The message's (amount, total); a message that does not decode counts as nothing.
    fn read(&self) -> (i64, i64) {
        match self {
            Payload::Typed { amount, total } => (*amount, *total),
            Payload::Json(text) => match serde_json::from_str::<Wire>(text) {
                Ok(Wire::Increment { amount, total }) => (amount, total),
                Err(_) => (0, 0),
            },
        }
    }
}

/// An event of the bare loop.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// User `user`'s leaf plays its recorded action `index`.
    Action { user: u32, index: u32 },
    /// User `user`'s report reaches the sum node.
    AtSum { user: u32, payload: Payload },
    /// The sum node's batching timer.
    Tick,
    /// A batch reaches user `user`'s output.
    AtOutput { user: u32, payload: Payload },
}

/// The agenda: events by (time, insertion order).
struct Agenda {
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
}

impl Agenda {
    fn push(&mut self, at_us: u64, event: Event) {
        self.heap.push(Reverse((at_us, self.seq, event)));
        self.seq += 1;
    }
}

/// The network: seeded latencies, first-in first-out per ordered pair of machines.
struct Wires {
    rng: ChaCha8Rng,
    machines: usize,
    tail_us: Vec<u64>,
}

impl Wires {
    fn arrival(&mut self, now_us: u64, from: u32, to: u32) -> u64 {
        let link = from as usize * self.machines + to as usize;
        let at_us = (now_us + self.rng.random_range(LATENCY_US)).max(self.tail_us[link]);
        self.tail_us[link] = at_us;
        at_us
    }
}

/// A user as the bare loop plays it: its machine, when it joins (ms), and its actions (when,
/// after the join, in ms; how much).
type Played = (u32, u64, Vec<(u64, i64)>);

/// Runs the sum network of `section` on `machines` machines for `run_ms` simulated
/// milliseconds in the bare loop, carrying messages as `carry` says.
pub(super) fn run_loop(
    section: &SumSection,
    machines: u32,
    run_ms: u64,
    seed: u64,
    carry: Carry,
) -> LoopRun {
    let machines = machines.max(1);
    let users: Vec<Played> = section
        .users
        .iter()
        .map(|user| {
            let actions = user
                .actions
                .iter()
                .map(|(at, UserAction::Increment { amount })| (at.0, *amount))
                .collect();
            (user.machine.min(machines - 1), user.join_ms.0, actions)
        })
        .collect();
    let mut agenda = Agenda {
        heap: BinaryHeap::new(),
        seq: 0,
    };
    let mut wires = Wires {
        rng: ChaCha8Rng::seed_from_u64(seed),
        machines: machines as usize,
        tail_us: vec![0; machines as usize * machines as usize],
    };
    for (user, (_, join_ms, actions)) in users.iter().enumerate() {
        if let Some((at_ms, _)) = actions.first() {
            let index = 0;
            let event = Event::Action {
                user: user as u32,
                index,
            };
            agenda.push((join_ms + at_ms) * 1000, event);
        }
    }
    const SUM_MACHINE: u32 = 0;
    let mut sent = vec![0i64; users.len()];
    let mut latest = vec![0i64; users.len()];
    let mut outputs = vec![0i64; users.len()];
    let (mut total, mut sent_total, mut tick_pending) = (0i64, 0i64, false);
    let (mut events, mut messages) = (0u64, 0u64);
    let limit_us = run_ms.saturating_mul(1000);
    while let Some(Reverse((now_us, _, event))) = agenda.heap.pop() {
        if now_us > limit_us {
            break;
        }
        events += 1;
        match event {
            Event::Action { user, index } => {
                let (machine, join_ms, actions) = &users[user as usize];
                let Some((_, amount)) = actions.get(index as usize) else {
                    continue;
                };
                let index = index + 1;
                if let Some((at_ms, _)) = actions.get(index as usize) {
                    agenda.push((join_ms + at_ms) * 1000, Event::Action { user, index });
                }
                sent[user as usize] += amount;
                let payload = Payload::new(carry, *amount, sent[user as usize]);
                let at_us = wires.arrival(now_us, *machine, SUM_MACHINE);
                agenda.push(at_us, Event::AtSum { user, payload });
                messages += 1;
            }
            Event::AtSum { user, payload } => {
                let (_, reported) = payload.read();
                let before = std::mem::replace(&mut latest[user as usize], reported);
                total += reported - before;
                if total != sent_total && !tick_pending {
                    tick_pending = true;
                    agenda.push(now_us + DEFAULT_SEND_INTERVAL_MS * 1000, Event::Tick);
                }
            }
            Event::Tick => {
                tick_pending = false;
                if total == sent_total {
                    continue;
                }
                let amount = total - sent_total;
                sent_total = total;
                for (user, (machine, _, _)) in users.iter().enumerate() {
                    let payload = Payload::new(carry, amount, total);
                    let at_us = wires.arrival(now_us, SUM_MACHINE, *machine);
                    let user = user as u32;
                    agenda.push(at_us, Event::AtOutput { user, payload });
                    messages += 1;
                }
            }
            Event::AtOutput { user, payload } => {
                let (_, reported) = payload.read();
                let output = &mut outputs[user as usize];
                *output = (*output).max(reported);
            }
        }
    }
    let expected: i64 = sent.iter().sum();
    LoopRun {
        events,
        messages,
        correct: outputs.iter().all(|output| *output == expected),
    }
}

/// Runs `run` `repeat` times and returns what the last run gave and the fastest wall time in
/// milliseconds.
pub(super) fn best_of<T>(repeat: u32, mut run: impl FnMut() -> T) -> (T, f64) {
    let mut best_ms = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let outcome = run();
        best_ms = best_ms.min(started.elapsed().as_secs_f64() * 1000.0);
        last = Some(outcome);
    }
    match last {
        Some(outcome) => (outcome, best_ms),
        None => unreachable!("every benchmark runs at least once"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Millis;
    use crate::tools::sum::Workload;

    fn section() -> SumSection {
        Workload {
            machines: 5,
            users: 40,
            increments: 6,
            run_ms: Millis(2_000),
            seed: 3,
        }
        .section()
    }

    #[test]
    fn simulated_the_bare_loop_does_the_sum_networks_work() {
        let section = section();
        let typed = run_loop(&section, 5, 2_000, 3, Carry::Typed);
        assert!(typed.correct);
        let increments = 40 * 6;
        // Every increment is a timer and an arrival; every batch reaches every output.
        assert!(typed.messages > increments);
        assert!(typed.events >= 2 * increments + (typed.messages - increments));
        let json = run_loop(&section, 5, 2_000, 3, Carry::Json);
        assert_eq!(json, typed, "JSON changes the cost, not the run");
    }

    #[test]
    fn simulated_a_bare_loop_cut_short_is_not_correct() {
        let section = section();
        let first_ms = section
            .users
            .iter()
            .filter_map(|user| user.actions.first().map(|(at, _)| user.join_ms.0 + at.0))
            .min()
            .expect("some action");
        // The first increment is sent, and has reached no output yet.
        let short = run_loop(&section, 5, first_ms + 1, 3, Carry::Typed);
        assert!(short.messages > 0);
        assert!(!short.correct);
    }
}
