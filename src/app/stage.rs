//! What an application sees while it plays its scenario: typed spawning and sending, and time
//! that moves only when it waits.

use crate::hardware::{Hardware, HardwareError};
use crate::messages::MachineId;
use crate::node::{config_of, message_for, Handle, TypedNode};
use crate::scenario::{Progress, RunError};
use crate::time::Millis;

/// How many times at most the runner stops on its way to a time (to move the progress bar and
/// check the application's invariant).
const STEPS: u64 = 200;
/// The shortest step.
const MIN_STEP: Millis = Millis(50);

/// The system under a scenario, as an application drives it.
pub struct Stage<'a> {
    hardware: &'a mut dyn Hardware,
    progress: &'a Progress,
    invariant: &'a dyn Fn(&mut dyn Hardware) -> Result<(), RunError>,
}

impl<'a> Stage<'a> {
    /// A stage over `hardware` that moves `progress` and checks `invariant` as time passes.
    pub fn new(
        hardware: &'a mut dyn Hardware,
        progress: &'a Progress,
        invariant: &'a dyn Fn(&mut dyn Hardware) -> Result<(), RunError>,
    ) -> Self {
        Stage {
            hardware,
            progress,
            invariant,
        }
    }

    /// How many machines the system has.
    pub fn machines(&self) -> u32 {
        u32::try_from(self.hardware.machine_count()).unwrap_or(u32::MAX)
    }

    /// The system's time.
    pub fn now_ms(&self) -> Millis {
        Millis(self.hardware.now_ms())
    }

    /// Creates a node of type `N` on `machine`, now.
    pub fn spawn<N: TypedNode>(
        &mut self,
        machine: MachineId,
        config: &N::Config,
    ) -> Result<Handle<N>, RunError> {
        Ok(spawn::<N>(self.hardware, machine, config)?)
    }

    /// Sends `message` to `to` from outside the system.
    pub fn send<N: TypedNode>(
        &mut self,
        to: Handle<N>,
        message: &N::Message,
    ) -> Result<(), RunError> {
        Ok(send::<N>(self.hardware, to, message)?)
    }

    /// Lets the system run until `at` (nothing happens if that is past), in at most a couple of
    /// hundred steps, moving the progress bar and checking the invariant at each.
    pub fn wait_until(&mut self, at: Millis) -> Result<(), RunError> {
        let mut now = self.now_ms();
        let step = Millis(at.saturating_sub(now).0 / STEPS).max(MIN_STEP);
        while now < at {
            now = now.saturating_add(step).min(at);
            self.hardware.run_until(now.0)?;
            self.progress.advance(now);
            (self.invariant)(&mut *self.hardware)?;
        }
        Ok(())
    }
}

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
