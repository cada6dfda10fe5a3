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

/// Why an application's section cannot be read from a scenario's keys.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    /// A key is missing, unknown, or of the wrong type.
    #[error("{path}: {source}")]
    Json {
        /// Where in the section (e.g. `users[0].machine`, or `.` for the whole of it).
        path: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The section reads, but a field of it is not valid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
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
