//! Logical names for machines and nodes. Each mode keeps its own address book that maps these
//! names to something physical (an index in the simulator, a container address in virtual mode).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A machine handle: the logical index of one machine of a system (`0` hosts the roots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MachineId(pub u32);

impl MachineId {
    /// The machine's position in a system's list of machines.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<u32> for MachineId {
    fn from(index: u32) -> Self {
        MachineId(index)
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// A node's system-wide unique name: the machine that named it and a serial number that machine
/// never reuses. Written `n<origin>.<serial>`, e.g. `n0.3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// The machine whose NodeManager allocated this id (not necessarily where the node runs).
    pub origin: u32,
    /// The allocating machine's counter value.
    pub serial: u32,
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}.{}", self.origin, self.serial)
    }
}

/// Why a string is not a node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a node id (expected n<machine>.<serial>, e.g. n0.3)")]
pub struct ParseNodeIdError(String);

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseNodeIdError(text.to_owned());
        let rest = text.strip_prefix('n').ok_or_else(bad)?;
        let (origin, serial) = rest.split_once('.').ok_or_else(bad)?;
        Ok(NodeId {
            origin: origin.parse().map_err(|_| bad())?,
            serial: serial.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node handle: names a node and the machine it runs on, which is all a sender needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeHandle {
    /// The node's unique name.
    pub id: NodeId,
    /// The machine the node runs on.
    pub machine: MachineId,
}

impl fmt::Display for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.machine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_node_handle_round_trips_through_json() {
        let handle = NodeHandle {
            id: NodeId {
                origin: 2,
                serial: 17,
            },
            machine: MachineId(5),
        };
        let json = serde_json::to_string(&handle).expect("serializes");
        assert_eq!(json, r#"{"id":"n2.17","machine":5}"#);
        let back: NodeHandle = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, handle);
    }

    #[test]
    fn simulated_malformed_node_ids_are_rejected() {
        for bad in ["", "n", "n1", "x1.2", "n1.", "n.2", "n-1.2", "n1.2.3"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad} parsed");
        }
    }
}
