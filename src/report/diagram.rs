//! The message-sequence diagram: a lane per node (grouped by machine), time running down, an
//! arrow per message from its send to its delivery coloured by message type, retransmissions
//! dashed, duplicates dotted, losses crossed out, partitions, pauses and crashed machines' down
//! time shaded on the lanes they hit, a legend, and what the filters left out written at the top.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::select::{Arrow, End, Selection, Travel};
use super::svg::{colour, escape, millis};
use crate::observe::RecordKind;

const LANE_WIDTH: f64 = 104.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
const MIN_HEIGHT: f64 = 360.0;
const MAX_HEIGHT: f64 = 6000.0;
/// Vertical room per message drawn, before the height is clamped.
const PER_MESSAGE: f64 = 14.0;

/// Draws `selection` as a standalone SVG document titled `title`.
pub fn diagram(title: &str, selection: &Selection) -> String {
    let types = message_types(&selection.arrows);
    let lane_x: BTreeMap<&End, f64> = selection
        .lanes
        .iter()
        .enumerate()
        .map(|(index, (at, _))| (at, LEFT + LANE_WIDTH * (index as f64 + 0.5)))
        .collect();
    let notes: Vec<String> = selection
        .shown
        .iter()
        .map(|line| format!("Shown: {line}"))
        .chain(
            selection
                .left_out
                .iter()
                .map(|line| format!("Left out: {line}")),
        )
        .collect();
    let legend_rows = types.len().div_ceil(4) + 2;
    let header = 40.0 + 15.0 * notes.len() as f64 + 16.0 * legend_rows as f64 + 60.0;
    let lanes_width = LANE_WIDTH * selection.lanes.len().max(1) as f64;
    let width = (LEFT + lanes_width + RIGHT).max(820.0);
    let body = (selection.arrows.len() as f64 * PER_MESSAGE).clamp(MIN_HEIGHT, MAX_HEIGHT);
    let height = header + body + 40.0;
    let (t0, t1) = selection.span_us;
    let y = |at_us: u64| header + (at_us.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * body;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="sequence-diagram" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    svg.push_str(&defs(&types));
    let _ = write!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (index, note) in notes.iter().enumerate() {
        let class = if note.starts_with("Left out") {
            "left-out"
        } else {
            "shown"
        };
        let _ = write!(
            svg,
            r#"<text class="{class}" x="10" y="{:.0}" fill="{}">{}</text>"#,
            40.0 + 15.0 * index as f64,
            if class == "left-out" { "#a33" } else { "#333" },
            escape(note)
        );
    }
    let legend_top = 40.0 + 15.0 * notes.len() as f64 + 4.0;
    svg.push_str(&legend(&types, legend_top));

    // Shading under everything else.
    for shade in &selection.shades {
        let hit: Vec<f64> = selection
            .lanes
            .iter()
            .filter(|(at, _)| {
                shade
                    .window
                    .groups
                    .iter()
                    .flatten()
                    .any(|m| *m == at.machine)
            })
            .filter_map(|(at, _)| lane_x.get(at).copied())
            .collect();
        let (top, bottom) = (y(shade.from_us.max(t0)), y(shade.to_us.min(t1)));
        let (fill, label) = match shade.window.fault.as_str() {
            "pause" => (
                "url(#paused)",
                format!(
                    "m{} paused",
                    shade.window.groups.concat().first().copied().unwrap_or(0)
                ),
            ),
            "crash" => (
                "rgba(60,60,60,0.18)",
                format!(
                    "m{} down",
                    shade.window.groups.concat().first().copied().unwrap_or(0)
                ),
            ),
            _ => (
                "rgba(230,120,20,0.16)",
                format!("partition {}", groups(&shade.window.groups)),
            ),
        };
        for x in &hit {
            let _ = write!(
                svg,
                r#"<rect class="shade {}" x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{} from {} to {}</title></rect>"#,
                escape(&shade.window.fault),
                x - LANE_WIDTH / 2.0 + 2.0,
                LANE_WIDTH - 4.0,
                (bottom - top).max(1.0),
                escape(&label),
                millis(shade.from_us),
                millis(shade.to_us)
            );
        }
        if let Some(x) = hit.first() {
            let _ = write!(
                svg,
                r##"<text class="shade-label" x="{:.1}" y="{:.1}" fill="#964">{}</text>"##,
                x - LANE_WIDTH / 2.0 + 4.0,
                top + 12.0,
                escape(&label)
            );
        }
    }

    // Lanes, grouped by machine.
    let mut machines: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    for (at, node_type) in &selection.lanes {
        let Some(x) = lane_x.get(at).copied() else {
            continue;
        };
        let span = machines.entry(at.machine).or_insert((x, x));
        span.0 = span.0.min(x);
        span.1 = span.1.max(x);
        let name = at
            .node
            .clone()
            .unwrap_or_else(|| format!("m{} runtime", at.machine));
        let _ = write!(
            svg,
            r##"<g class="lane" data-lane="{}"><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#bbb"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text></g>"##,
            escape(&lane_name(at)),
            header - 8.0,
            header + body,
            header - 30.0,
            escape(&name),
            header - 16.0,
            escape(node_type.as_deref().unwrap_or(if at.node.is_some() {
                ""
            } else {
                "link layer"
            }))
        );
    }
    for (machine, (left, right)) in &machines {
        let _ = write!(
            svg,
            r##"<g class="machine"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="18" fill="#eef" stroke="#99b"/><text x="{:.1}" y="{:.1}" text-anchor="middle">machine m{machine}</text></g>"##,
            left - LANE_WIDTH / 2.0 + 2.0,
            header - 58.0,
            right - left + LANE_WIDTH - 4.0,
            (left + right) / 2.0,
            header - 45.0
        );
    }

    // The time axis.
    let step = tick_step(t1 - t0);
    let mut tick = t0.div_ceil(step) * step;
    while tick <= t1 {
        let _ = write!(
            svg,
            r##"<g class="tick"><line x1="{:.0}" y1="{:.1}" x2="{:.0}" y2="{:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end" fill="#666">{}</text></g>"##,
            LEFT - 6.0,
            y(tick),
            LEFT + lanes_width,
            y(tick),
            LEFT - 8.0,
            y(tick) + 4.0,
            millis(tick)
        );
        tick += step;
    }

    for arrow in &selection.arrows {
        let (Some(x1), Some(x2)) = (lane_x.get(&arrow.from), lane_x.get(&arrow.to)) else {
            continue;
        };
        let index = types.get(arrow.message_type.as_str()).copied().unwrap_or(0);
        svg.push_str(&draw_arrow(
            arrow,
            (*x1, y(arrow.sent_us)),
            (*x2, y(arrow.arrived_us)),
            index,
        ));
    }
    for mark in &selection.marks {
        let Some(x) = lane_x.get(&mark.at).copied() else {
            continue;
        };
        let y = y(mark.at_us);
        match mark.kind {
            RecordKind::Fail => {
                let _ = write!(
                    svg,
                    r##"<g class="failure"><circle cx="{x:.1}" cy="{y:.1}" r="8" fill="#d00"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="white" font-weight="bold">!</text><text x="{:.1}" y="{:.1}" fill="#d00" font-weight="bold">{}</text></g>"##,
                    y + 4.0,
                    x + 12.0,
                    y + 4.0,
                    escape(&mark.label)
                );
            }
            _ => {
                let _ = write!(
                    svg,
                    r##"<rect class="spawn" x="{:.1}" y="{:.1}" width="8" height="8" fill="#555"><title>{} at {}</title></rect>"##,
                    x - 4.0,
                    y - 4.0,
                    escape(&mark.label),
                    millis(mark.at_us)
                );
            }
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// A lane's name in the SVG (`m0/n0.3`, `m1/runtime`), which tests look for.
pub fn lane_name(at: &End) -> String {
    format!(
        "m{}/{}",
        at.machine,
        at.node.as_deref().unwrap_or("runtime")
    )
}

fn groups(groups: &[Vec<u32>]) -> String {
    groups
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|m| format!("m{m}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The message types the arrows carry, sorted by name, each with its colour's index.
fn message_types(arrows: &[Arrow]) -> BTreeMap<&str, usize> {
    let mut names: Vec<&str> = arrows.iter().map(|a| a.message_type.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, i))
        .collect()
}

fn defs(types: &BTreeMap<&str, usize>) -> String {
    let mut defs = String::from(
        r##"<defs><pattern id="paused" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="rgba(90,110,160,0.10)"/><line x1="0" y1="0" x2="0" y2="8" stroke="rgba(90,110,160,0.45)" stroke-width="3"/></pattern>"##,
    );
    for index in types.values() {
        let _ = write!(
            defs,
            r#"<marker id="head{index}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            colour(*index)
        );
    }
    defs.push_str("</defs>");
    defs
}

fn legend(types: &BTreeMap<&str, usize>, top: f64) -> String {
    let mut svg = format!(r#"<g class="legend" transform="translate(10,{top:.0})">"#);
    for (position, (name, index)) in types.iter().enumerate() {
        let (x, y) = (
            (position % 4) as f64 * 170.0,
            (position / 4) as f64 * 16.0 + 8.0,
        );
        let _ = write!(
            svg,
            r#"<g class="legend-type"><line x1="{x:.0}" y1="{y:.0}" x2="{:.0}" y2="{y:.0}" stroke="{}" stroke-width="2"/><text x="{:.0}" y="{:.0}">{}</text></g>"#,
            x + 22.0,
            colour(*index),
            x + 27.0,
            y + 4.0,
            escape(name)
        );
    }
    let y = (types.len().div_ceil(4)) as f64 * 16.0 + 8.0;
    let _ = write!(
        svg,
        r##"<g class="legend-style"><line x1="0" y1="{y:.0}" x2="22" y2="{y:.0}" stroke="#333" stroke-width="1.5"/><text x="27" y="{:.0}">sent</text><line x1="80" y1="{y:.0}" x2="102" y2="{y:.0}" stroke="#333" stroke-width="1.5" stroke-dasharray="6,3"/><text x="107" y="{:.0}">retransmitted</text><line x1="200" y1="{y:.0}" x2="222" y2="{y:.0}" stroke="#333" stroke-width="1.5" stroke-dasharray="1.5,2.5"/><text x="227" y="{:.0}">duplicate</text><text x="305" y="{:.0}" fill="#d00" font-weight="bold">✕</text><text x="318" y="{:.0}">lost</text><rect x="360" y="{:.0}" width="22" height="10" fill="rgba(230,120,20,0.3)"/><text x="387" y="{:.0}">partition</text><rect x="450" y="{:.0}" width="22" height="10" fill="url(#paused)"/><text x="477" y="{:.0}">pause</text><circle cx="535" cy="{y:.0}" r="5" fill="#d00"/><text x="545" y="{:.0}">failure</text><rect x="600" y="{:.0}" width="8" height="8" fill="#555"/><text x="613" y="{:.0}">node starts</text><rect x="690" y="{:.0}" width="22" height="10" fill="rgba(60,60,60,0.18)"/><text x="717" y="{:.0}">machine down</text></g>"##,
        y + 4.0,
        y + 4.0,
        y + 4.0,
        y + 4.0,
        y + 4.0,
        y - 5.0,
        y + 4.0,
        y - 5.0,
        y + 4.0,
        y + 4.0,
        y - 4.0,
        y + 4.0,
        y - 5.0,
        y + 4.0,
    );
    svg.push_str("</g>");
    svg
}

fn draw_arrow(arrow: &Arrow, from: (f64, f64), to: (f64, f64), index: usize) -> String {
    let stroke = colour(index);
    let title = format!(
        "{} {} → {} sent {}{}: {}",
        arrow.message_type,
        arrow.from.node.as_deref().unwrap_or("runtime"),
        arrow.to.node.as_deref().unwrap_or("runtime"),
        millis(arrow.sent_us),
        match arrow.travel {
            Travel::Lost => format!(", lost ({})", arrow.detail.as_deref().unwrap_or("dropped")),
            _ => format!(", delivered {}", millis(arrow.arrived_us)),
        },
        arrow.summary
    );
    // A message to the same lane bends out to the right so that it shows.
    let (x2, y2) = if travel_is_lost(arrow) {
        let (dx, dy) = (to.0 - from.0, 14.0);
        let dx = if dx.abs() < 1.0 { 30.0 } else { dx * 0.45 };
        (from.0 + dx, from.1 + dy)
    } else {
        to
    };
    let (class, dash) = match arrow.travel {
        Travel::Sent => ("send", ""),
        Travel::Retransmitted => ("retransmit", r#" stroke-dasharray="6,3""#),
        Travel::Duplicated => ("duplicate", r#" stroke-dasharray="1.5,2.5""#),
        Travel::Lost => ("drop", r#" stroke-dasharray="3,2""#),
    };
    let path = if (x2 - from.0).abs() < 1.0 {
        format!(
            "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            from.0,
            from.1,
            from.0 + 40.0,
            from.1,
            x2 + 40.0,
            y2,
            x2,
            y2
        )
    } else {
        format!("M{:.1},{:.1} L{:.1},{:.1}", from.0, from.1, x2, y2)
    };
    let head = if travel_is_lost(arrow) {
        format!(
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#d00" font-weight="bold" font-size="13">✕</text>"##,
            x2,
            y2 + 5.0
        )
    } else {
        String::new()
    };
    let marker = if travel_is_lost(arrow) {
        String::new()
    } else {
        format!(r#" marker-end="url(#head{index})""#)
    };
    format!(
        r#"<g class="arrow {class}" data-type="{}"><path d="{path}" fill="none" stroke="{stroke}" stroke-width="1.4"{dash}{marker}/>{head}<title>{}</title></g>"#,
        escape(&arrow.message_type),
        escape(&title)
    )
}

fn travel_is_lost(arrow: &Arrow) -> bool {
    arrow.travel == Travel::Lost
}

/// A round step between time ticks: about ten ticks over `span_us`.
fn tick_step(span_us: u64) -> u64 {
    let rough = (span_us / 10).max(1);
    let mut step = 1;
    while step * 10 <= rough {
        step *= 10;
    }
    if step * 5 <= rough {
        step * 5
    } else if step * 2 <= rough {
        step * 2
    } else {
        step
    }
}
