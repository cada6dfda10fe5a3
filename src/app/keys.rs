//! An application's keys of a scenario, as the file has them: each key with its value's JSON
//! text, untouched until the application that owns them is known, then parsed once, straight
//! into the section's types.

use serde::de::value::{MapAccessDeserializer, MapDeserializer};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::{SectionError, TextPosition};

/// The keys and values of a section, as a map deserializer reads them.
type Pairs<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, &'a RawValue)>,
    fn(&'a (String, &'a RawValue)) -> (&'a str, &'a RawValue),
>;

fn pair<'a>(entry: &'a (String, &'a RawValue)) -> (&'a str, &'a RawValue) {
    (entry.0.as_str(), entry.1)
}

/// The keys of a scenario that are not common to every scenario (`machines`, `run_ms`, …): the
/// application's section, in the order the file gives them, each value still its JSON text.
#[derive(Debug, Clone, Copy)]
pub struct SectionKeys<'a> {
    /// The whole document the values were taken from (to say where in it an error is).
    text: &'a str,
    /// Each key and its value's text, a slice of `text`.
    entries: &'a [(String, &'a RawValue)],
}

impl<'a> SectionKeys<'a> {
    /// The keys `entries`, whose values are slices of the document `text`.
    pub fn new(text: &'a str, entries: &'a [(String, &'a RawValue)]) -> Self {
        SectionKeys { text, entries }
    }

    /// No keys at all: a section made only of its defaults.
    pub fn none() -> Self {
        SectionKeys {
            text: "",
            entries: &[],
        }
    }

    /// The keys, as the section `S`: every value parsed once from its text. An error names the
    /// field (`users[0].machine`) and, where serde saw it, its line and column in the document.
    pub fn deserialize<S: DeserializeOwned>(&self) -> Result<S, SectionError> {
        // Tracking the path costs a string for every key read: it is tracked only to name the
        // field of an error, reading the keys again (the same text fails at the same place).
        let mut map = self.map();
        if let Ok(section) = S::deserialize(MapAccessDeserializer::new(&mut map)) {
            if map.end().is_ok() {
                return Ok(section);
            }
        }
        let mut map = self.map();
        let whole = MapAccessDeserializer::new(&mut map);
        let section: S = serde_path_to_error::deserialize(whole).map_err(|e| {
            let path = e.path().to_string();
            let key = e.path().iter().next().and_then(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            let source = e.into_inner();
            let at = key.and_then(|key| self.position(&key, &source));
            SectionError::Json { path, source, at }
        })?;
        map.end().map_err(|source| SectionError::Json {
            path: ".".into(),
            source,
            at: None,
        })?;
        Ok(section)
    }

    /// The keys as a map to deserialize.
    fn map(&self) -> MapDeserializer<'a, Pairs<'a>, serde_json::Error> {
        let entries: &'a [(String, &'a RawValue)] = self.entries;
        MapDeserializer::new(entries.iter().map(pair as fn(_) -> _))
    }

    /// Where in the document `error`, which serde placed within the value of `key`, is.
    fn position(&self, key: &str, error: &serde_json::Error) -> Option<TextPosition> {
        if error.line() == 0 {
            return None;
        }
        let (_, raw) = self.entries.iter().find(|(name, _)| name == key)?;
        let offset = (raw.get().as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        let before = self.text.get(..offset)?;
        let lines_before = before.bytes().filter(|byte| *byte == b'\n').count();
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = if error.line() == 1 {
            offset - line_start + error.column()
        } else {
            error.column()
        };
        Some(TextPosition {
            line: lines_before + error.line(),
            column,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        names: Vec<String>,
    }

    /// The raw values of a document's top-level keys.
    fn entries(text: &str) -> Vec<(String, &RawValue)> {
        let map: std::collections::BTreeMap<String, &RawValue> =
            serde_json::from_str(text).expect("an object");
        map.into_iter().collect()
    }

    #[test]
    fn simulated_section_keys_parse_into_the_section() {
        let text = r#"{"count": 3, "names": ["a", "b"]}"#;
        let pairs = entries(text);
        let section: Section = SectionKeys::new(text, &pairs).deserialize().expect("valid");
        assert_eq!(
            section,
            Section {
                count: 3,
                names: vec!["a".into(), "b".into()]
            }
        );
        let empty: Section = SectionKeys::none().deserialize().expect("defaults");
        assert_eq!(empty.count, 0);
    }

    #[test]
    fn simulated_section_errors_name_the_field_and_its_place_in_the_document() {
        let text = "{\n  \"count\": 3,\n  \"names\": [\"a\",\n    7]\n}";
        let pairs = entries(text);
        let error = SectionKeys::new(text, &pairs)
            .deserialize::<Section>()
            .expect_err("7 is no name");
        assert_eq!(
            error.to_string(),
            "names[1]: invalid type: integer `7`, expected a string at line 4 column 5"
        );
        let text = r#"{"count": 1, "colour": 2}"#;
        let pairs = entries(text);
        let unknown = SectionKeys::new(text, &pairs)
            .deserialize::<Section>()
            .expect_err("unknown");
        assert!(
            unknown.to_string().contains("unknown field `colour`"),
            "{unknown}"
        );
        let text = r#"{"count": "x"}"#;
        let pairs = entries(text);
        let first_line = SectionKeys::new(text, &pairs)
            .deserialize::<Section>()
            .expect_err("a string");
        assert!(
            first_line.to_string().ends_with("at line 1 column 13"),
            "{first_line}"
        );
    }
}
