//! Small helpers for writing SVG: escaping text, and the colours every picture shares.
//!
//! Every piece of text a picture or the page shows goes through [`legible`]: by [`escape`] for
//! what is written by hand, and for the plots (plotters escapes markup itself) over each whole
//! picture. So every SVG and the page are well-formed whatever a user wrote.

use std::borrow::Cow;

/// Whether `c` may appear in a document: XML 1.0's characters less its discouraged ones, which
/// HTML also refuses — control characters other than tab and line breaks (C0, DEL, C1) and the
/// noncharacters (U+FDD0 to U+FDEF, and U+FFFE and U+FFFF in every plane).
fn allowed(c: char) -> bool {
    let code = u32::from(c);
    match code {
        0x09 | 0x0a | 0x0d => true,
        0x00..=0x1f | 0x7f..=0x9f | 0xfdd0..=0xfdef => false,
        _ => code & 0xfffe != 0xfffe,
    }
}

/// `text` with every character a document may not hold replaced by U+FFFD (the replacement
/// character); borrowed unchanged when there is none. Markup characters are left as they are.
pub fn legible(text: &str) -> Cow<'_, str> {
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if allowed(c) { c } else { '\u{fffd}' })
            .collect(),
    )
}

/// `text` as the content of an element or an attribute: [`legible`], and the five characters
/// XML gives meaning to escaped.
pub fn escape(text: &str) -> String {
    let text = legible(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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
        assert_eq!(
            escape("a\u{1}b\u{fffe}c\u{ffff}\u{85}\u{1fffe}\u{fdd0}\t\n"),
            "a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}\u{fffd}\u{fffd}\t\n"
        );
        assert!(matches!(legible("Zoë <b> & 場"), Cow::Borrowed(_)));
        assert_eq!(legible("<\u{ffff}>"), "<\u{fffd}>");
        assert_eq!(millis(1_250_000), "1250 ms");
        assert_eq!(millis(1_500), "1.5 ms");
    }
}
