//! Carrying out a NodeManager's effects: the one loop every hardware runs after it has handed its
//! manager an envelope, a timer or a spawn.
//!
//! The simulator and a machine process differ only in what sending and arming a timer mean —
//! through the simulated network onto the simulator's agenda, or onto a socket and the machine's
//! own [`EventQueue`](super::queue::EventQueue) — so each implements [`Carrier`] for that, and
//! [`carry_effects`] walks the effects, in the order the manager produced them, the same way for
//! both. Cancelling a timer needs nothing from the hardware: the manager forgets it, and a
//! timer that fires after it was cancelled does nothing.

use crate::manager::{Effect, Envelope, NodeManager};
use crate::messages::MachineId;
use crate::node::TimerId;
use crate::time::Micros;

/// What a hardware does with one machine's effects.
pub(crate) trait Carrier {
    /// Why an effect could not be carried out (the simulator's agenda is full, say).
    type Error;

    /// Carries `envelope` from machine `from` to the NodeManager of machine `to`, which may be
    /// `from` itself or a machine the system does not have.
    fn transmit(
        &mut self,
        from: MachineId,
        to: MachineId,
        envelope: Envelope,
    ) -> Result<(), Self::Error>;

    /// Arms `timer` of machine `machine` to fire at `at_us` (at once if that time has passed).
    fn arm(&mut self, machine: MachineId, at_us: Micros, timer: TimerId)
        -> Result<(), Self::Error>;
}

/// Drains `manager`'s effects (through `scratch`, which keeps its capacity from call to call)
/// and hands each to `carrier`, in order. Every effect is carried even if one fails; the first
/// failure is returned.
pub(crate) fn carry_effects<C: Carrier>(
    manager: &mut NodeManager,
    scratch: &mut Vec<Effect>,
    carrier: &mut C,
) -> Result<(), C::Error> {
    let from = manager.machine();
    manager.drain_effects(scratch);
    let mut outcome = Ok(());
    for effect in scratch.drain(..) {
        let carried = match effect {
            Effect::Transmit { to, envelope } => carrier.transmit(from, to, envelope),
            Effect::Wake { at_us, timer } => carrier.arm(from, Micros(at_us), timer),
        };
        outcome = outcome.and(carried);
    }
    outcome
}
