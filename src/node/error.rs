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
