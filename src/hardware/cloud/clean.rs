//! `dist-zero clean --cloud`: removes every resource tagged `dist-zero=true` in the region that
//! earlier runs left behind (a runner killed with SIGKILL, a machine that lost power), and lists
//! what it removed.

use super::aws::Clients;
use super::inventory::discover;
use crate::hardware::HardwareError;
use crate::settings::CloudSettings;

/// Finds and removes every DistZero resource in the region; returns `kind id (run)` lines.
pub fn clean(settings: &CloudSettings) -> Result<Vec<String>, HardwareError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| HardwareError::Io {
            action: "start a runtime".into(),
            source,
        })?;
    runtime.block_on(async {
        let clients = Clients::new(settings, None).await?;
        let mut removed = Vec::new();
        let mut problems = Vec::new();
        for mut inventory in discover(&clients).await? {
            let run = inventory.run_id.clone();
            match inventory.remove(&clients).await {
                Ok(lines) => removed.extend(lines.into_iter().map(|l| format!("{l} (run {run})"))),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(removed)
        } else {
            Err(HardwareError::Infrastructure(format!(
                "could not remove everything: {}",
                problems.join("; ")
            )))
        }
    })
}
