//! Why a node could not handle something.

use crate::messages::MessageError;

/// An error a node raises; in the simulator it stops the run with the trace that led to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// A message or config did not have the shape the node expects.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The node received a message type it does not handle.
    #[error("{node_type} does not handle `{kind}` messages")]
    UnexpectedMessage {
        /// The receiving node's type.
        node_type: &'static str,
        /// The message's `"type"`.
        kind: String,
    },
    /// The runtime could not read a message as one the receiving node type handles (an unknown
    /// `"type"`, or fields of the wrong shape).
    #[error("{node_type} rejected a `{kind}` message: {reason}")]
    Rejected {
        /// The receiving node's type.
        node_type: &'static str,
        /// The message's `"type"`.
        kind: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A config named a node type nobody registered.
    #[error("unknown node type `{0}`")]
    UnknownNodeType(String),
    /// A broken invariant of the node's own protocol.
    #[error("{0}")]
    Protocol(String),
}
