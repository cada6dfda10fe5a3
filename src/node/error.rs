//! Why a node could not handle something.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// With the wire check on: a message decoded as the receiver's type and encoded again is not
    /// what came over the wire (the type's serde form loses or invents something).
    #[error("{node_type}: a message does not survive a round trip through its type: received {received}, re-encoded {reencoded}")]
    WireMismatch {
        /// The receiving node's type.
        node_type: &'static str,
        /// The message as it came over the wire.
        received: String,
        /// The message decoded and encoded again.
        reencoded: String,
    },
    /// A config named a node type nobody registered.
    #[error("unknown node type `{0}`")]
    UnknownNodeType(String),
    /// A broken invariant of the node's own protocol.
    #[error("{0}")]
    Protocol(String),
}

/// Which kind of [`NodeError`] a node raised, without its details: what a [`NodeFailure`]
/// carries across machines and into reports, so that a test matches the kind and not the prose.
///
/// [`NodeFailure`]: crate::manager::NodeFailure
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeErrorKind {
    /// [`NodeError::Message`]: a message or config of the wrong shape.
    Message,
    /// [`NodeError::UnexpectedMessage`]: a message type the node does not handle.
    UnexpectedMessage,
    /// [`NodeError::Rejected`]: a message the runtime could not read as the node's type.
    Rejected,
    /// [`NodeError::WireMismatch`]: a message that does not survive a round trip through its type.
    WireMismatch,
    /// [`NodeError::UnknownNodeType`]: a config naming a node type nobody registered.
    UnknownNodeType,
    /// [`NodeError::Protocol`]: a broken invariant of the node's own protocol.
    Protocol,
}

impl NodeError {
    /// Which kind of error this is.
    pub fn kind(&self) -> NodeErrorKind {
        match self {
            NodeError::Message(_) => NodeErrorKind::Message,
            NodeError::UnexpectedMessage { .. } => NodeErrorKind::UnexpectedMessage,
            NodeError::Rejected { .. } => NodeErrorKind::Rejected,
            NodeError::WireMismatch { .. } => NodeErrorKind::WireMismatch,
            NodeError::UnknownNodeType(_) => NodeErrorKind::UnknownNodeType,
            NodeError::Protocol(_) => NodeErrorKind::Protocol,
        }
    }
}

impl fmt::Display for NodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeErrorKind::Message => "message",
            NodeErrorKind::UnexpectedMessage => "unexpected_message",
            NodeErrorKind::Rejected => "rejected",
            NodeErrorKind::WireMismatch => "wire_mismatch",
            NodeErrorKind::UnknownNodeType => "unknown_node_type",
            NodeErrorKind::Protocol => "protocol",
        })
    }
}
