//! Small helpers for writing SVG by hand: escaping text, and the colours every picture shares.

/// `text` with the five characters XML gives meaning to escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Distinct colours for message types and series, in order (a colour-blind-safe palette,
/// then darker shades).
pub const PALETTE: [(u8, u8, u8); 12] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (120, 94, 240),
    (0, 0, 0),
    (128, 128, 0),
    (153, 51, 102),
    (51, 102, 153),
    (102, 153, 51),
];

/// The `index`th colour of [`PALETTE`] (round and round), as `#rrggbb`.
pub fn colour(index: usize) -> String {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Milliseconds as the pictures write them: `1250 ms`, `1.5 ms`.
pub fn millis(at_us: u64) -> String {
    if at_us.is_multiple_of(1000) {
        format!("{} ms", at_us / 1000)
    } else {
        format!("{:.1} ms", at_us as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_text_in_pictures_is_escaped() {
        assert_eq!(
            escape("a<b & \"c\"\u{1b}"),
            "a&lt;b &amp; &quot;c&quot;\u{fffd}"
        );
        assert_eq!(millis(1_250_000), "1250 ms");
        assert_eq!(millis(1_500), "1.5 ms");
    }
}
