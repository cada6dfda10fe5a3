//! Reading a report's pictures as a person would check them: SVG parsed as XML, elements counted
//! by class, text searched; and a report opened in headless Chromium, its screenshot checked for
//! something drawn.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// An SVG document, parsed (the test fails if it is not well-formed XML with an `<svg>` root).
pub struct Svg {
    text: String,
}

impl Svg {
    /// Parses `text`, failing the test if it is not a well-formed SVG document.
    pub fn parse(text: &str) -> Svg {
        let document = roxmltree::Document::parse(text)
            .unwrap_or_else(|error| panic!("not well-formed XML: {error}\n{text}"));
        assert_eq!(document.root_element().tag_name().name(), "svg");
        Svg {
            text: text.to_owned(),
        }
    }

    /// Reads and parses the SVG file at `path`.
    pub fn read(path: &Path) -> Svg {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        Svg::parse(&text)
    }

    fn document(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.text).expect("parsed before")
    }

    /// How many elements have every class in `classes` (space-separated).
    pub fn count(&self, classes: &str) -> usize {
        self.with_class(classes).len()
    }

    /// The value of `attribute` on every element with every class in `classes`.
    pub fn attributes(&self, classes: &str, attribute: &str) -> Vec<String> {
        let document = self.document();
        let wanted: Vec<&str> = classes.split_whitespace().collect();
        document
            .descendants()
            .filter(|node| {
                node.attribute("class").is_some_and(|class| {
                    let have: Vec<&str> = class.split_whitespace().collect();
                    wanted.iter().all(|w| have.contains(w))
                })
            })
            .filter_map(|node| node.attribute(attribute).map(str::to_owned))
            .collect()
    }

    fn with_class(&self, classes: &str) -> Vec<String> {
        let document = self.document();
        let wanted: Vec<&str> = classes.split_whitespace().collect();
        document
            .descendants()
            .filter(|node| {
                node.attribute("class").is_some_and(|class| {
                    let have: Vec<&str> = class.split_whitespace().collect();
                    wanted.iter().all(|w| have.contains(w))
                })
            })
            .map(|node| node.tag_name().name().to_owned())
            .collect()
    }

    /// Every piece of text the picture shows, joined by new lines.
    pub fn texts(&self) -> String {
        let document = self.document();
        document
            .descendants()
            .filter(|node| node.is_text())
            .filter_map(|node| node.text())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many elements named `tag` it has.
    pub fn tags(&self, tag: &str) -> usize {
        self.document()
            .descendants()
            .filter(|node| node.tag_name().name() == tag)
            .count()
    }
}

/// The Chromium binary of Debian's `chromium` package (`.ci/run` installs it).
pub const CHROMIUM: &str = "chromium";

/// Opens `page` in headless Chromium and returns its screenshot as RGBA pixels with its width.
pub fn screenshot(page: &Path, scratch: &Path) -> (Vec<u8>, u32) {
    let png = scratch.join("screenshot.png");
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,3000",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot start {CHROMIUM} ({error}); install it: apt-get install -y chromium")
        });
    assert!(
        png.exists(),
        "Chromium wrote no screenshot; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).expect("the screenshot"));
    let mut decoder = decoder;
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    pixels.truncate(info.buffer_size());
    assert_eq!(
        info.color_type,
        png::ColorType::Rgba,
        "RGBA after expansion"
    );
    (pixels, info.width)
}

/// The share of pixels in rows `rows` (of an RGBA image `width` wide) that are not white, and
/// how many distinct colours those rows hold.
pub fn ink(pixels: &[u8], width: u32, rows: std::ops::Range<u32>) -> (f64, usize) {
    let mut colours = std::collections::BTreeSet::new();
    let (mut inked, mut total) = (0u64, 0u64);
    for row in rows {
        for column in 0..width {
            let at = ((row * width + column) * 4) as usize;
            let Some(pixel) = pixels.get(at..at + 3) else {
                continue;
            };
            total += 1;
            if pixel.iter().any(|channel| *channel < 245) {
                inked += 1;
            }
            colours.insert((pixel[0], pixel[1], pixel[2]));
        }
    }
    (inked as f64 / total.max(1) as f64, colours.len())
}
