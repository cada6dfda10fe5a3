//! The scenario file format, parsed and then validated so that every later step can trust it:
//! the keys every run has (machines, length, seed, network), and the application's section.
//!
//! A file is parsed in one pass: the common keys straight into their types, the application's
//! keys kept as slices of the text (no JSON tree is built) until the file has said which
//! application it is for, then parsed once, straight into that application's section.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::app::{
    validate_section, AnyApplication, AnySection, Application, Applications, Common, SectionError,
    SectionKeys,
};
use crate::faults::{NetworkConfig, NetworkConfigError};
use crate::files::{read_text_limited, MAX_SCENARIO_BYTES};
use crate::time::Millis;

/// Why a scenario cannot be run. Each message names the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read, is too large, or is not UTF-8.
    #[error("cannot read scenario {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The text is not JSON, or a common key (`machines`, `run_ms`, …) is missing or of the
    /// wrong type.
    #[error("invalid scenario: {path}: {reason}")]
    Json {
        /// Where in the document (e.g. `machines`, or `.` for the whole document).
        path: String,
        /// What serde said.
        reason: String,
    },
    /// The application's section cannot be read, or a field of it is not valid.
    #[error("invalid scenario: {0}")]
    Section(#[from] SectionError),
    /// The network or fault settings are out of range.
    #[error("invalid scenario: {0}")]
    Network(#[from] NetworkConfigError),
    /// The JSON is well formed but its common keys are not a runnable scenario.
    #[error("invalid scenario: {field}: {reason}")]
    Invalid {
        /// The offending field (e.g. `machines` or `application`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A run: how many machines, for how long, on which seed and network, and the application's own
/// section (its keys sit beside the common ones in the file).
#[derive(Clone)]
pub struct Scenario {
    /// How many machines.
    pub machines: u32,
    /// How long the run lasts.
    pub run_ms: Millis,
    /// The seed of every random choice (default 0).
    pub seed: u64,
    /// The network model: latency and faults.
    pub network: NetworkConfig,
    /// Whether the runtime's reliable delivery (sequence numbers, acknowledgements,
    /// retransmission) runs between machines. On unless a run is to show what it is for.
    pub reliable_delivery: bool,
    app: Arc<dyn AnyApplication>,
    section: AnySection,
}

/// The keys every scenario has, and the rest (the application's section), each of the rest
/// with its value's JSON text.
struct TopLevel<'a> {
    application: Option<String>,
    machines: u32,
    run_ms: Millis,
    seed: u64,
    network: NetworkConfig,
    reliable_delivery: bool,
    section: Vec<(String, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopLevelVisitor)
    }
}

/// Reads the top-level object key by key, as serde's derive would (missing and duplicate
/// common keys are named), keeping every other key's value as it is written.
struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scenario: one JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<TopLevel<'de>, M::Error> {
        fn once<T, E: de::Error>(
            slot: &mut Option<T>,
            key: &'static str,
            value: T,
        ) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::duplicate_field(key)),
                None => Ok(()),
            }
        }
        let (mut application, mut machines, mut run_ms, mut seed) = (None, None, None, None);
        let (mut network, mut reliable_delivery) = (None, None);
        let mut section = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "application" => once(&mut application, "application", map.next_value()?)?,
                "machines" => once(&mut machines, "machines", map.next_value()?)?,
                "run_ms" => once(&mut run_ms, "run_ms", map.next_value()?)?,
                "seed" => once(&mut seed, "seed", map.next_value()?)?,
                "network" => once(&mut network, "network", map.next_value()?)?,
                "reliable_delivery" => once(
                    &mut reliable_delivery,
                    "reliable_delivery",
                    map.next_value()?,
                )?,
                _ => {
                    let value: &'de RawValue = map.next_value()?;
                    section.push((key, value));
                }
            }
        }
        Ok(TopLevel {
            application: application.flatten(),
            machines: machines.ok_or_else(|| de::Error::missing_field("machines"))?,
            run_ms: run_ms.ok_or_else(|| de::Error::missing_field("run_ms"))?,
            seed: seed.unwrap_or(0),
            network: network.unwrap_or_default(),
            reliable_delivery: reliable_delivery.unwrap_or(true),
            section,
        })
    }
}

/// The most machines a scenario may ask for.
pub const MAX_MACHINES: u32 = 100_000;

impl Scenario {
    /// A scenario of `app` with `section`, on `machines` machines for `run_ms`, with the default
    /// network and reliable delivery; the section is validated.
    pub fn new<A: Application>(
        app: A,
        section: A::Section,
        machines: u32,
        run_ms: Millis,
        seed: u64,
    ) -> Result<Self, ScenarioError> {
        let mut section = section;
        let common = Common { machines, run_ms };
        app.prepare(&mut section, &common, seed);
        validate_section(&app, &section, &common).map_err(SectionError::from)?;
        let scenario = Scenario {
            machines,
            run_ms,
            seed,
            network: NetworkConfig::default(),
            reliable_delivery: true,
            app: Arc::new(app),
            section: Arc::new(section),
        };
        scenario.validate_common()?;
        Ok(scenario)
    }

    /// Reads and validates a scenario file (at most [`MAX_SCENARIO_BYTES`] of it) for one of
    /// `apps`, as [`Scenario::parse`] does.
    pub fn load(path: &Path, apps: &Applications) -> Result<Self, ScenarioError> {
        Self::load_limited(path, apps, MAX_SCENARIO_BYTES)
    }

    /// As [`Scenario::load`], reading at most `max_bytes` of the file (`--max-input-mb`): a
    /// larger file, or an endless one, is refused after `max_bytes` and one byte more.
    pub fn load_limited(
        path: &Path,
        apps: &Applications,
        max_bytes: u64,
    ) -> Result<Self, ScenarioError> {
        let text = read_text_limited(path, max_bytes).map_err(|e| ScenarioError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, apps)
    }

    /// Parses and validates scenario JSON for one of `apps`: one object, with nothing but white
    /// space after it. A scenario without an `"application"` key is for the first of `apps`.
    /// DistZero's own binary knows [`builtin`](crate::apps::builtin) applications; a library
    /// user's, its own (`Applications::of(MyApp)`).
    pub fn parse(text: &str, apps: &Applications) -> Result<Self, ScenarioError> {
        let fields = top_level(text)?;
        let app = match &fields.application {
            Some(name) => apps.find(name).ok_or_else(|| {
                invalid(
                    "application",
                    &format!(
                        "no application `{name}`; this program knows {}",
                        apps.names().join(", ")
                    ),
                )
            })?,
            None => apps
                .default_app()
                .ok_or_else(|| invalid("application", "this program knows no application"))?,
        };
        let mut scenario = Scenario {
            machines: fields.machines,
            run_ms: fields.run_ms,
            seed: fields.seed,
            network: fields.network,
            reliable_delivery: fields.reliable_delivery,
            section: Arc::new(()),
            app,
        };
        scenario.validate_common()?;
        let keys = SectionKeys::new(text, &fields.section);
        scenario.section = scenario
            .app
            .parse_section(&keys, &scenario.common(), scenario.seed)?;
        Ok(scenario)
    }

    /// The application the scenario is for.
    pub fn app(&self) -> &Arc<dyn AnyApplication> {
        &self.app
    }

    /// The application's section.
    pub fn section(&self) -> &AnySection {
        &self.section
    }

    /// The section, if the scenario is for application `A`.
    pub fn section_of<A: Application>(&self) -> Option<&A::Section> {
        self.section.downcast_ref::<A::Section>()
    }

    /// The common fields an application validates its section against.
    pub fn common(&self) -> Common {
        Common {
            machines: self.machines,
            run_ms: self.run_ms,
        }
    }

    /// Checks the common fields (the section is checked when it is read or built): the machine
    /// count, the run's length, the network.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_common()
    }

    fn validate_common(&self) -> Result<(), ScenarioError> {
        if self.machines == 0 || self.machines > MAX_MACHINES {
            return Err(invalid(
                "machines",
                &format!(
                    "{} machines: a system has from 1 to {MAX_MACHINES} machines",
                    self.machines
                ),
            ));
        }
        if let Err(beyond) = self.run_ms.within_horizon() {
            return Err(invalid("run_ms", &beyond.to_string()));
        }
        Ok(self.network.validate(self.machines)?)
    }

    /// The scenario as JSON, as a file would hold it.
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        fields.insert("application".into(), self.app.name().into());
        fields.insert("machines".into(), self.machines.into());
        fields.insert("run_ms".into(), self.run_ms.0.into());
        fields.insert("seed".into(), self.seed.into());
        if let Ok(network) = serde_json::to_value(&self.network) {
            fields.insert("network".into(), network);
        }
        fields.insert("reliable_delivery".into(), self.reliable_delivery.into());
        fields.extend(self.app.section_json(&self.section));
        Value::Object(fields)
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl PartialEq for Scenario {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

/// The document's top level, in one pass: the common keys read, the application's kept as
/// their text. The path of an error is tracked only when there is one, by reading again (a
/// string for every key read would cost more than the rest of the reading).
fn top_level(text: &str) -> Result<TopLevel<'_>, ScenarioError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    if let Ok(fields) = TopLevel::deserialize(&mut deserializer) {
        deserializer.end().map_err(|e| ScenarioError::Json {
            path: ".".into(),
            reason: format!("{e} after the scenario object; a file holds one scenario"),
        })?;
        return Ok(fields);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let error = match serde_path_to_error::deserialize::<_, TopLevel<'_>>(&mut deserializer) {
        Err(e) => ScenarioError::Json {
            path: e.path().to_string(),
            reason: e.into_inner().to_string(),
        },
        Ok(_) => ScenarioError::Json {
            path: ".".into(),
            reason: "the scenario reads only when its path is tracked".into(),
        },
    };
    Err(error)
}

fn invalid(field: &str, reason: &str) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
      "machines": 3, "run_ms": 700, "seed": 1,
      "network": {"latency_ms": {"mean": 20.0, "stddev": 3.0}},
      "users": [
        {"name": "user b", "machine": 1, "join_ms": 30,
         "actions": [[30, {"type": "increment", "amount": 2}], [60, {"type": "increment", "amount": 1}]]},
        {"name": "user c", "machine": 2, "join_ms": 30,
         "actions": [[110, {"type": "increment", "amount": 1}]]}
      ]
    }"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, &crate::apps::builtin())
    }

    fn error_of(text: &str) -> String {
        parse(text).expect_err("should be rejected").to_string()
    }

    #[test]
    fn simulated_the_issue_example_parses_with_total_four() {
        let scenario = parse(EXAMPLE).expect("valid");
        assert_eq!(
            scenario.app().name(),
            "sum",
            "no `application` key: the sum network"
        );
        let section = scenario
            .section_of::<crate::apps::sum::SumApp>()
            .expect("a sum scenario");
        assert_eq!(section.expected_total(), 4);
        assert_eq!(section.users.len(), 2);
    }

    #[test]
    fn simulated_missing_and_mistyped_fields_are_named() {
        assert!(error_of(r#"{"run_ms": 5}"#).contains("machines"));
        let mistyped =
            error_of(r#"{"machines": 2, "run_ms": 5, "users": [{"name": "a", "machine": "one"}]}"#);
        assert!(mistyped.contains("users[0].machine"), "{mistyped}");
        assert!(error_of("{").contains("EOF"), "{}", error_of("{"));
        let unknown = error_of(r#"{"machines": 2, "run_ms": 5, "colour": 1}"#);
        assert!(unknown.contains("colour"), "{unknown}");
    }

    #[test]
    fn simulated_out_of_range_machine_is_rejected() {
        let text =
            error_of(r#"{"machines": 2, "run_ms": 5, "users": [{"name": "a", "machine": 2}]}"#);
        assert!(
            text.contains("users[0].machine") && text.contains("out of range"),
            "{text}"
        );
    }

    #[test]
    fn simulated_negative_and_unordered_times_are_rejected() {
        let negative = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[-5, {"type": "increment", "amount": 1}]]}]}"#,
        );
        assert!(
            negative.contains("users[0].actions[0]") && negative.contains("negative"),
            "{negative}"
        );
        let join = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "join_ms": -1}]}"#,
        );
        assert!(join.contains("users[0].join_ms"), "{join}");
        let unordered = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[9, {"type": "increment", "amount": 1}], [3, {"type": "increment", "amount": 1}]]}]}"#,
        );
        assert!(
            unordered.contains("users[0].actions[1]") && unordered.contains("in order"),
            "{unordered}"
        );
    }

    #[test]
    fn simulated_trailing_text_and_late_or_far_times_are_rejected() {
        let twice = error_of(&format!("{EXAMPLE} {EXAMPLE}"));
        assert!(twice.contains("trailing characters"), "{twice}");
        assert!(error_of(&format!("{EXAMPLE}x")).contains("trailing"));
        assert!(parse(&format!("{EXAMPLE} \n\t")).is_ok());
        let late = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "join_ms": 6}]}"#,
        );
        assert!(
            late.contains("users[0].join_ms") && late.contains("after the run ends"),
            "{late}"
        );
        let far = error_of(&format!(r#"{{"machines": 1, "run_ms": {}}}"#, u64::MAX));
        assert!(far.contains("run_ms") && far.contains("beyond"), "{far}");
        let fraction = error_of(r#"{"machines": 1, "run_ms": 5.5}"#);
        assert!(
            fraction.contains("run_ms") && fraction.contains("whole"),
            "{fraction}"
        );
    }

    #[test]
    fn simulated_bad_actions_and_duplicate_names_are_rejected() {
        let bad_amount = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[1, {"type": "increment", "amount": "x"}]]}]}"#,
        );
        assert!(bad_amount.contains("users[0].actions[0]"), "{bad_amount}");
        let untyped = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0, "actions": [[1, {"amount": 1}]]}]}"#,
        );
        assert!(untyped.contains("type"), "{untyped}");
        let twice = error_of(
            r#"{"machines": 1, "run_ms": 5, "users": [{"name": "a", "machine": 0}, {"name": "a", "machine": 0}]}"#,
        );
        assert!(twice.contains("users[1].name"), "{twice}");
    }
}
