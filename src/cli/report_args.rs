//! What `run` is told about seeing a run — the structured trace (`--events`), the HTML report
//! (`--report`) and the diagram's filters — and writing them once a run is over, in any mode.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::Failure;
use crate::app::AnyApplication;
use crate::observe::gather::unreadable_line;
use crate::observe::write_records_file;
use crate::report::{write_report, DiagramFilter, RunPage};
use crate::scenario::{Observed, Report, RunError, Scenario};

/// The options of `run` that ask to see a run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReportArgs {
    /// Write the run's events as JSON lines (time, kind, machine, node, peer, message type and
    /// summary, and the event that caused each) to this file.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Write a self-contained HTML report (summary, fault timeline, plots, message-sequence
    /// diagram; for a failing run the failure and its replay command) into this directory. With
    /// `--seeds`: an index linking a report for each failing seed.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The diagram shows nothing that ended before this time (ms).
    #[arg(long)]
    pub diagram_from_ms: Option<u64>,
    /// The diagram shows nothing that started after this time (ms).
    #[arg(long)]
    pub diagram_to_ms: Option<u64>,
    /// The diagram shows only these machines, e.g. `0,2`.
    #[arg(long, value_delimiter = ',')]
    pub diagram_machines: Vec<u32>,
    /// The diagram shows only these nodes, e.g. `n0.1,n0.4`.
    #[arg(long, value_delimiter = ',')]
    pub diagram_nodes: Vec<String>,
    /// The diagram shows only message types this regular expression matches in full (by
    /// default every type but the link layer's `ack`).
    #[arg(long)]
    pub diagram_types: Option<String>,
    /// The diagram draws at most this many messages, the earliest.
    #[arg(long, default_value_t = 1500)]
    pub diagram_max: usize,
}

impl ReportArgs {
    /// Whether the run must be observed (a report or an events file was asked for).
    pub fn wanted(&self) -> bool {
        self.events.is_some() || self.report.is_some()
    }

    /// Makes sure, before a run, that what it is to write can be written: the report's
    /// directory is created (or already is one), and the directory of the events file and of
    /// `trace` (the text trace) exists and the file is not a directory itself. Bad input naming
    /// the flag otherwise, so that no run's work is lost to a path that was wrong from the
    /// start.
    pub fn prepare(&self, trace: Option<&Path>) -> Result<(), Failure> {
        if let Some(dir) = &self.report {
            if dir.exists() && !dir.is_dir() {
                return Err(Failure::bad_input(&format!(
                    "--report {}: not a directory (the report is a directory of files)",
                    dir.display()
                )));
            }
            std::fs::create_dir_all(dir).map_err(|error| {
                Failure::bad_input(&format!(
                    "--report {}: cannot create the directory: {error}",
                    dir.display()
                ))
            })?;
        }
        for (flag, file) in [("--events", self.events.as_deref()), ("--trace", trace)] {
            let Some(file) = file else { continue };
            if file.is_dir() {
                return Err(Failure::bad_input(&format!(
                    "{flag} {}: is a directory, not a file",
                    file.display()
                )));
            }
            let parent = file
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty());
            if let Some(parent) = parent.filter(|parent| !parent.is_dir()) {
                return Err(Failure::bad_input(&format!(
                    "{flag} {}: there is no directory {}",
                    file.display(),
                    parent.display()
                )));
            }
        }
        Ok(())
    }

    /// The diagram's filter, or bad input naming the flag.
    pub fn filter(&self) -> Result<DiagramFilter, Failure> {
        let types = match &self.diagram_types {
            Some(types) => Some(
                Regex::new(&format!("^(?:{types})$"))
                    .map_err(|error| Failure::bad_input(&format!("--diagram-types: {error}")))?,
            ),
            None => None,
        };
        let set = |items: &[u32]| (!items.is_empty()).then(|| items.iter().copied().collect());
        let nodes: Option<BTreeSet<String>> = (!self.diagram_nodes.is_empty()).then(|| {
            self.diagram_nodes
                .iter()
                .map(|n| n.trim().to_owned())
                .collect()
        });
        if self.diagram_max == 0 {
            return Err(Failure::bad_input(&"--diagram-max: must be at least 1"));
        }
        if let (Some(from), Some(to)) = (self.diagram_from_ms, self.diagram_to_ms) {
            if from > to {
                return Err(Failure::bad_input(&format!(
                    "--diagram-from-ms {from} comes after --diagram-to-ms {to}: the diagram would show nothing"
                )));
            }
        }
        Ok(DiagramFilter {
            from_ms: self.diagram_from_ms,
            to_ms: self.diagram_to_ms,
            machines: set(&self.diagram_machines),
            nodes,
            types,
            history_of: None,
            max_messages: self.diagram_max,
            ..DiagramFilter::default()
        })
    }

    /// Writes what was asked for: the events file and the report of a run of `scenario` on
    /// `seed` that ended with `result`, observed as `observed`; `replay` replays it.
    pub fn write(
        &self,
        scenario: &Scenario,
        seed: u64,
        result: Result<&Report, &RunError>,
        observed: Observed,
        replay: String,
        notes: Vec<String>,
    ) -> Result<(), Failure> {
        if let Some(path) = &self.events {
            write_records_file(path, &observed.records).map_err(|error| {
                Failure::bad_input(&format!("cannot write the events: {error}"))
            })?;
        }
        let Some(dir) = &self.report else {
            return Ok(());
        };
        let filter = self.filter()?;
        let page = page(scenario, seed, result, observed, replay, notes);
        write_report(dir, &page, &filter)
            .map_err(|error| Failure::bad_input(&format!("cannot write the report: {error}")))?;
        Ok(())
    }
}

/// The report page of a run of `scenario` on `seed` that ended with `result`.
pub fn page(
    scenario: &Scenario,
    seed: u64,
    result: Result<&Report, &RunError>,
    observed: Observed,
    replay: String,
    notes: Vec<String>,
) -> RunPage {
    let app: &dyn AnyApplication = scenario.app().as_ref();
    let (summary, correct, failure, title) = match result {
        Ok(report) => {
            let summary = match serde_json::to_value(report) {
                Ok(serde_json::Value::Object(fields)) => Some(fields),
                _ => None,
            };
            let failure = (!report.correct).then(|| report.summary.clone());
            let title = format!(
                "DistZero {}, {} mode, seed {}",
                report.title, report.mode, report.seed
            );
            (summary, report.correct, failure, title)
        }
        Err(error) => (
            None,
            false,
            Some(error.to_string()),
            format!("DistZero {}, seed {seed}: the run failed", app.title()),
        ),
    };
    let mut notes = notes;
    if result.is_err() {
        notes.extend(unreadable_line(&observed.unreadable_machines));
    }
    RunPage {
        title,
        summary,
        correct,
        replay: (!correct).then_some(replay),
        failure,
        notes,
        records: observed.records,
        samples: observed.samples,
        series_title: app.series_title().to_owned(),
        goal: app.series_goal(scenario.section()),
        machines: scenario.machines,
        run_ms: scenario.run_ms.0,
    }
}
