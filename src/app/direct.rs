//! Typed spawning and sending straight on any hardware, for programs that drive the hardware
//! themselves (an application plays on a [`Sim`](crate::system::Sim) instead).

use crate::hardware::{Hardware, HardwareError};
use crate::messages::MachineId;
use crate::node::{config_of, message_for, Handle, TypedNode};

/// Creates a node of type `N` on `machine` of `hardware`, now.
pub fn spawn<N: TypedNode>(
    hardware: &mut dyn Hardware,
    machine: MachineId,
    config: &N::Config,
) -> Result<Handle<N>, HardwareError> {
    let config = config_of::<N>(config).map_err(encoding)?;
    Ok(Handle::assume(hardware.spawn(machine, &config)?))
}

/// Sends `message` to `to` on `hardware`, from outside the system.
pub fn send<N: TypedNode>(
    hardware: &mut dyn Hardware,
    to: Handle<N>,
    message: &N::Message,
) -> Result<(), HardwareError> {
    let message = message_for::<N>(message).map_err(encoding)?;
    hardware.send(to.untyped(), message)
}

fn encoding(error: crate::node::NodeError) -> HardwareError {
    HardwareError::Outside(Box::new(error))
}
