//! A node's failure, one type in every mode: raised in the simulator, or on a machine in a
//! container or an instance and carried to the runner over the control connection.

use serde::{Deserialize, Serialize};

use crate::messages::NodeHandle;
use crate::node::{NodeError, NodeErrorKind};
use crate::time::Micros;

/// A node raised an error: which node, of what type, what kind of error, what it said, and when
/// on the run's clock. Serializable, so that a machine in another process reports it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("node {node} ({node_type}) failed: {message}")]
pub struct NodeFailure {
    /// The failing node.
    pub node: NodeHandle,
    /// Its type, from its config.
    pub node_type: String,
    /// Which kind of error it raised.
    pub kind: NodeErrorKind,
    /// What the error said.
    pub message: String,
    /// When, in microseconds since the run started (virtual time in the simulator, the run's
    /// clock elsewhere).
    pub at_us: Micros,
}

impl NodeFailure {
    /// Node `node` of type `node_type` raised `error` at `at_us`.
    pub fn new(node: NodeHandle, node_type: &str, error: &NodeError, at_us: Micros) -> Self {
        NodeFailure {
            node,
            node_type: node_type.to_owned(),
            kind: error.kind(),
            message: error.to_string(),
            at_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{MachineId, NodeId};

    #[test]
    fn simulated_a_node_failure_round_trips_through_json_with_its_kind() {
        let node = NodeHandle {
            id: NodeId {
                origin: 1,
                serial: 4,
            },
            machine: MachineId(1),
        };
        let error = NodeError::Protocol("the total went down".into());
        let failure = NodeFailure::new(node, "SumNode", &error, Micros(2_500));
        assert_eq!(failure.kind, NodeErrorKind::Protocol);
        assert_eq!(failure.message, "the total went down");
        let json = serde_json::to_value(&failure).expect("encodes");
        assert_eq!(json["kind"], "protocol");
        assert_eq!(json["at_us"], 2_500);
        let back: NodeFailure = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, failure);
    }
}
