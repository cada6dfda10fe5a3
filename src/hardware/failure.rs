//! A node's failure as a run reports it, in every mode: the failure itself, the seed to replay
//! the run, and the messages that led to it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::manager::NodeFailure;

/// A node's error, with where and when it happened and the deliveries that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// What failed, where and when.
    pub failure: NodeFailure,
    /// The run's seed, to replay it.
    pub seed: u64,
    /// The causal chain of deliveries that led to it, oldest first, one line each (`sender
    /// --type--> receiver`): kept by the simulator; empty for a machine in another process,
    /// whose history is in the run's structured records.
    pub trace: Vec<String>,
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:.3} ms (seed {})",
            self.failure,
            self.failure.at_us.as_millis_f64(),
            self.seed
        )?;
        if self.trace.is_empty() {
            return write!(f, "; no message led to it");
        }
        write!(f, "; message trace that led to it, oldest first:")?;
        for line in &self.trace {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}
