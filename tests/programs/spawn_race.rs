//! The spawn race: a message that can overtake the spawn of the node it is addressed to.
//!
//! A `Relay` (C) runs on machine 1. An `Origin` (A) on machine 0 spawns a `Target` (B) on machine
//! 2 and passes B's handle to C; C at once sends B `MESSAGES` numbered messages. The spawn travels
//! on the link 0→2, the messages on 0→1 and then 1→2, so with the spawn delayed (dropped and
//! resent, held back, cut by a partition) they reach machine 2 before B exists there. Exactly-once
//! delivery means B still receives each of them once, in order.

use dist_zero::hardware::{Hardware, HardwareError};
use dist_zero::messages::{MachineId, Message, NodeHandle};
use dist_zero::node::{MachineController, Node, NodeError, NodeRegistry};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How many messages the relay sends the target.
pub const MESSAGES: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RaceMessage {
    /// To the relay: the target's handle.
    Introduce { target: NodeHandle },
    /// To the target: the `n`th message.
    Hello { n: u32 },
}

impl RaceMessage {
    fn message(&self) -> Result<Message, NodeError> {
        Ok(Message::encode(self)?)
    }
}

fn unexpected(node_type: &'static str, message: &Message) -> NodeError {
    NodeError::UnexpectedMessage {
        node_type,
        kind: message.kind().to_owned(),
    }
}

#[derive(Deserialize)]
struct OriginConfig {
    relay: NodeHandle,
    target_machine: u32,
}

/// A: spawns the target and introduces it to the relay.
struct Origin {
    config: OriginConfig,
    target: Option<NodeHandle>,
}

impl Node for Origin {
    fn start(&mut self, ctl: &mut dyn MachineController) -> Result<(), NodeError> {
        let config = Message::new(json!({"type": "Target"}))?;
        let target = ctl.spawn(MachineId(self.config.target_machine), config)?;
        self.target = Some(target);
        ctl.send(
            self.config.relay,
            RaceMessage::Introduce { target }.message()?,
        );
        Ok(())
    }

    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        Err(unexpected("Origin", message))
    }

    fn state(&self) -> serde_json::Value {
        json!({"target": self.target})
    }
}

/// C: sends the target it is introduced to [`MESSAGES`] numbered messages.
struct Relay;

impl Node for Relay {
    fn receive(
        &mut self,
        ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let RaceMessage::Introduce { target } = message.decode()? else {
            return Err(unexpected("Relay", message));
        };
        for n in 0..MESSAGES {
            ctl.send(target, RaceMessage::Hello { n }.message()?);
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({})
    }
}

/// B: records the numbers it receives, in order.
#[derive(Default)]
struct Target {
    received: Vec<u32>,
}

impl Node for Target {
    fn receive(
        &mut self,
        _ctl: &mut dyn MachineController,
        _sender: Option<NodeHandle>,
        message: &Message,
    ) -> Result<(), NodeError> {
        let RaceMessage::Hello { n } = message.decode()? else {
            return Err(unexpected("Target", message));
        };
        self.received.push(n);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        json!({"received": self.received})
    }
}

/// Adds the three node types to `registry`.
pub fn register(registry: &mut NodeRegistry) {
    registry.register_factory(
        "Origin",
        Box::new(|config| {
            Ok(Box::new(Origin {
                config: config.decode()?,
                target: None,
            }) as Box<dyn Node>)
        }),
    );
    registry.register_factory("Relay", Box::new(|_| Ok(Box::new(Relay) as Box<dyn Node>)));
    registry.register_factory(
        "Target",
        Box::new(|_| Ok(Box::new(Target::default()) as Box<dyn Node>)),
    );
}

/// Starts the relay on machine 1, then the origin on machine 0 (which spawns the target on 2).
pub fn start(hardware: &mut dyn Hardware) -> Result<(), HardwareError> {
    let relay = Message::new(json!({"type": "Relay"})).expect("an object");
    let relay = hardware.spawn(MachineId(1), &relay)?;
    let origin = json!({"type": "Origin", "relay": relay, "target_machine": 2});
    hardware.spawn(MachineId(0), &Message::new(origin).expect("an object"))?;
    Ok(())
}

/// What the target received, if it exists.
pub fn received(hardware: &mut dyn Hardware) -> Result<Option<Vec<u32>>, HardwareError> {
    let states = hardware.node_states()?;
    Ok(states
        .iter()
        .find(|state| state.node_type == "Target")
        .map(|state| {
            serde_json::from_value(state.state["received"].clone())
                .expect("the target's state lists numbers")
        }))
}
