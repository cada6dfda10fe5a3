//! The machine's event loop: one task owns the NodeManager and drives it with the real clock,
//! exactly as the simulator drives it with virtual time — envelopes in, effects out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::protocol::{ControlRequest, ControlResponse, MachineStats};
use super::recording::MachineRecorder;
use crate::hardware::faults::SenderFaults;
use crate::manager::{Effect, Envelope, Handled, NodeFailure, NodeManager};
use crate::messages::MachineId;
use crate::node::TimerId;

/// How many node failures a machine remembers as text.
const KEPT_FAILURES: usize = 8;

/// Something for the event loop to do.
pub(crate) enum Input {
    /// An envelope arrived from machine `from`.
    Arrive {
        /// The sending machine.
        from: MachineId,
        /// What it sent.
        envelope: Envelope,
    },
    /// A control request that needs the NodeManager.
    Control {
        /// The request.
        request: ControlRequest,
        /// Where the answer goes.
        reply: oneshot::Sender<ControlResponse>,
    },
}

/// The NodeManager and everything needed to carry out its effects.
pub(crate) struct Core {
    manager: NodeManager,
    started: Instant,
    timers: BTreeMap<(u64, u64), TimerId>,
    next_timer_seq: u64,
    local: VecDeque<Envelope>,
    outbound: Vec<Option<mpsc::UnboundedSender<Envelope>>>,
    stats: MachineStats,
    bad_frames: Arc<AtomicU64>,
    scratch: Vec<Effect>,
    faults: SenderFaults,
    /// The structured trace, if the run asked for it.
    recorder: Option<MachineRecorder>,
}

impl Core {
    /// A loop around `manager`; `outbound[i]` carries envelopes to machine `i` (`None` for this
    /// machine itself, whose envelopes are handled locally).
    pub(crate) fn new(
        manager: NodeManager,
        outbound: Vec<Option<mpsc::UnboundedSender<Envelope>>>,
        bad_frames: Arc<AtomicU64>,
        faults: SenderFaults,
    ) -> Self {
        Core {
            manager,
            started: Instant::now(),
            timers: BTreeMap::new(),
            next_timer_seq: 0,
            local: VecDeque::new(),
            outbound,
            stats: MachineStats::default(),
            bad_frames,
            scratch: Vec::new(),
            faults,
            recorder: None,
        }
    }

    /// Records every event from now on (see [`MachineRecorder`]).
    pub(crate) fn record(&mut self, recorder: MachineRecorder) {
        self.recorder = Some(recorder);
    }

    /// Runs until `inputs` closes or `shutdown` turns true.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next_timer = self.timers.keys().next().map(|(at_us, _)| *at_us);
            let wake_at = self.started + Duration::from_micros(next_timer.unwrap_or(0));
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                input = inputs.recv() => match input {
                    Some(input) => self.on_input(input),
                    None => break,
                },
                () = tokio::time::sleep_until(wake_at), if next_timer.is_some() => self.fire_due(),
            }
            self.drain_local();
            if let Some(recorder) = &mut self.recorder {
                recorder.write();
            }
        }
        if let Some(recorder) = &mut self.recorder {
            recorder.flush();
        }
        tracing::info!(machine = %self.manager.machine(), "event loop stopped");
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Arrive { from, envelope } => {
                tracing::debug!(%from, ?envelope, "arrive");
                self.arrive(Some(from), envelope);
            }
            Input::Control { request, reply } => {
                let response = self.control(request);
                // The requester may have given up (timeout); nothing to do then.
                let _ = reply.send(response);
            }
        }
    }

    /// Hands `envelope`, from machine `from` (`None`: from outside the system), to the
    /// NodeManager.
    fn arrive(&mut self, from: Option<MachineId>, envelope: Envelope) {
        self.stats.events += 1;
        if let Some(recorder) = &mut self.recorder {
            recorder.arrival(from, &envelope);
        }
        let now_us = self.now_us();
        match self.manager.handle(now_us, envelope) {
            Ok(Handled::Done) => {}
            Ok(Handled::NoSuchNode(id)) => {
                tracing::warn!(node = %id, "envelope for a node this machine does not have");
            }
            Ok(Handled::Held(id)) => {
                tracing::info!(node = %id, "envelope waits for its node's spawn");
            }
            Err(failure) => self.failed(&failure),
        }
        self.carry_effects();
    }

    fn fire_due(&mut self) {
        let now_us = self.now_us();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            let timer = entry.remove();
            self.stats.events += 1;
            if let Some(recorder) = &mut self.recorder {
                recorder.timer(timer);
            }
            if let Err(failure) = self.manager.fire_timer(now_us, timer) {
                self.failed(&failure);
            }
            self.carry_effects();
            self.drain_local();
        }
    }

    fn drain_local(&mut self) {
        let me = self.manager.machine();
        while let Some(envelope) = self.local.pop_front() {
            self.arrive(Some(me), envelope);
        }
    }

    fn control(&mut self, request: ControlRequest) -> ControlResponse {
        match request {
            ControlRequest::Status => ControlResponse::Status {
                stats: self.stats(),
            },
            ControlRequest::StartNode { config } => {
                let now_us = self.now_us();
                let started = self.manager.start_node(now_us, &config);
                if let (Some(recorder), Ok(handle)) = (&mut self.recorder, &started) {
                    recorder.spawn(handle.id, config.kind());
                }
                self.carry_effects();
                match started {
                    Ok(handle) => {
                        tracing::info!(node = %handle, kind = config.kind(), "started node");
                        ControlResponse::Started { handle }
                    }
                    Err(failure) => {
                        self.failed(&failure);
                        ControlResponse::Failed {
                            reason: failure.to_string(),
                        }
                    }
                }
            }
            ControlRequest::Deliver { to, message } => {
                let before = self.manager.stats().delivered;
                self.arrive(
                    None,
                    Envelope::Deliver {
                        from: None,
                        to,
                        message,
                    },
                );
                ControlResponse::Delivered {
                    taken: self.manager.stats().delivered > before,
                }
            }
            ControlRequest::NodeStates => ControlResponse::NodeStates {
                nodes: self.manager.node_states(),
            },
            ControlRequest::PingPeer { .. } | ControlRequest::Shutdown => ControlResponse::Failed {
                reason: "not a request for the event loop".into(),
            },
        }
    }

    /// This machine's counters: its own (events, links it could not use) and its
    /// NodeManager's (deliveries, the reliable link layer).
    fn stats(&self) -> MachineStats {
        let manager = self.manager.stats();
        MachineStats {
            bad_frames: self.bad_frames.load(Ordering::Relaxed),
            messages_delivered: manager.delivered,
            undeliverable: self.stats.undeliverable + manager.undeliverable,
            link: manager.link,
            faults: self.faults.counters(),
            waiting_for_spawn: self.manager.waiting_for_spawn() as u64,
            ..self.stats.clone()
        }
    }

    fn failed(&mut self, failure: &NodeFailure) {
        tracing::error!(%failure, "node failed");
        if let Some(recorder) = &mut self.recorder {
            recorder.failure(failure);
        }
        if self.stats.failures.len() < KEPT_FAILURES {
            self.stats.failures.push(failure.to_string());
        }
    }

    fn carry_effects(&mut self) {
        let mut effects = std::mem::take(&mut self.scratch);
        self.manager.drain_effects(&mut effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Transmit { to, envelope } => match self.outbound.get(to.index()) {
                    Some(None) => {
                        if let Some(recorder) = &mut self.recorder {
                            recorder.transmission(to, &envelope, 1);
                        }
                        self.local.push_back(envelope);
                    }
                    Some(Some(link)) => {
                        let copies = self.faults.copies(envelope.kind());
                        if let Some(recorder) = &mut self.recorder {
                            recorder.transmission(to, &envelope, copies);
                        }
                        let sent = match copies {
                            0 => Ok(()),
                            1 => link.send(envelope),
                            _ => link
                                .send(envelope.clone())
                                .and_then(|()| link.send(envelope)),
                        };
                        if sent.is_err() {
                            tracing::warn!(%to, "link to machine is closed; envelope dropped");
                            self.stats.undeliverable += 1;
                        }
                    }
                    None => {
                        tracing::warn!(%to, "envelope for a machine outside the system");
                        self.stats.undeliverable += 1;
                    }
                },
                Effect::Wake { at_us, timer } => {
                    if let Some(recorder) = &mut self.recorder {
                        recorder.timer_set(timer);
                    }
                    let seq = self.next_timer_seq;
                    self.next_timer_seq += 1;
                    self.timers.insert((at_us, seq), timer);
                }
            }
        }
        self.scratch = effects;
    }
}
