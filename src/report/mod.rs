//! Seeing a run: from its structured trace and its application's series, a message-sequence
//! diagram, plots, and one self-contained HTML page (`index.html`) that holds them all, with
//! the run's summary, its fault timeline, and for a failing run the failure and the command
//! that replays it. A sweep writes a small index linking its failing seeds' pages.

pub mod diagram;
mod html;
pub mod plots;
pub mod select;
pub mod svg;

pub use html::{write_sweep_index, SweepEntry};
pub use select::{failure_targets, select, DiagramFilter, Selection};

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::observe::{write_records_file, Record, RecordError};
use crate::scenario::Sample;

/// A report that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The directory or a file in it cannot be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The structured trace cannot be written.
    #[error(transparent)]
    Trace(#[from] RecordError),
    /// A plot cannot be drawn.
    #[error(transparent)]
    Plot(#[from] plots::PlotError),
}

/// Everything one run's report shows.
#[derive(Debug, Clone, Default)]
pub struct RunPage {
    /// The heading, e.g. `DistZero sum network, simulated mode, seed 3`.
    pub title: String,
    /// The run's report as JSON (the fields `--json` prints), if the run completed.
    pub summary: Option<Map<String, Value>>,
    /// Whether the run was correct.
    pub correct: bool,
    /// Why the run failed (a node's error, an invariant, a wrong outcome), if it did.
    pub failure: Option<String>,
    /// The command that replays the run.
    pub replay: Option<String>,
    /// Notes to show under the summary (e.g. what virtual mode does not apply).
    pub notes: Vec<String>,
    /// The structured trace.
    pub records: Vec<Record>,
    /// The application's series.
    pub samples: Vec<Sample>,
    /// What the series are.
    pub series_title: String,
    /// The value the series should reach, with its label.
    pub goal: Option<(String, f64)>,
    /// How many machines the run had.
    pub machines: u32,
    /// How long the run was meant to last, in milliseconds.
    pub run_ms: u64,
}

/// The files a report directory holds besides `index.html` (each picture is also inlined there).
pub const PICTURES: [&str; 6] = [
    "diagram.svg",
    "series.svg",
    "latency.svg",
    "rates.svg",
    "machines.svg",
    "faults.svg",
];

/// Writes `page` into `dir` (created if needed): `index.html`, each picture as its own SVG
/// file, and the structured trace as `trace.jsonl`. `filter` chooses what the diagram shows;
/// for a failing run without `history_of` or any other filter, the diagram shows the causal
/// history of the failure. Returns the path of `index.html`.
pub fn write_report(
    dir: &Path,
    page: &RunPage,
    filter: &DiagramFilter,
) -> Result<PathBuf, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let filter = diagram_filter(page, filter);
    let selection = select(&page.records, &filter);
    let diagram_title = if filter.history_of.is_some() {
        format!("{}: what led to the failure", page.title)
    } else {
        page.title.clone()
    };
    let span_ms = page
        .run_ms
        .max(page.records.last().map_or(0, |r| r.at_us.div_ceil(1000)));
    let pictures = [
        diagram::diagram(&diagram_title, &selection),
        plots::series_plot(
            &page.series_title,
            &page.samples,
            page.goal.as_ref(),
            page.run_ms,
        )?,
        plots::latency_plot(&page.records)?,
        plots::rates_plot(&page.records, span_ms)?,
        plots::machines_plot(&page.records, page.machines)?,
        plots::faults_plot(&page.records, page.machines, span_ms)?,
    ];
    for (name, svg) in PICTURES.iter().zip(&pictures) {
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(io(&path))?;
    }
    write_records_file(&dir.join("trace.jsonl"), &page.records)?;
    let index = dir.join("index.html");
    let html = html::page(page, &pictures, filter.history_of.is_some());
    std::fs::write(&index, html).map_err(io(&index))?;
    Ok(index)
}

/// `filter`, or for a failing run that asked for no filter at all, the causal history of what
/// went wrong.
fn diagram_filter(page: &RunPage, filter: &DiagramFilter) -> DiagramFilter {
    let unfiltered = filter.from_ms.is_none()
        && filter.to_ms.is_none()
        && filter.machines.is_none()
        && filter.nodes.is_none()
        && filter.types.is_none()
        && filter.history_of.is_none();
    if page.correct || !unfiltered {
        return filter.clone();
    }
    let targets = failure_targets(&page.records);
    if targets.is_empty() {
        return filter.clone();
    }
    DiagramFilter {
        history_of: Some(targets),
        ..filter.clone()
    }
}
