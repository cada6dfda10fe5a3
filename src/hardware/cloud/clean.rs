//! `dist-zero clean --cloud`: removes the resources tagged `dist-zero=true` in the region that
//! runs whose runner is gone left behind (a runner killed with SIGKILL, a machine that lost
//! power), lists what it removed, and says which runs it left alone and why.

use super::aws::Clients;
use super::inventory::discover;
use crate::hardware::HardwareError;
use crate::settings::CloudSettings;

/// Which runs to remove.
#[derive(Debug, Clone, Default)]
pub struct CloudCleanOptions {
    /// Also runs in progress and runs of other hosts that have not expired yet.
    pub all: bool,
    /// Only this run (whatever state its runner is in).
    pub run: Option<String>,
}

/// What a clean did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudCleaned {
    /// What it removed: `kind id (run R)` lines.
    pub removed: Vec<String>,
    /// The runs it left alone: `run R: why` lines.
    pub left: Vec<String>,
}

/// Finds the DistZero resources in the region and removes those of leaked runs (see
/// [`super::inventory::Inventory::in_progress`]), or as `options` say.
pub fn clean(
    settings: &CloudSettings,
    options: &CloudCleanOptions,
) -> Result<CloudCleaned, HardwareError> {
    let runtime = crate::hardware::remote::runtime()?;
    let now = super::aws::unix_now();
    runtime.block_on(async {
        let clients = Clients::new(settings, None).await?;
        let mut cleaned = CloudCleaned::default();
        let mut problems = Vec::new();
        for mut inventory in discover(&clients).await? {
            let run = inventory.run_id.clone();
            if options.run.as_ref().is_some_and(|only| *only != run) {
                continue;
            }
            if !options.all && options.run.is_none() {
                if let Some(why) = inventory.in_progress(now) {
                    cleaned.left.push(format!("run {run}: {why}"));
                    continue;
                }
            }
            match inventory.remove(&clients).await {
                Ok(lines) => cleaned
                    .removed
                    .extend(lines.into_iter().map(|l| format!("{l} (run {run})"))),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(cleaned)
        } else {
            Err(HardwareError::Infrastructure(format!(
                "could not remove everything: {}",
                problems.join("; ")
            )))
        }
    })
}
