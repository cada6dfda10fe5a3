//! `dist-zero bench-virtual`: what virtual mode costs — time to start N containers, message
//! round trips between two machines, and sum-network throughput end to end.

use std::time::{Duration, Instant};

use crate::app::{send, spawn, states_of};
use crate::apps::sum::{
    InputConfig, InputNode, OutputConfig, OutputLeafNode, OutputNode, RecordedUser, SumConfig,
    SumMessage, SumNode, UserAction,
};
use crate::cli::{report_error, this_executable, EXIT_BAD_INPUT, EXIT_CORRECT, EXIT_WRONG};
use crate::hardware::docker::{DockerHardware, VirtualConfig};
use crate::hardware::{Hardware, HardwareError};
use crate::messages::MachineId;
use crate::node::Handle;
use crate::settings::Settings;
use crate::terminal::out;

/// How long the throughput run may take to converge.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);

/// What to measure.
#[derive(Debug, clap::Args)]
pub struct BenchVirtualArgs {
    /// System sizes whose start-up time is measured.
    #[arg(long, value_delimiter = ',', default_values_t = [3u32, 10, 30])]
    pub sizes: Vec<u32>,
    /// Round trips measured between two machines.
    #[arg(long, default_value_t = 2000)]
    pub round_trips: u32,
    /// Users in the throughput run (spread over 3 machines).
    #[arg(long, default_value_t = 6)]
    pub users: u32,
    /// Increments each user makes in the throughput run, all at once.
    #[arg(long, default_value_t = 5000)]
    pub increments: u32,
}

/// Runs the measurements and prints them; returns the exit status.
pub fn run(args: &BenchVirtualArgs, settings: &Settings) -> u8 {
    let binary = match this_executable() {
        Ok(binary) => binary,
        Err(failure) => return failure.report(false),
    };
    let config = |machines: u32| {
        let mut config = VirtualConfig::new(machines, 0, binary.clone(), settings.clone());
        config.stop_on_signals = true;
        config
    };
    match measure(args, &config) {
        Ok(()) => EXIT_CORRECT,
        Err(error @ HardwareError::Unavailable(_)) => report_error(EXIT_BAD_INPUT, &error),
        Err(error @ HardwareError::Stopped(signal)) => report_error(signal.exit_status(), &error),
        Err(error) => report_error(EXIT_WRONG, &error),
    }
}

fn measure(
    args: &BenchVirtualArgs,
    config: &dyn Fn(u32) -> VirtualConfig,
) -> Result<(), HardwareError> {
    let begun = Instant::now();
    DockerHardware::start(&config(1))?.finish()?;
    out!(
        "warm-up (image loaded or found, 1 machine): {:.0} ms",
        ms(begun.elapsed())
    );

    out!("start-up:");
    for &machines in &args.sizes {
        let begun = Instant::now();
        let hardware = DockerHardware::start(&config(machines))?;
        let started = begun.elapsed();
        let begun = Instant::now();
        hardware.finish()?;
        out!(
            "  {machines:>3} machines: ready in {:>7.0} ms, removed in {:>6.0} ms",
            ms(started),
            ms(begun.elapsed())
        );
    }

    let mut pair = DockerHardware::start(&config(2))?;
    let mut trips = pair.round_trips(MachineId(0), MachineId(1), args.round_trips)?;
    pair.finish()?;
    trips.sort_unstable();
    out!(
        "round trip m0 -> m1 ({} pings): median {:.0} us, p99 {:.0} us, min {:.0} us, max {:.0} us",
        trips.len(),
        percentile(&trips, 50.0),
        percentile(&trips, 99.0),
        percentile(&trips, 0.0),
        percentile(&trips, 100.0)
    );

    let mut system = DockerHardware::start(&config(3))?;
    let (increments, elapsed) = throughput(&mut system, args.users, args.increments)?;
    let stats = system.stats()?;
    system.finish()?;
    out!(
        "sum throughput ({} users on 3 machines, {increments} increments): converged in {:.0} ms, \
         {:.0} increments/s end to end ({} events, {} messages delivered)",
        args.users,
        ms(elapsed),
        increments as f64 / elapsed.as_secs_f64(),
        stats.events,
        stats.messages_delivered
    );
    Ok(())
}

/// Builds a sum network, lets every user play `increments` increments at once, and times how
/// long until every output shows the total.
fn throughput(
    hardware: &mut DockerHardware,
    users: u32,
    increments: u32,
) -> Result<(u64, Duration), HardwareError> {
    let root = MachineId(0);
    let sum: Handle<SumNode> = spawn::<SumNode>(hardware, root, &SumConfig::default())?;
    let input = spawn::<InputNode>(
        hardware,
        root,
        &InputConfig {
            receivers: vec![sum],
            persist: true,
        },
    )?;
    let output = spawn::<OutputNode>(
        hardware,
        root,
        &OutputConfig {
            senders: vec![sum],
            persist: true,
        },
    )?;
    let machines = u32::try_from(hardware.machine_count()).unwrap_or(1).max(1);
    for user in 0..users {
        let add = SumMessage::AddOutputKid {
            machine: MachineId(user % machines),
            user: format!("user {user}"),
        };
        send::<OutputNode>(hardware, output, &add)?;
    }
    let settle = hardware.now_ms() + 300;
    hardware.run_until(settle)?;
    let begun = Instant::now();
    for user in 0..users {
        let actions = (0..increments)
            .map(|_| {
                (
                    crate::time::Millis::ZERO,
                    UserAction::Increment { amount: 1 },
                )
            })
            .collect();
        let recording = RecordedUser::new(format!("user {user}"), actions)
            .map_err(|e| HardwareError::Infrastructure(e.to_string()))?;
        let add = SumMessage::AddInputKid {
            machine: MachineId(user % machines),
            recording,
        };
        send::<InputNode>(hardware, input, &add)?;
    }
    let total = i64::from(users) * i64::from(increments);
    loop {
        let states = hardware.node_states()?;
        let converged = states_of::<OutputLeafNode>(&states)
            .iter()
            .filter(|(_, leaf)| leaf.total == total)
            .count();
        if converged == users as usize {
            return Ok((u64::try_from(total).unwrap_or(0), begun.elapsed()));
        }
        if begun.elapsed() > CONVERGE_TIMEOUT {
            return Err(HardwareError::Infrastructure(format!(
                "only {converged} of {users} outputs reached {total} within {CONVERGE_TIMEOUT:?}"
            )));
        }
        let next = hardware.now_ms() + 20;
        hardware.run_until(next)?;
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The `p`th percentile of sorted durations, in microseconds (nearest rank).
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_percentiles_pick_by_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 50.0), 51.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
