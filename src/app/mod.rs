//! Applications as plug-ins: an application bundles its node types, the section of a scenario
//! that sets it up, and what "correct" means. The runner, the report, seed sweeps, traces and
//! the command line work for any application without knowing it.
//!
//! A library user writes an [`Application`] in plain typed Rust; [`Applications`] is the set a
//! binary knows (its command line picks one by the scenario's `"application"` key).

mod direct;
mod error;
mod keys;

pub use direct::{send, spawn};
pub use error::{FieldError, PlayError, SectionError, TextPosition};
pub use keys::SectionKeys;

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::manager::NodeState;
use crate::messages::NodeHandle;
use crate::node::{NodeRegistry, TypedNode};
use crate::system::{Sim, States, Violation};
use crate::time::Millis;

/// What an application's check concluded about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<O> {
    /// Whether the run is correct.
    pub correct: bool,
    /// One line saying why, e.g. `all 6 outputs equal 88` or `2 of 6 outputs differ from 88`.
    pub summary: String,
    /// What the application reports: its fields join the JSON report's top level.
    pub outcome: O,
    /// Lines of the readable summary that show the outcome (before the verdict line).
    pub lines: Vec<String>,
}

/// What the generic part of a scenario says, for an application to validate its section
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    /// How many machines.
    pub machines: u32,
    /// How long the run lasts.
    pub run_ms: Millis,
}

/// A moment at which an application's script hands the system something (a user joins, an
/// action is played, a value is broadcast), with the field of the section that sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The field, e.g. `users[1].actions[2]` or `broadcasts[0].at_ms`.
    pub field: String,
    /// When, since the run started (for a time relative to another, the sum of the two).
    pub at: Millis,
}

impl Input {
    /// The input `field` sets, at `at`.
    pub fn new(field: impl Into<String>, at: Millis) -> Self {
        Input {
            field: field.into(),
            at,
        }
    }
}

/// Validates `section` for `app` against `common`: the application's own checks, then the rule
/// every application's inputs obey — each comes before the end of the run. An input at or
/// after `run_ms` would never be played, yet the check would expect it; it is refused, naming
/// its field.
pub fn validate_section<A: Application>(
    app: &A,
    section: &A::Section,
    common: &Common,
) -> Result<(), FieldError> {
    app.validate(section, common)?;
    match app
        .inputs(section)
        .into_iter()
        .find(|input| input.at >= common.run_ms)
    {
        Some(late) => Err(late_input(late.field, late.at, common.run_ms)),
        None => Ok(()),
    }
}

/// The error of an input `field` sets at `at`, at or after the end of a run of `run_ms`: the
/// rule [`validate_section`] applies, for an application that checks its inputs as it
/// validates.
pub fn late_input(field: impl Into<String>, at: Millis, run_ms: Millis) -> FieldError {
    FieldError::new(
        field,
        format!(
            "{at} is at or after the run ends (run_ms {run_ms}): it would never be played, yet the check would count it; make it earlier or run_ms longer"
        ),
    )
}

/// A distributed application: node types, a scenario section, a play and a check.
pub trait Application: Send + Sync + 'static {
    /// The name a scenario's `"application"` key gives, e.g. `"broadcast"`.
    const NAME: &'static str;
    /// What the readable summary calls it, e.g. `"broadcast workload"`.
    const TITLE: &'static str;
    /// The application's part of a scenario: every key besides the common ones (`machines`,
    /// `run_ms`, `seed`, `network`, `reliable_delivery`, `application`).
    type Section: DeserializeOwned + Serialize + Send + Sync + 'static;
    /// What the application reports (its fields join the JSON report's top level).
    type Outcome: Serialize;

    /// Registers the application's node types.
    fn register(&self, registry: &mut NodeRegistry);

    /// Hands a section just read or built what the rest of the scenario says — its common
    /// fields and its seed (the `seed` key as written, not a run's `--seed`) — before it is
    /// validated: for rules that need the machine count or draw what they describe from the
    /// seed, so that a sweep of seeds varies the run and never the workload. Nothing by default.
    fn prepare(&self, section: &mut Self::Section, common: &Common, seed: u64) {
        let _ = (section, common, seed);
    }

    /// Checks what the section's types alone cannot, naming the field at fault.
    fn validate(&self, section: &Self::Section, common: &Common) -> Result<(), FieldError>;

    /// Every moment the section's script hands the system something, with the field that sets
    /// it: the generic layer refuses a scenario with one at or after the end of the run (see
    /// [`validate_section`]), so that no application counts an input its run never played. An
    /// application whose play acts at times it reads from its section lists them here; none by
    /// default. A sequence of moments in order, or a rule that makes many, may stand for all of
    /// them by its latest (with the field that sets it).
    fn inputs(&self, section: &Self::Section) -> Vec<Input> {
        let _ = section;
        Vec::new()
    }

    /// The size of the run as the summary says it, e.g. `6 users` (after `3 machines, `).
    fn size(&self, section: &Self::Section) -> String;

    /// Whether the run is big enough to show a progress bar.
    fn is_large(&self, section: &Self::Section) -> bool {
        let _ = section;
        false
    }

    /// Builds the system and plays the section's script on it: spawn nodes, send them messages,
    /// run until times, strike with fault verbs. The runner runs on to the end of the run
    /// afterwards.
    fn play(&self, section: &Self::Section, sim: &mut Sim<'_>) -> Result<(), PlayError>;

    /// Judges the run from the nodes' states at its end.
    fn check(&self, section: &Self::Section, states: &[NodeState]) -> Verdict<Self::Outcome>;

    /// The invariant that must hold throughout the run, if the application has one: in
    /// simulated mode it is checked after every event, elsewhere between the runner's steps (a
    /// couple of hundred times a run), and a violation stops the run. None by default; an
    /// application with one returns `Some(Self::its_check)`. One over each node's state on its
    /// own reads only [`States::changed`].
    fn invariant(&self) -> Option<Invariant<Self>> {
        None
    }

    /// Whether [`Application::invariant`] applies to a run of `section` (the runner reads the
    /// states after every event only then). Yes by default.
    fn invariant_applies(&self, section: &Self::Section) -> bool {
        let _ = section;
        true
    }

    /// What the report plots over time: named values read from the nodes' states at one moment
    /// (sampled between the runner's steps). By default, how many nodes of each type exist.
    fn series(&self, section: &Self::Section, states: &[NodeState]) -> Vec<(String, f64)> {
        let _ = section;
        nodes_by_type(states)
    }

    /// What the plot of [`Application::series`] shows, e.g. `each output's total`.
    fn series_title(&self) -> &'static str {
        "nodes of each type"
    }

    /// The value every series should reach, with its label, drawn across the plot (e.g. the
    /// expected total). None by default.
    fn series_goal(&self, section: &Self::Section) -> Option<(String, f64)> {
        let _ = section;
        None
    }
}

/// How many nodes of each type are among `states`, by type name: the default
/// [`Application::series`].
pub fn nodes_by_type(states: &[NodeState]) -> Vec<(String, f64)> {
    let mut counts = std::collections::BTreeMap::<&str, f64>::new();
    for state in states {
        *counts.entry(state.node_type.as_str()).or_default() += 1.0;
    }
    counts
        .into_iter()
        .map(|(node_type, count)| (node_type.to_owned(), count))
        .collect()
}

/// An application's invariant: given its section and the nodes' typed states at some moment of
/// the run, `Ok` or what is wrong (the application's own violation type, boxed).
pub type Invariant<A> =
    fn(&A, &<A as Application>::Section, &States) -> Result<(), Box<dyn Violation>>;

/// Every node of type `N` among `states`, with its typed state.
pub fn states_of<N: TypedNode>(states: &[NodeState]) -> Vec<(NodeHandle, N::State)> {
    states
        .iter()
        .filter(|state| state.node_type == N::TYPE)
        .filter_map(|state| {
            serde_json::from_value(state.state.clone())
                .ok()
                .map(|typed| (state.handle, typed))
        })
        .collect()
}

/// A parsed section, whatever its application.
pub type AnySection = Arc<dyn Any + Send + Sync>;

/// A verdict whose outcome is JSON.
pub type AnyVerdict = Verdict<Map<String, Value>>;

/// An [`Application`] behind a pointer: what the runner and the command line work with.
pub trait AnyApplication: Send + Sync {
    /// [`Application::NAME`].
    fn name(&self) -> &'static str;
    /// [`Application::TITLE`].
    fn title(&self) -> &'static str;
    /// [`Application::register`].
    fn register(&self, registry: &mut NodeRegistry);
    /// Reads the section from a scenario's keys (each value's JSON text parsed once, straight
    /// into the section's types), hands it the scenario's `seed` ([`Application::prepare`]) and
    /// validates it.
    fn parse_section(
        &self,
        keys: &SectionKeys<'_>,
        common: &Common,
        seed: u64,
    ) -> Result<AnySection, SectionError>;
    /// The section as JSON (to write a scenario back).
    fn section_json(&self, section: &AnySection) -> Map<String, Value>;
    /// [`Application::size`].
    fn size(&self, section: &AnySection) -> String;
    /// [`Application::is_large`].
    fn is_large(&self, section: &AnySection) -> bool;
    /// [`Application::play`].
    fn play(&self, section: &AnySection, sim: &mut Sim<'_>) -> Result<(), PlayError>;
    /// [`Application::check`], with the outcome as JSON.
    fn check(&self, section: &AnySection, states: &[NodeState]) -> AnyVerdict;
    /// Whether [`Application::invariant`] gives one that applies to `section` (the runner only
    /// reads states for it then).
    fn has_invariant(&self, section: &AnySection) -> bool;
    /// Checks [`Application::invariant`] (`Ok` if there is none).
    fn invariant(&self, section: &AnySection, states: &States) -> Result<(), Box<dyn Violation>>;
    /// [`Application::series`].
    fn series(&self, section: &AnySection, states: &[NodeState]) -> Vec<(String, f64)>;
    /// [`Application::series_title`].
    fn series_title(&self) -> &'static str;
    /// [`Application::series_goal`].
    fn series_goal(&self, section: &AnySection) -> Option<(String, f64)>;
}

impl<A: Application> AnyApplication for A {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn title(&self) -> &'static str {
        A::TITLE
    }

    fn register(&self, registry: &mut NodeRegistry) {
        Application::register(self, registry);
    }

    fn parse_section(
        &self,
        keys: &SectionKeys<'_>,
        common: &Common,
        seed: u64,
    ) -> Result<AnySection, SectionError> {
        let mut section: A::Section = keys.deserialize()?;
        Application::prepare(self, &mut section, common, seed);
        validate_section(self, &section, common)?;
        Ok(Arc::new(section))
    }

    fn section_json(&self, section: &AnySection) -> Map<String, Value> {
        match downcast::<A>(section).map(serde_json::to_value) {
            Some(Ok(Value::Object(fields))) => fields,
            _ => Map::new(),
        }
    }

    fn size(&self, section: &AnySection) -> String {
        downcast::<A>(section).map_or_else(String::new, |section| Application::size(self, section))
    }

    fn is_large(&self, section: &AnySection) -> bool {
        downcast::<A>(section).is_some_and(|section| Application::is_large(self, section))
    }

    fn play(&self, section: &AnySection, sim: &mut Sim<'_>) -> Result<(), PlayError> {
        let section = downcast::<A>(section).ok_or_else(|| mismatch(A::NAME))?;
        Application::play(self, section, sim)
    }

    fn check(&self, section: &AnySection, states: &[NodeState]) -> AnyVerdict {
        let Some(section) = downcast::<A>(section) else {
            return Verdict {
                correct: false,
                summary: mismatch(A::NAME).to_string(),
                outcome: Map::new(),
                lines: Vec::new(),
            };
        };
        let verdict = Application::check(self, section, states);
        let outcome = match serde_json::to_value(&verdict.outcome) {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => Map::from_iter([("outcome".to_owned(), other)]),
            Err(error) => {
                Map::from_iter([("outcome_error".to_owned(), Value::String(error.to_string()))])
            }
        };
        Verdict {
            correct: verdict.correct,
            summary: verdict.summary,
            outcome,
            lines: verdict.lines,
        }
    }

    fn has_invariant(&self, section: &AnySection) -> bool {
        Application::invariant(self).is_some()
            && downcast::<A>(section)
                .is_none_or(|section| Application::invariant_applies(self, section))
    }

    fn invariant(&self, section: &AnySection, states: &States) -> Result<(), Box<dyn Violation>> {
        let Some(check) = Application::invariant(self) else {
            return Ok(());
        };
        match downcast::<A>(section) {
            Some(section) => check(self, section, states),
            None => Err(Box::new(mismatch(A::NAME).to_string())),
        }
    }

    fn series(&self, section: &AnySection, states: &[NodeState]) -> Vec<(String, f64)> {
        downcast::<A>(section).map_or_else(Vec::new, |section| {
            Application::series(self, section, states)
        })
    }

    fn series_title(&self) -> &'static str {
        Application::series_title(self)
    }

    fn series_goal(&self, section: &AnySection) -> Option<(String, f64)> {
        downcast::<A>(section).and_then(|section| Application::series_goal(self, section))
    }
}

fn downcast<A: Application>(section: &AnySection) -> Option<&A::Section> {
    section.downcast_ref::<A::Section>()
}

fn mismatch(name: &str) -> FieldError {
    FieldError::new(
        "application",
        format!("the scenario was not read for the `{name}` application"),
    )
}

/// An application's name given to two applications: the second is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("application `{name}` is registered twice: first by {first}, then by {second}")]
pub struct DuplicateApplication {
    /// The name, e.g. `kv`.
    pub name: &'static str,
    /// The Rust type of the application registered first.
    pub first: &'static str,
    /// The Rust type of the one refused.
    pub second: &'static str,
}

/// The applications a binary knows. A scenario names one with its `"application"` key; a
/// scenario that names none runs the first.
#[derive(Clone, Default)]
pub struct Applications {
    known: Vec<(&'static str, Arc<dyn AnyApplication>)>,
}

impl Applications {
    /// A set holding `app` alone.
    pub fn of<A: Application>(app: A) -> Self {
        Applications {
            known: vec![(std::any::type_name::<A>(), Arc::new(app))],
        }
    }

    /// This set and `app`, unless an application of that name is in it already.
    pub fn with<A: Application>(mut self, app: A) -> Result<Self, DuplicateApplication> {
        if let Some((first, _)) = self.known.iter().find(|(_, known)| known.name() == A::NAME) {
            return Err(DuplicateApplication {
                name: A::NAME,
                first,
                second: std::any::type_name::<A>(),
            });
        }
        self.known.push((std::any::type_name::<A>(), Arc::new(app)));
        Ok(self)
    }

    /// The application called `name`.
    pub fn find(&self, name: &str) -> Option<Arc<dyn AnyApplication>> {
        self.known
            .iter()
            .find(|(_, app)| app.name() == name)
            .map(|(_, app)| Arc::clone(app))
    }

    /// The application a scenario without an `"application"` key runs.
    pub fn default_app(&self) -> Option<Arc<dyn AnyApplication>> {
        self.known.first().map(|(_, app)| Arc::clone(app))
    }

    /// The names of the applications, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.known.iter().map(|(_, app)| app.name()).collect()
    }

    /// A registry with every node type of every application (see [`NodeRegistry::check`] for
    /// two applications that register one name for two types).
    pub fn registry(&self) -> NodeRegistry {
        let mut registry = NodeRegistry::new();
        for (_, app) in &self.known {
            app.register(&mut registry);
        }
        registry
    }
}
