//! The sum network, DistZero's first application: users join, each increments a counter, and
//! every user's output converges to the total of all increments.
//!
//! Topology, as in the original: an input list (an [`InputNode`] root with one [`InputLeafNode`]
//! kid per user, which plays back that user's [`RecordedUser`] actions), a [`SumNode`] that
//! batches increments and forwards them every 30 ms, and an output list (an [`OutputNode`] root
//! with one [`OutputLeafNode`] kid per user, whose state is that user's view of the total).
//!
//! With `"tree": {"max_kids": k}` in its section the network is self-scaling instead: an input
//! tree and an output tree joined at a centre ([`TreeNode`], [`TreeLeaf`], [`TreeCentre`]; see
//! `docs/applications.md`, Self-scaling trees).
//!
//! It is built exactly as a library user's application would be: typed nodes, a scenario
//! section ([`SumSection`]: the `users` key, users listed one by one, and the `crowds` key, users
//! by rule), a play and a check ([`SumApp`]).

mod app;
mod chunked;
mod crowd;
mod input;
mod output;
mod protocol;
mod recorded_user;
mod roster;
mod section;
mod sum_node;
mod tree;
mod tree_check;

pub use app::{SumApp, SumOutcome, TreeHeights};
pub use chunked::Chunked;
pub use crowd::{Amount, Crowd, CrowdContext, MachineSet};
pub use input::{InputConfig, InputLeafNode, InputLeafState, InputNode, InputState, LeafConfig};
pub use output::{
    OutputConfig, OutputLeafConfig, OutputLeafNode, OutputLeafState, OutputNode, OutputState,
};
pub use protocol::{SumMessage, UserAction};
pub use recorded_user::{RecordedUser, RecordedUserError};
pub use roster::User;
pub use section::{SumSection, TreeSpec, UserSpec, MAX_TREE_KIDS, MAX_USERS};
pub use sum_node::{Flush, SumConfig, SumNode, SumState, DEFAULT_SEND_INTERVAL_MS};
pub use tree::{
    ClosedEdge, Edge, GoneLeaf, JoinRequest, Kid, LeafTimer, Op, Received, Role, TreeCentre,
    TreeCentreConfig, TreeCentreData, TreeCentreState, TreeData, TreeFlush, TreeLeaf,
    TreeLeafConfig, TreeLeafData, TreeLeafState, TreeMessage, TreeNode, TreeNodeConfig,
    TreeNodeState, TreeTimer, ABSORB_AFTER_MS, MERGE_AFTER_MS, TREE_INTERVAL_MS,
};
pub use tree_check::{at_rest_problems, tree_height, tree_invariant, TreeViolation};

use crate::node::NodeError;

/// Adds `amount` to a running total, as a node error rather than a panic or a wrap-around if the
/// total would leave the range of an `i64`.
fn add_to_total(total: i64, amount: i64) -> Result<i64, NodeError> {
    total.checked_add(amount).ok_or_else(|| {
        NodeError::Protocol(format!(
            "adding {amount} to the total {total} overflows a 64-bit integer"
        ))
    })
}

/// The error of a node of type `node_type` that received a message it does not handle.
fn unexpected(node_type: &'static str, message: &SumMessage) -> NodeError {
    let kind = match message {
        SumMessage::Increment { .. } => "increment",
        SumMessage::AddInputKid { .. } => "add_input_kid",
        SumMessage::AddOutputKid { .. } => "add_output_kid",
        SumMessage::AddSender { .. } => "add_sender",
        SumMessage::AddReceiver { .. } => "add_receiver",
    };
    NodeError::UnexpectedMessage {
        node_type,
        kind: kind.to_owned(),
    }
}
