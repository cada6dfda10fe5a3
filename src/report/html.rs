//! The report's HTML: one self-contained page per run (every picture inline, the style inline,
//! nothing fetched), and a sweep's index of its failing seeds.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::svg::escape;
use super::{ReportError, RunPage};

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;\
font-size:13px;vertical-align:top}.ok{color:#070;font-weight:bold}.wrong{color:#b00;\
font-weight:bold}pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:13px}\
.figure{overflow:auto;border:1px solid #eee;margin:8px 0;max-height:900px}\
.plots{display:flex;flex-wrap:wrap;gap:12px}.note{color:#555}";

/// The page of one run; `pictures` are, in order, the diagram, the series, latency, rates,
/// machines and faults plots; `history` says the diagram shows a causal history.
pub(super) fn page(run: &RunPage, pictures: &[String; 6], history: bool) -> String {
    let [diagram, series, latency, rates, machines, faults] = pictures;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&run.title),
        escape(&run.title)
    );
    let verdict = if run.correct {
        "<p class=\"ok\">correct</p>"
    } else {
        "<p class=\"wrong\">WRONG</p>"
    };
    html.push_str(verdict);
    if let Some(failure) = &run.failure {
        let _ = write!(
            html,
            "<h2>Failure</h2><pre class=\"failure\">{}</pre>",
            escape(failure)
        );
    }
    if let Some(replay) = &run.replay {
        let _ = write!(
            html,
            "<p>Replay it with:</p><pre class=\"replay\">{}</pre>",
            escape(replay)
        );
    }
    html.push_str("<h2>Summary</h2><table class=\"summary\">");
    if let Some(summary) = &run.summary {
        for (key, value) in summary {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let _ = write!(
                html,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(key),
                escape(&shown)
            );
        }
    } else {
        html.push_str("<tr><td>the run stopped before it completed: no report</td></tr>");
    }
    html.push_str("</table>");
    for note in &run.notes {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    let _ = write!(
        html,
        "<h2>Fault timeline</h2><div class=\"figure\">{}</div>",
        inline(faults)
    );
    let _ = write!(
        html,
        "<h2>{}</h2><div class=\"figure\">{}</div>",
        escape(&capitalised(&run.series_title)),
        inline(series)
    );
    let _ = write!(
        html,
        "<h2>Message-sequence diagram</h2><p class=\"note\">{}</p><div class=\"figure\">{}</div>",
        if history {
            "Only the causal history of what went wrong: each message that led to it, back to the start."
        } else {
            "A lane per node, grouped by machine; time runs down. Hover an arrow for its message."
        },
        inline(diagram)
    );
    let _ = write!(
        html,
        "<h2>Traffic</h2><div class=\"plots\"><div class=\"figure\">{}</div><div class=\"figure\">{}</div><div class=\"figure\">{}</div></div>",
        inline(latency),
        inline(rates),
        inline(machines)
    );
    html.push_str(
        "<p class=\"note\">Each picture is also a file beside this page (diagram.svg, series.svg, latency.svg, rates.svg, machines.svg, faults.svg), and every event is in trace.jsonl.</p>\n</body></html>\n",
    );
    html
}

/// An SVG document as an element to put inside HTML (without an XML declaration).
fn inline(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest
            .find("?>")
            .map_or(svg, |end| rest[end + 2..].trim_start()),
        None => svg,
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One failing seed of a sweep, as its index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepEntry {
    /// The seed.
    pub seed: u64,
    /// Why it failed.
    pub reason: String,
    /// The command that replays it.
    pub replay: String,
    /// Its report's directory, relative to the index, if one was written.
    pub report: Option<String>,
}

/// Writes `dir/index.html`: the sweep's outcome and a link to each failing seed's report.
pub fn write_sweep_index(
    dir: &Path,
    title: &str,
    outcome: &str,
    failing: &[SweepEntry],
    notes: &[String],
) -> Result<PathBuf, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1><p class=\"{}\">{}</p>\n",
        escape(title),
        escape(title),
        if failing.is_empty() { "ok" } else { "wrong" },
        escape(outcome)
    );
    if !failing.is_empty() {
        html.push_str("<table class=\"failing\"><tr><th>seed</th><th>why</th><th>report</th><th>replay</th></tr>");
        for entry in failing {
            let link = entry.report.as_ref().map_or_else(
                || "—".to_owned(),
                |dir| format!("<a href=\"{}/index.html\">report</a>", escape(dir)),
            );
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{link}</td><td><code>{}</code></td></tr>",
                entry.seed,
                escape(&entry.reason),
                escape(&entry.replay)
            );
        }
        html.push_str("</table>");
    }
    for note in notes {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    html.push_str("</body></html>\n");
    let index = dir.join("index.html");
    std::fs::write(&index, html).map_err(io(&index))?;
    Ok(index)
}
