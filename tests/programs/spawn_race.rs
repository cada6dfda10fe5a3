//! The spawn race: a message that can overtake the spawn of the node it is addressed to.
//!
//! A `Relay` (C) runs on machine 1. An `Origin` (A) on machine 0 spawns a `Target` (B) on machine
//! 2 and passes B's handle to C; C at once sends B `MESSAGES` numbered messages. The spawn travels
//! on the link 0→2, the messages on 0→1 and then 1→2, so with the spawn delayed (dropped and
//! resent, held back, cut by a partition) they reach machine 2 before B exists there. Exactly-once
//! delivery means B still receives each of them once, in order.

use dist_zero::hardware::{Hardware, HardwareError};
use dist_zero::messages::{MachineId, NodeHandle};
use dist_zero::node::{
    config_of, Ctl, Handle, NoConfig, NoTimer, NodeError, NodeRegistry, TypedNode, Volatile,
};
use serde::{Deserialize, Serialize};

/// How many messages the relay sends the target.
pub const MESSAGES: u32 = 3;

/// What the relay receives: the target's handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToRelay {
    /// Message this node.
    Introduce { target: Handle<Target> },
}

/// What the target receives: numbered messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToTarget {
    /// The `n`th message.
    Hello { n: u32 },
}

/// Messages nobody sends the origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Nothing {}

#[derive(Serialize, Deserialize)]
pub struct OriginConfig {
    relay: Handle<Relay>,
    target_machine: MachineId,
}

/// A: spawns the target and introduces it to the relay.
pub struct Origin {
    config: OriginConfig,
    target: Option<Handle<Target>>,
}

impl TypedNode for Origin {
    const TYPE: &'static str = "Origin";
    type Config = OriginConfig;
    type Message = Nothing;
    type State = Option<NodeHandle>;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(config: OriginConfig) -> Result<Self, NodeError> {
        Ok(Origin {
            config,
            target: None,
        })
    }

    fn start(&mut self, ctl: &mut Ctl<'_, Self>) -> Result<(), NodeError> {
        let target = ctl.spawn::<Target>(self.config.target_machine, &NoConfig {})?;
        self.target = Some(target);
        ctl.send(self.config.relay, &ToRelay::Introduce { target })
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: Nothing,
    ) -> Result<(), NodeError> {
        match message {}
    }

    fn state(&self) -> Option<NodeHandle> {
        self.target.map(NodeHandle::from)
    }
}

/// C: sends the target it is introduced to [`MESSAGES`] numbered messages.
pub struct Relay;

impl TypedNode for Relay {
    const TYPE: &'static str = "Relay";
    type Config = NoConfig;
    type Message = ToRelay;
    type State = ();
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Relay)
    }

    fn receive(
        &mut self,
        ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: ToRelay,
    ) -> Result<(), NodeError> {
        let ToRelay::Introduce { target } = message;
        for n in 0..MESSAGES {
            ctl.send(target, &ToTarget::Hello { n })?;
        }
        Ok(())
    }

    fn state(&self) {}
}

/// B: records the numbers it receives, in order.
pub struct Target {
    received: Vec<u32>,
}

impl TypedNode for Target {
    const TYPE: &'static str = "Target";
    type Config = NoConfig;
    type Message = ToTarget;
    type State = Vec<u32>;
    type Timer = NoTimer;
    type Durable = Volatile;

    fn new(_: NoConfig) -> Result<Self, NodeError> {
        Ok(Target {
            received: Vec::new(),
        })
    }

    fn receive(
        &mut self,
        _ctl: &mut Ctl<'_, Self>,
        _from: Option<NodeHandle>,
        message: ToTarget,
    ) -> Result<(), NodeError> {
        let ToTarget::Hello { n } = message;
        self.received.push(n);
        Ok(())
    }

    fn state(&self) -> Vec<u32> {
        self.received.clone()
    }
}

/// Adds the three node types to `registry`.
pub fn register(registry: &mut NodeRegistry) {
    registry.add::<Origin>();
    registry.add::<Relay>();
    registry.add::<Target>();
}

/// Starts the relay on machine 1, then the origin on machine 0 (which spawns the target on 2).
pub fn start(hardware: &mut dyn Hardware) -> Result<(), HardwareError> {
    let relay = config_of::<Relay>(&NoConfig {}).expect("encodes");
    let relay = Handle::assume(hardware.spawn(MachineId(1), &relay)?);
    let origin = OriginConfig {
        relay,
        target_machine: MachineId(2),
    };
    hardware.spawn(
        MachineId(0),
        &config_of::<Origin>(&origin).expect("encodes"),
    )?;
    Ok(())
}

/// What the target received, if it exists.
pub fn received(hardware: &mut dyn Hardware) -> Result<Option<Vec<u32>>, HardwareError> {
    let states = hardware.node_states()?;
    Ok(states
        .iter()
        .find(|state| state.node_type == Target::TYPE)
        .map(|state| {
            serde_json::from_value(state.state.clone()).expect("the target's state lists numbers")
        }))
}
