//! The report's plots, drawn with `plotters` as SVG: the application's own series over time,
//! the delivery latency distribution, messages per second by type, events per machine, and
//! where faults were active.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::svg::{legible, PALETTE};
use crate::observe::{Record, RecordKind};
use crate::scenario::Sample;

const WIDTH: u32 = 760;
const HEIGHT: u32 = 340;
/// The most series a plot names in its legend (the rest are drawn, and counted in the title).
const LEGEND_MAX: usize = 12;

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the {plot} plot: {source}")]
pub struct PlotError {
    /// Which plot.
    pub plot: &'static str,
    /// What plotters said.
    #[source]
    pub source: DrawingAreaErrorKind<std::io::Error>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn draw(
    plot: &'static str,
    size: (u32, u32),
    paint: impl FnOnce(&Area<'_>) -> Result<(), DrawingAreaErrorKind<std::io::Error>>,
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let painted = area
            .fill(&WHITE)
            .and_then(|()| paint(&area))
            .and_then(|()| area.present());
        painted.map_err(|source| PlotError { plot, source })?;
    }
    // plotters escapes markup in the text it is given, but not the characters no document may
    // hold (a user's name with a control character): those go the way of every picture's text.
    Ok(legible(&svg).into_owned())
}

/// Draws a chart's legend at `position`, the same way on every plot.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(position)
        .draw()
}

fn colour(index: usize) -> RGBColor {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The application's series over time (`title` says what they are), with the goal every series
/// should reach drawn dashed across, over `run_ms`.
pub fn series_plot(
    title: &str,
    samples: &[Sample],
    goal: Option<&(String, f64)>,
    run_ms: u64,
) -> Result<String, PlotError> {
    let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for sample in samples {
        for (name, value) in &sample.values {
            series
                .entry(name.as_str())
                .or_default()
                .push((sample.at_ms as f64, *value));
        }
    }
    let values = series
        .values()
        .flatten()
        .map(|(_, v)| *v)
        .chain(goal.map(|(_, v)| *v));
    let (lo, hi) = values.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = (hi - lo) * 0.08;
    let x_end = (run_ms as f64).max(samples.last().map_or(1.0, |s| s.at_ms as f64));
    let caption = if series.len() > LEGEND_MAX {
        format!("{title} ({} series, {LEGEND_MAX} named)", series.len())
    } else {
        title.to_owned()
    };
    draw("series", (WIDTH, HEIGHT + 40), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_end.max(1.0), (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("time (ms)")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (index, (name, points)) in series.iter().enumerate() {
            let style = colour(index).stroke_width(2);
            let drawn = chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
            if index < LEGEND_MAX {
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour(index).stroke_width(2))
                });
            }
        }
        if let Some((label, value)) = goal {
            let style = RGBColor(200, 0, 0).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, *value), (x_end, *value)],
                    6,
                    4,
                    style,
                ))?
                .label(format!("{label} ({value})"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Delivery latencies (from a transmission to its arrival on another machine), in
/// milliseconds.
pub fn latencies_ms(records: &[Record]) -> Vec<f64> {
    let by_id: BTreeMap<u64, &Record> = records.iter().map(|r| (r.id, r)).collect();
    records
        .iter()
        .filter(|r| r.kind == RecordKind::Deliver && r.peer_machine != Some(r.machine))
        .filter_map(|arrival| {
            let sent = by_id.get(&arrival.cause?)?;
            sent.kind
                .is_transmission()
                .then(|| arrival.at_us.saturating_sub(sent.at_us) as f64 / 1000.0)
        })
        .collect()
}

/// A histogram of delivery latencies between machines.
pub fn latency_plot(records: &[Record]) -> Result<String, PlotError> {
    let latencies = latencies_ms(records);
    let max = latencies.iter().copied().fold(1.0f64, f64::max);
    const BINS: usize = 40;
    let width = max / BINS as f64;
    let mut counts = [0u32; BINS];
    for latency in &latencies {
        let bin = ((latency / width) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let caption = format!(
        "delivery latency between machines ({} deliveries)",
        latencies.len()
    );
    draw("latency", (WIDTH, HEIGHT), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..max, 0u32..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("deliveries")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(
            |(bin, count)| {
                let x0 = bin as f64 * width;
                Rectangle::new([(x0, 0), (x0 + width, *count)], colour(0).filled())
            },
        ))?;
        Ok(())
    })
}

/// Messages put on the network per second, by type, over `span_ms`.
pub fn rates_plot(records: &[Record], span_ms: u64) -> Result<String, PlotError> {
    const BUCKETS: u64 = 60;
    let span_ms = span_ms.max(1);
    let bucket_ms = span_ms.div_ceil(BUCKETS).max(1);
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for record in records.iter().filter(|r| r.kind.is_transmission()) {
        let counts = by_type
            .entry(record.message_type.as_deref().unwrap_or("?"))
            .or_insert_with(|| vec![0.0; BUCKETS as usize + 1]);
        let bucket = ((record.at_us / 1000) / bucket_ms).min(BUCKETS) as usize;
        counts[bucket] += 1000.0 / bucket_ms as f64;
    }
    let top = by_type.values().flatten().copied().fold(1.0f64, f64::max);
    draw("rates", (WIDTH, HEIGHT + 40), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption("messages sent per second, by type", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..span_ms as f64, 0.0..top * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("time (ms)")
            .y_desc("per second")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (index, (name, counts)) in by_type.iter().enumerate() {
            let points = counts
                .iter()
                .enumerate()
                .map(|(bucket, rate)| ((bucket as u64 * bucket_ms) as f64, *rate));
            let drawn =
                chart.draw_series(LineSeries::new(points, colour(index).stroke_width(2)))?;
            if index < LEGEND_MAX {
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour(index).stroke_width(2))
                });
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// How many events each machine of `machines` had (everything but fault windows).
pub fn events_per_machine(records: &[Record], machines: u32) -> Vec<u64> {
    let mut counts = vec![0u64; machines as usize];
    for record in records {
        let window = matches!(record.kind, RecordKind::FaultStart | RecordKind::FaultEnd);
        if let (false, Some(count)) = (window, counts.get_mut(record.machine as usize)) {
            *count += 1;
        }
    }
    counts
}

/// A bar per machine: how many events it had.
pub fn machines_plot(records: &[Record], machines: u32) -> Result<String, PlotError> {
    let counts = events_per_machine(records, machines);
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let n = f64::from(machines.max(1));
    draw("machines", (WIDTH, HEIGHT), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption("events per machine", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, 0..top + top / 10 + 1)?;
        chart
            .configure_mesh()
            .x_desc("machine")
            .y_desc("events")
            .x_labels(machines.clamp(1, 24) as usize)
            .x_label_formatter(&|x| {
                let machine = x.round();
                if (x - machine).abs() < 1e-6 && machine >= 0.0 && machine < n {
                    format!("m{machine:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(machine, count)| {
            let x = machine as f64;
            Rectangle::new([(x - 0.35, 0), (x + 0.35, *count)], colour(2).filled())
        }))?;
        Ok(())
    })
}

/// Where faults were active: a row per machine, partitions, pauses and crashed machines' down
/// time as spans, and each drop, duplicate and retransmission as a tick on the sending
/// machine's row.
pub fn faults_plot(records: &[Record], machines: u32, span_ms: u64) -> Result<String, PlotError> {
    let n = machines.max(1);
    let span_ms = span_ms.max(1) as f64;
    let mut windows: Vec<(String, u32, f64, f64)> = Vec::new();
    let mut open: BTreeMap<(String, usize), f64> = BTreeMap::new();
    for record in records {
        let Some(window) = &record.window else {
            continue;
        };
        let key = (window.fault.clone(), window.index);
        let at_ms = record.at_us as f64 / 1000.0;
        match record.kind {
            RecordKind::FaultStart => {
                open.insert(key, at_ms);
            }
            RecordKind::FaultEnd => {
                if let Some(from) = open.remove(&key) {
                    for machine in window.groups.iter().flatten() {
                        windows.push((window.fault.clone(), *machine, from, at_ms));
                    }
                }
            }
            _ => {}
        }
    }
    let ticks = |kind: RecordKind| {
        records
            .iter()
            .filter(move |r| r.kind == kind)
            .map(|r| (r.at_us as f64 / 1000.0, r.machine))
    };
    let row_height = 40 + 22 * n.min(24);
    draw("faults", (WIDTH, row_height + 110), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption("where faults were active", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..span_ms, 0.0..f64::from(n))?;
        chart
            .configure_mesh()
            .x_desc("time (ms)")
            .y_labels(n.min(24) as usize + 1)
            .y_label_formatter(&|y| {
                let row = y.floor();
                if (y - row).abs() < 1e-9 && row < f64::from(n) {
                    format!("m{}", row as u32)
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        let partition = RGBColor(230, 120, 20);
        let pause = RGBColor(90, 110, 160);
        let down = RGBColor(60, 60, 60);
        let mut first = [true, true, true];
        for (fault, machine, from, to) in &windows {
            let (style, slot, name) = match fault.as_str() {
                "pause" => (pause.mix(0.45).filled(), 1, "pause"),
                "crash" => (down.mix(0.3).filled(), 2, "machine down"),
                _ => (partition.mix(0.35).filled(), 0, "partition"),
            };
            let row = f64::from(*machine);
            let drawn = chart.draw_series([Rectangle::new(
                [(*from, row + 0.15), (*to, row + 0.85)],
                style,
            )])?;
            if std::mem::take(&mut first[slot]) {
                drawn
                    .label(name)
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], style));
            }
        }
        for (kind, name, colour_of, offset) in [
            (RecordKind::Drop, "lost", RGBColor(210, 0, 0), 0.25),
            (
                RecordKind::Duplicate,
                "duplicated",
                RGBColor(120, 60, 200),
                0.5,
            ),
            (
                RecordKind::Retransmit,
                "retransmitted",
                RGBColor(0, 140, 90),
                0.75,
            ),
        ] {
            let style = colour_of.stroke_width(1);
            let marks: Vec<(f64, u32)> = ticks(kind).collect();
            if marks.is_empty() {
                continue;
            }
            chart
                .draw_series(marks.into_iter().map(move |(x, machine)| {
                    let y = f64::from(machine) + offset;
                    PathElement::new(vec![(x, y - 0.1), (x, y + 0.1)], style)
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x + 9, y - 5), (x + 9, y + 5)], style)
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
