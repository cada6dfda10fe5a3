//! The machine's event loop: one task owns the NodeManager and drives it with the real clock,
//! exactly as the simulator drives it with virtual time — envelopes in, effects out.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::recording::MachineRecorder;
use crate::counters::Counters;
use crate::faults::{CompiledRule, Fault, LinkFaults, RuleKind, SenderFaults};
use crate::hardware::carrier::{self, Carrier};
use crate::hardware::queue::{EventQueue, QueueFull};
use crate::hardware::remote::protocol::{ControlRequest, ControlResponse, TRACE_CHUNK};
use crate::manager::{Effect, Envelope, Handled, NodeFailure, NodeManager};
use crate::messages::MachineId;
use crate::node::TimerId;
use crate::observe::merge::host_now_us;
use crate::time::Micros;

/// How far the run's start may be from a machine's wall clock, either way.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(24 * 60 * 60);

/// How many node failures a machine remembers.
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

/// Why a machine refused to start the run's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The run's clock was started already.
    #[error("the run's clock was started already")]
    AlreadyStarted,
    /// Something ran on the machine's own clock already (a node, a timer, an envelope): its
    /// times would jump.
    #[error("the machine has run events on its own clock already")]
    AlreadyRunning,
    /// The start is more than a day away from this host's wall clock: one of the
    /// two clocks is wrong (the runner picks the start just before it sends it).
    #[error("the run's start, {run_start_unix_us} µs since the UNIX epoch, is more than a day away from this machine's clock")]
    TooFar {
        /// The start asked for.
        run_start_unix_us: u64,
    },
}

/// The NodeManager and everything needed to carry out its effects.
pub(crate) struct Core {
    manager: NodeManager,
    /// Time zero of the machine's clock: the run's start once the runner has said when that was
    /// ([`ControlRequest::StartClock`]), the machine's own start until then. A monotonic instant,
    /// so that the clock never goes back whatever the wall clock does afterwards.
    started: Instant,
    /// Whether `started` is the run's start.
    clock_started: bool,
    outbox: Outbox,
    /// The first few node failures.
    failures: Vec<NodeFailure>,
    bad_frames: Arc<AtomicU64>,
    scratch: Vec<Effect>,
    /// Where the machine's disk lives (its image and the run's start), if it keeps one.
    state_dir: Option<PathBuf>,
    /// Whether every write to the disk reaches the device before the machine goes on.
    sync_disk: bool,
    /// Whether events happened since the disk image was last written.
    unsaved_events: bool,
}

/// Writes `bytes` to `name` in `dir` atomically (a file renamed into place); with `sync`, the
/// file and then the directory entry reach the device before it returns.
fn write_file(dir: &Path, name: &str, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let fresh = dir.join(format!("{name}.new"));
    let mut file = std::fs::File::create(&fresh)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&fresh, dir.join(name))?;
    if sync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The machine's disk image in its state directory: what survives a kill of its process.
pub(crate) const DISK_FILE: &str = "disk.json";
/// The run's start in the machine's state directory, for the clock of a machine that rebooted.
pub(crate) const CLOCK_FILE: &str = "clock.json";

/// The run's start, as a rebooted machine reads it back.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunStart {
    /// Microseconds since the UNIX epoch.
    pub(crate) run_start_unix_us: u64,
}

/// Where the machine's effects go: envelopes to this machine's own queue or, through the
/// injected faults, onto the links to the others; timers onto the timer queue.
struct Outbox {
    timers: EventQueue<TimerId>,
    local: VecDeque<Envelope>,
    outbound: Vec<Option<mpsc::UnboundedSender<Envelope>>>,
    faults: SenderFaults,
    /// The partitions and holds in force, as the runner told every machine.
    links: LinkFaults,
    /// What this machine sent on a held link, in order, with the machine it goes to.
    held: Vec<(MachineId, Envelope)>,
    /// What the loop itself counts: events, envelopes for machines it cannot reach.
    counters: Counters,
    /// The structured trace, if the run asked for it.
    recorder: Option<MachineRecorder>,
    /// Whether transmissions to other machines wait for the disk image (the machine keeps a
    /// disk): what an event made leaves the machine only once the image holds the event.
    after_disk: bool,
    /// Transmissions to other machines that wait for the next disk image, in the order they
    /// were made, with how many copies the faults send.
    unsaved: Vec<(MachineId, Envelope, usize)>,
}

/// The most inputs handled before the disk image is written and what they made is sent: under
/// a backlog, one image covers many events (a group commit), and the latency it adds stays
/// bounded.
const INPUTS_PER_IMAGE: usize = 256;

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
            clock_started: false,
            outbox: Outbox {
                timers: EventQueue::new(),
                local: VecDeque::new(),
                outbound,
                faults,
                links: LinkFaults::default(),
                held: Vec::new(),
                counters: Counters::default(),
                recorder: None,
                after_disk: false,
                unsaved: Vec::new(),
            },
            failures: Vec::new(),
            bad_frames,
            scratch: Vec::new(),
            state_dir: None,
            sync_disk: false,
            unsaved_events: false,
        }
    }

    /// Keeps the machine's disk in `dir`: its image ([`DISK_FILE`]) is written before anything
    /// an event made leaves the machine, and the run's start ([`CLOCK_FILE`]) when the clock
    /// starts, so that a process killed and started again boots from them. With `sync`, each
    /// write reaches the device (fsync) before the machine goes on, so that a power cut (an
    /// instance's forced stop) keeps it too.
    pub(crate) fn keep_disk(&mut self, dir: PathBuf, sync: bool) {
        self.state_dir = Some(dir);
        self.sync_disk = sync;
        self.outbox.after_disk = true;
    }

    /// Goes on with the run's clock from `run_start_unix_us` (a machine that rebooted from its
    /// disk), and carries out what its restart asked for: its nodes' timers, the spawns and
    /// terminations it sends again, and the word to every peer that it rebooted.
    pub(crate) fn resume(&mut self, run_start_unix_us: u64) -> Result<(), ClockError> {
        self.count_from(run_start_unix_us)?;
        self.carry_effects();
        self.commit();
        Ok(())
    }

    /// Makes `run_start_unix_us` (on this host's wall clock) the clock's time zero.
    fn count_from(&mut self, run_start_unix_us: u64) -> Result<(), ClockError> {
        self.started = origin(Instant::now(), host_now_us(), run_start_unix_us)
            .ok_or(ClockError::TooFar { run_start_unix_us })?;
        self.clock_started = true;
        Ok(())
    }

    /// Writes the machine's disk image, atomically (a file renamed into place): a kill leaves
    /// the last whole image.
    fn save_disk(&self) {
        let Some(dir) = &self.state_dir else { return };
        let write = || -> std::io::Result<()> {
            let image = serde_json::to_vec(&self.manager.disk()).map_err(std::io::Error::other)?;
            write_file(dir, DISK_FILE, &image, self.sync_disk)
        };
        if let Err(error) = write() {
            tracing::error!(%error, "cannot write the machine's disk image");
        }
    }

    /// Records every event from now on (see [`MachineRecorder`]).
    pub(crate) fn record(&mut self, recorder: MachineRecorder) {
        self.outbox.recorder = Some(recorder);
    }

    /// Runs until `inputs` closes or `shutdown` turns true.
    pub(crate) async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next_timer = self.outbox.timers.next_at();
            let wake_at = self.started + Duration::from_micros(next_timer.unwrap_or_default().0);
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                input = inputs.recv() => match input {
                    Some(input) => {
                        self.on_input(input);
                        self.drain_local();
                        // What else has come already joins this disk image.
                        for _ in 1..INPUTS_PER_IMAGE {
                            let Ok(input) = inputs.try_recv() else { break };
                            self.on_input(input);
                            self.drain_local();
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(wake_at), if next_timer.is_some() => self.fire_due(),
            }
            self.commit();
            if let Some(recorder) = &mut self.outbox.recorder {
                recorder.write();
            }
        }
        if let Some(recorder) = &mut self.outbox.recorder {
            recorder.flush();
        }
        tracing::info!(machine = %self.manager.machine(), "event loop stopped");
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Makes `run_start_unix_us` (on this host's wall clock) time zero, once, before anything
    /// has run.
    fn start_clock(&mut self, run_start_unix_us: u64) -> Result<(), ClockError> {
        if self.clock_started {
            return Err(ClockError::AlreadyStarted);
        }
        let idle = self.outbox.counters.events == 0
            && self.outbox.timers.next_at().is_none()
            && self.manager.node_states().is_empty();
        if !idle {
            return Err(ClockError::AlreadyRunning);
        }
        self.count_from(run_start_unix_us)?;
        if let Some(dir) = &self.state_dir {
            let start = RunStart { run_start_unix_us };
            let written = serde_json::to_vec(&start)
                .map_err(std::io::Error::other)
                .and_then(|json| write_file(dir, CLOCK_FILE, &json, self.sync_disk));
            if let Err(error) = written {
                tracing::error!(%error, "cannot write the run's start to the machine's disk");
            }
        }
        tracing::info!(run_start_unix_us, "the run's clock started");
        Ok(())
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Arrive { from, envelope } => {
                tracing::debug!(%from, ?envelope, "arrive");
                self.arrive(Some(from), envelope);
            }
            Input::Control { request, reply } => {
                let response = self.control(request);
                // What the answer shows is on disk, and what it made has left, before it goes.
                self.drain_local();
                self.commit();
                // The requester may have given up (timeout); nothing to do then.
                let _ = reply.send(response);
            }
        }
    }

    /// Hands `envelope`, from machine `from` (`None`: from outside the system), to the
    /// NodeManager.
    fn arrive(&mut self, from: Option<MachineId>, envelope: Envelope) {
        self.outbox.counters.events += 1;
        if let Some(recorder) = &mut self.outbox.recorder {
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
        while let Some((_, timer)) = self.outbox.timers.pop_due(Micros(now_us)) {
            self.outbox.counters.events += 1;
            if let Some(recorder) = &mut self.outbox.recorder {
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
        while let Some(envelope) = self.outbox.local.pop_front() {
            self.arrive(Some(me), envelope);
        }
    }

    fn control(&mut self, request: ControlRequest) -> ControlResponse {
        match request {
            ControlRequest::Status => ControlResponse::Status {
                counters: self.counters(),
                failures: self.failures.clone(),
            },
            ControlRequest::StartNode { config } => {
                let now_us = self.now_us();
                let started = self.manager.start_node(now_us, &config);
                if let (Some(recorder), Ok(handle)) = (&mut self.outbox.recorder, &started) {
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
                        ControlResponse::NodeFailed { failure }
                    }
                }
            }
            ControlRequest::Deliver { to, message } => {
                let before = self.manager.stats().messages_delivered;
                self.arrive(
                    None,
                    Envelope::Deliver {
                        from: None,
                        to,
                        message,
                    },
                );
                ControlResponse::Delivered {
                    taken: self.manager.stats().messages_delivered > before,
                }
            }
            ControlRequest::DeliverAll { deliveries } => {
                let before = self.manager.stats().messages_delivered;
                for (to, message) in deliveries {
                    let envelope = Envelope::Deliver {
                        from: None,
                        to,
                        message,
                    };
                    self.arrive(None, envelope);
                }
                ControlResponse::DeliveredAll {
                    taken: self.manager.stats().messages_delivered - before,
                }
            }
            ControlRequest::NodeStates => ControlResponse::NodeStates {
                nodes: self.manager.node_states(),
            },
            ControlRequest::ReadTrace { offset } => match &mut self.outbox.recorder {
                Some(recorder) => match recorder.read(offset, TRACE_CHUNK) {
                    Ok((text, end)) => ControlResponse::Trace { text, end },
                    Err(error) => ControlResponse::Failed {
                        reason: format!("cannot read the structured trace: {error}"),
                    },
                },
                None => ControlResponse::Failed {
                    reason: "this machine records no structured trace".into(),
                },
            },
            ControlRequest::Fault { fault } => match self.apply_fault(&fault) {
                Ok(()) => ControlResponse::FaultApplied,
                Err(reason) => ControlResponse::Failed { reason },
            },
            ControlRequest::StartClock { run_start_unix_us } => {
                match self.start_clock(run_start_unix_us) {
                    Ok(()) => ControlResponse::ClockStarted,
                    Err(error) => ControlResponse::Failed {
                        reason: error.to_string(),
                    },
                }
            }
            ControlRequest::Clock => ControlResponse::Clock {
                now_us: self.now_us(),
            },
            ControlRequest::PingPeer { .. } | ControlRequest::Shutdown => ControlResponse::Failed {
                reason: "not a request for the event loop".into(),
            },
        }
    }

    /// Applies a fault verb to this machine's links: what it sends across a partition is lost,
    /// what it sends on a held link waits for the release, and the drop and duplicate rules
    /// strike what it sends. The verbs of the machine itself (pause, crash) are the runner's.
    fn apply_fault(&mut self, fault: &Fault) -> Result<(), String> {
        let me = self.manager.machine();
        let links = &mut self.outbox.links;
        match fault {
            Fault::Partition { cut, groups } => links.partition(*cut, groups),
            Fault::Repair { cut } => links.repair(*cut),
            Fault::Hold { a, b } => links.hold(*a, *b),
            Fault::Release { a, b } => {
                let other = if *a == me { *b } else { *a };
                if links.release(*a, *b) && (*a == me || *b == me) {
                    let (now, kept) = std::mem::take(&mut self.outbox.held)
                        .into_iter()
                        .partition(|(to, _)| *to == other);
                    self.outbox.held = kept;
                    for (to, envelope) in now {
                        // The rules strike it as it leaves now, as they would have then.
                        let _ = self.outbox.transmit(me, to, envelope);
                    }
                }
            }
            Fault::Rule { kind, rule } => {
                let name = match kind {
                    RuleKind::Drop => "drop",
                    RuleKind::Duplicate => "duplicate",
                    RuleKind::Reorder => {
                        return Err("a machine cannot reorder what the real network carries".into())
                    }
                };
                let compiled = rule
                    .as_ref()
                    .map(|rule| CompiledRule::new(name, rule))
                    .transpose()
                    .map_err(|error| error.to_string())?;
                match kind {
                    RuleKind::Drop => self.outbox.faults.set_drop(compiled),
                    _ => self.outbox.faults.set_duplicate(compiled),
                }
            }
            Fault::Pause { .. }
            | Fault::Resume { .. }
            | Fault::Crash { .. }
            | Fault::Restart { .. } => {
                return Err(format!("`{fault}` is for the runner, not for a machine"))
            }
        }
        Ok(())
    }

    /// This machine's counters: its own (events, links it could not use, frames refused), its
    /// NodeManager's (deliveries, the reliable link layer, what is in flight) and its faults'.
    fn counters(&self) -> Counters {
        let own = Counters {
            bad_frames: self.bad_frames.load(Ordering::Relaxed),
            ..self.outbox.counters
        };
        own + self.manager.stats() + self.outbox.faults.counters()
    }

    fn failed(&mut self, failure: &NodeFailure) {
        tracing::error!(%failure, "node failed");
        if let Some(recorder) = &mut self.outbox.recorder {
            recorder.failure(failure);
        }
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(failure.clone());
        }
    }

    /// Writes the disk image, if anything happened since the last, then sends what waited
    /// for it.
    fn commit(&mut self) {
        if self.outbox.unsaved.is_empty() && !self.unsaved_events {
            return;
        }
        self.save_disk();
        self.unsaved_events = false;
        for (to, envelope, copies) in std::mem::take(&mut self.outbox.unsaved) {
            self.outbox.send(to, envelope, copies);
        }
    }

    fn carry_effects(&mut self) {
        // On disk before anything it led to leaves the machine: held in the outbox until the
        // next commit.
        self.unsaved_events = true;
        if let Err(full) =
            carrier::carry_effects(&mut self.manager, &mut self.scratch, &mut self.outbox)
        {
            tracing::error!(%full, "a timer was dropped");
        }
    }
}

/// The monotonic instant that was `run_start_unix_us` on the wall clock, given that the wall
/// clock reads `wall_now_us` at `now`; a start in the future (this host's clock is behind the
/// runner's) is in the future here too, and the clock reads zero until then. `None` if the start
/// is more than [`MAX_CLOCK_SKEW`] away.
fn origin(now: Instant, wall_now_us: u64, run_start_unix_us: u64) -> Option<Instant> {
    let away = Duration::from_micros(wall_now_us.abs_diff(run_start_unix_us));
    if away > MAX_CLOCK_SKEW {
        None
    } else if wall_now_us >= run_start_unix_us {
        now.checked_sub(away)
    } else {
        now.checked_add(away)
    }
}

impl Outbox {
    /// Puts `copies` of `envelope` on the link to `to`.
    fn send(&mut self, to: MachineId, envelope: Envelope, copies: usize) {
        let Some(Some(link)) = self.outbound.get(to.index()) else {
            return;
        };
        let sent = match copies {
            0 => Ok(()),
            1 => link.send(envelope),
            _ => link
                .send(envelope.clone())
                .and_then(|()| link.send(envelope)),
        };
        if sent.is_err() {
            tracing::warn!(%to, "link to machine is closed; envelope dropped");
            self.counters.undeliverable += 1;
        }
    }
}

impl Carrier for Outbox {
    type Error = QueueFull;

    fn transmit(
        &mut self,
        from: MachineId,
        to: MachineId,
        envelope: Envelope,
    ) -> Result<(), QueueFull> {
        if from != to && self.links.is_cut(from, to) {
            self.counters.partitioned += 1;
            if let Some(recorder) = &mut self.recorder {
                recorder.transmission(to, &envelope, 0);
            }
            return Ok(());
        }
        if self.links.is_held(from, to) {
            self.counters.held += 1;
            self.held.push((to, envelope));
            return Ok(());
        }
        match self.outbound.get(to.index()) {
            Some(None) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.transmission(to, &envelope, 1);
                }
                self.local.push_back(envelope);
            }
            Some(Some(_)) => {
                let copies = self.faults.copies(envelope.kind());
                if let Some(recorder) = &mut self.recorder {
                    recorder.transmission(to, &envelope, copies);
                }
                if self.after_disk {
                    self.unsaved.push((to, envelope, copies));
                } else {
                    self.send(to, envelope, copies);
                }
            }
            None => {
                tracing::warn!(%to, "envelope for a machine outside the system");
                self.counters.undeliverable += 1;
            }
        }
        Ok(())
    }

    fn arm(&mut self, _machine: MachineId, at_us: Micros, timer: TimerId) -> Result<(), QueueFull> {
        if let Some(recorder) = &mut self.recorder {
            recorder.timer_set(timer);
        }
        self.timers.push(at_us, timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_a_disk_file_is_replaced_whole_with_or_without_sync() {
        let dir = std::env::temp_dir().join(format!("dz-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        for sync in [false, true] {
            write_file(&dir, DISK_FILE, b"first", sync).expect("written");
            write_file(&dir, DISK_FILE, b"second", sync).expect("written again");
            assert_eq!(std::fs::read(dir.join(DISK_FILE)).expect("read"), b"second");
            assert!(!dir.join(format!("{DISK_FILE}.new")).exists());
        }
        assert!(write_file(&dir.join("missing"), DISK_FILE, b"x", true).is_err());
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn virtual_the_run_start_becomes_the_instant_it_was_on_the_wall_clock() {
        let now = Instant::now();
        let past = origin(now, 10_000_000, 9_750_000).expect("in range");
        assert_eq!(now - past, Duration::from_millis(250));
        let future = origin(now, 10_000_000, 10_040_000).expect("in range");
        assert_eq!(future - now, Duration::from_millis(40));
        assert_eq!(origin(now, 5, 5), Some(now));
    }

    #[test]
    fn virtual_a_start_more_than_a_day_away_is_refused_not_a_panic() {
        let now = Instant::now();
        assert_eq!(origin(now, 10, u64::MAX), None);
        assert_eq!(origin(now, u64::MAX, 0), None);
        let day_us = 24 * 60 * 60 * 1_000_000;
        assert_eq!(origin(now, 2 * day_us, day_us - 1), None);
        assert!(origin(now, 2 * day_us, day_us).is_some());
    }
}
