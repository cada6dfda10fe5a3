//! Why an application's section cannot be read, and why its play stopped: the application
//! layer's own errors, which the scenario layer wraps in its own.

use crate::system::SystemError;

/// A field of an application's section that is not valid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field, e.g. `users[1].machine`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// An error naming `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A place in a document: a line and a column, both counted from 1 (the column in bytes, as
/// serde counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextPosition {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

/// Why an application's section cannot be read from a scenario's keys.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    /// A key is missing, unknown, or of the wrong type.
    #[error("{path}: {}", json_reason(source, at))]
    Json {
        /// Where in the section (e.g. `users[0].machine`, or `.` for the whole of it).
        path: String,
        /// What serde said (a line and column it gives count from the start of the key's value).
        source: serde_json::Error,
        /// Where in the document the error is, if serde placed it.
        at: Option<TextPosition>,
    },
    /// The section reads, but a field of it is not valid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
}

/// What serde said, placed in the whole document rather than in the key's value.
fn json_reason(source: &serde_json::Error, at: &Option<TextPosition>) -> String {
    let said = source.to_string();
    let placed = format!(" at line {} column {}", source.line(), source.column());
    let bare = said.strip_suffix(&placed).unwrap_or(&said);
    match at {
        Some(at) => format!("{bare} at line {} column {}", at.line, at.column),
        None => bare.to_owned(),
    }
}

/// Why an application's [`play`](super::Application::play) stopped.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// The system could not do what the play asked.
    #[error(transparent)]
    System(#[from] SystemError),
    /// A field of the section turned out not to be playable.
    #[error(transparent)]
    Section(#[from] FieldError),
}
