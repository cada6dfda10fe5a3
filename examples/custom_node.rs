//! A library user's own node types, run in the simulator.
//!
//! A `Monitor` on machine 0 spawns one `Worker` on every other machine. Each worker sends the
//! monitor a heartbeat after a random pause (drawn from the machine's seeded generator through
//! `ctl.random()`), again and again; after 200 ms the monitor terminates every worker. Nothing
//! here reads a clock or a global random generator, so the same seed prints the same story.
//!
//! Run it with `cargo run --example custom_node [SEED]`.

use std::error::Error;
use std::sync::Arc;

use dist_zero::faults::NetworkConfig;
use dist_zero::hardware::simulated::SimulationConfig;
use dist_zero::hardware::{Hardware, SimulatedHardware};
use dist_zero::messages::{MachineId, Message, NodeHandle};
use dist_zero::node::{MachineController, Node, NodeError, NodeRegistry};
use serde::Deserialize;
use serde_json::json;

/// How long the monitor lets its workers run, in virtual milliseconds.
const WATCH_MS: u64 = 200;

/// Sends a heartbeat to its monitor after every random pause of 10 to 30 ms.
struct Worker {
    monitor: NodeHandle,
    beats: u64,
}

#[derive(Deserialize)]
struct WorkerConfig {
    monitor: NodeHandle,
}

impl Worker {
    fn from_config(config: WorkerConfig) -> Result<Self, NodeError> {
        Ok(Worker {
            monitor: config.monitor,
            beats: 0,
        })
    }

    fn schedule(ctl: &mut dyn MachineController) {
        let pause = 10 + ctl.random().next_u64() % 21;
        ctl.set_timer(pause, 0);
    }
}

impl Node for Worker {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        Self::schedule(ctl);
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        Err(NodeError::UnexpectedMessage {
            node_type: "Worker",
            kind: message.kind().to_owned(),
        })
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, _tag: u64) -> Result<(), NodeError> {
        self.beats += 1;
        let beat = Message::new(json!({"type": "heartbeat", "beat": self.beats}))?;
        ctl.send(self.monitor, beat);
        Self::schedule(ctl);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({"beats": self.beats})
    }
}

/// Spawns the workers, logs their heartbeats, and terminates them after [`WATCH_MS`].
struct Monitor {
    machines: u32,
    workers: Vec<NodeHandle>,
    log: Vec<String>,
}

#[derive(Deserialize)]
struct MonitorConfig {
    machines: u32,
}

#[derive(Deserialize)]
struct Heartbeat {
    beat: u64,
}

impl Monitor {
    fn from_config(config: MonitorConfig) -> Result<Self, NodeError> {
        Ok(Monitor {
            machines: config.machines,
            workers: Vec::new(),
            log: Vec::new(),
        })
    }
}

impl Node for Monitor {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        for machine in 1..self.machines {
            let config = Message::new(json!({"type": "Worker", "monitor": ctl.me()}))?;
            let worker = ctl.spawn(MachineId(machine), config)?;
            self.log
                .push(format!("{:>4} ms  spawned worker {worker}", ctl.now_ms()));
            self.workers.push(worker);
        }
        ctl.set_timer(WATCH_MS, 0);
        Ok(())
    }

    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let Heartbeat { beat } = message.decode()?;
        let from = sender.map_or_else(|| String::from("outside"), |h| h.to_string());
        self.log.push(format!(
            "{:>4} ms  heartbeat {beat} from {from}",
            ctl.now_ms()
        ));
        Ok(())
    }

    fn timer(&mut self, ctl: &mut dyn MachineController, _tag: u64) -> Result<(), NodeError> {
        for worker in self.workers.drain(..) {
            ctl.terminate(worker);
            self.log
                .push(format!("{:>4} ms  terminated {worker}", ctl.now_ms()));
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({"log": self.log})
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let seed = match std::env::args().nth(1) {
        Some(text) => text.parse::<u64>()?,
        None => 7,
    };

    // Custom node types are registered exactly like the built-in ones.
    let mut registry = NodeRegistry::new();
    registry.register("Monitor", Monitor::from_config);
    registry.register("Worker", Worker::from_config);

    let machines = 3;
    let mut hardware = SimulatedHardware::new(
        SimulationConfig {
            machines,
            seed,
            network: NetworkConfig::default(),
            keep_trace_text: false,
            reliable: true,
        },
        Arc::new(registry),
    )?;
    let monitor = hardware.spawn(
        MachineId(0),
        &Message::new(json!({"type": "Monitor", "machines": machines}))?,
    )?;
    // Run past the terminations: heartbeats already in flight still reach the monitor.
    hardware.run_until(WATCH_MS + 100)?;

    println!(
        "seed {seed}: a monitor on m0 and a worker on each of m1..=m{}",
        machines - 1
    );
    let states = hardware.node_states()?;
    if let Some(node) = states.iter().find(|node| node.handle == monitor) {
        for line in node.state["log"].as_array().into_iter().flatten() {
            println!("  {}", line.as_str().unwrap_or_default());
        }
    }
    let still_running = states
        .iter()
        .filter(|node| node.node_type == "Worker")
        .count();
    let stats = hardware.stats();
    println!(
        "{} ms simulated: {} events, {} messages delivered, {} undeliverable; {} workers left",
        hardware.now_ms(),
        stats.events,
        stats.messages_delivered,
        stats.undeliverable,
        still_running
    );
    println!(
        "trace hash {} (same seed, same hash)",
        hardware.trace().hash()
    );
    Ok(())
}
