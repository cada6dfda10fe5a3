//! What travels on a machine's two ports: peer frames between machines, and control requests
//! from the process that runs the system. Both are JSON in [frames](super::frame).
//!
//! The enums here are externally tagged (`{"variant": {...}}`) on purpose: serde decodes those
//! in one pass, while internally tagged ones buffer their fields first, which a
//! [`Message`] (kept as raw JSON) cannot be decoded from.

use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::faults::Fault;
use crate::manager::{Envelope, NodeFailure, NodeState};
use crate::messages::{MachineId, Message, NodeConfig, NodeHandle, NodeId};

/// One frame on a machine-to-machine connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerFrame {
    /// First frame of every connection: who is calling, and the run's secret.
    Hello {
        /// The calling machine.
        from: MachineId,
        /// The run's secret token.
        token: String,
    },
    /// An envelope for the receiving machine's NodeManager, carried as is.
    Envelope {
        /// The envelope.
        envelope: Envelope,
    },
    /// Asks the receiver to answer [`PeerFrame::Pong`] at once (round-trip measurement).
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// The answer to a [`PeerFrame::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
}

/// A control request as it travels: the request and the run's secret token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorized {
    /// The run's secret token; requests without the right one are refused.
    pub token: String,
    /// The request.
    pub request: ControlRequest,
}

/// What the process running the system may ask a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRequest {
    /// Are you alive? Answered with [`ControlResponse::Status`].
    Status,
    /// Start a node from `config` on this machine.
    StartNode {
        /// The node's config.
        config: NodeConfig,
    },
    /// Deliver `message` to node `to` on this machine, from outside the system.
    Deliver {
        /// The receiving node.
        to: NodeId,
        /// The message.
        message: Message,
    },
    /// Deliver each message to its node on this machine, in order, from outside the system
    /// (answered with [`ControlResponse::DeliveredAll`]).
    DeliverAll {
        /// (receiving node, message) pairs.
        deliveries: Vec<(NodeId, Message)>,
    },
    /// The state of every node on this machine.
    NodeStates,
    /// Measure `count` round trips to machine `to` over a dedicated peer connection.
    PingPeer {
        /// The other machine.
        to: MachineId,
        /// How many round trips.
        count: u32,
    },
    /// The machine's structured trace from byte `offset` on: whole lines, at most
    /// [`TRACE_CHUNK`] bytes (answered with [`ControlResponse::Trace`]). For a runner that cannot
    /// read the machine's files (cloud mode).
    ReadTrace {
        /// Where to start, in bytes; the previous answer's end.
        offset: u64,
    },
    /// Apply a fault verb to this machine's own links: a partition or its repair, a hold or
    /// its release, a drop or duplicate rule switched on or off. Every machine of the run is
    /// told the same verbs, and each applies them to what it sends, so the runner's control
    /// connections (another port) are never cut.
    Fault {
        /// The verb.
        fault: Fault,
    },
    /// Start the run's clock: from now on the machine's time (what its nodes read as `now_ms`,
    /// what its timers count in) is the time since `run_start_unix_us`, microseconds since the
    /// UNIX epoch on the machine's wall clock, which the runner picks once for every machine of
    /// the run (answered with [`ControlResponse::ClockStarted`]). Accepted once, before anything
    /// has run on the machine.
    StartClock {
        /// The run's start, in microseconds since the UNIX epoch.
        run_start_unix_us: u64,
    },
    /// The machine's time now, on the run's clock (answered with [`ControlResponse::Clock`]).
    Clock,
    /// Stop the machine process.
    Shutdown,
}

/// The most bytes of a structured trace one answer carries (well within a frame).
pub const TRACE_CHUNK: usize = 4 << 20;

/// A machine's answer to a control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    /// The machine is alive; its counters so far and its nodes' failures.
    Status {
        /// Everything the machine counted, as the simulator counts it for the whole system.
        counters: Counters,
        /// Node failures so far (the first few).
        failures: Vec<NodeFailure>,
    },
    /// The node was started.
    Started {
        /// Its handle.
        handle: NodeHandle,
    },
    /// The message was handed to the machine's NodeManager.
    Delivered {
        /// Whether a node took it (false: the machine has no such node).
        taken: bool,
    },
    /// The messages of a [`ControlRequest::DeliverAll`] were handed to the NodeManager.
    DeliveredAll {
        /// How many a node took (the others were for nodes the machine does not have).
        taken: u64,
    },
    /// A piece of the structured trace: whole JSON lines.
    Trace {
        /// The lines.
        text: String,
        /// Whether they reach the end of what was recorded so far.
        end: bool,
    },
    /// Every node's state, in creation order.
    NodeStates {
        /// The states.
        nodes: Vec<NodeState>,
    },
    /// Round-trip times in microseconds, in the order measured.
    RoundTrips {
        /// The times.
        micros: Vec<u64>,
    },
    /// The fault verb is in force on this machine's links.
    FaultApplied,
    /// The machine's clock now counts from the run's start.
    ClockStarted,
    /// The machine's time when it answered.
    Clock {
        /// Microseconds since the run's start (what its nodes read, in milliseconds, as
        /// `now_ms`).
        now_us: u64,
    },
    /// The machine is shutting down.
    ShuttingDown,
    /// The request lacked the run's token; the connection is closed after this.
    Refused {
        /// Why.
        reason: String,
    },
    /// The node could not be started: it failed (an unknown node type, a config it refused).
    NodeFailed {
        /// The failure.
        failure: NodeFailure,
    },
    /// The request was understood but failed.
    Failed {
        /// Why.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_control_requests_round_trip_through_json() {
        let request = Authorized {
            token: "secret".into(),
            request: ControlRequest::PingPeer {
                to: MachineId(1),
                count: 3,
            },
        };
        let text = serde_json::to_string(&request).expect("encodes");
        assert!(text.contains(r#""ping_peer""#), "{text}");
        let back: Authorized = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, request);
    }

    #[test]
    fn virtual_a_request_without_a_token_does_not_parse() {
        let parsed = serde_json::from_str::<Authorized>(r#"{"request":"status"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn virtual_control_requests_carry_messages() {
        let message =
            Message::new(serde_json::json!({"type": "increment", "amount": 2})).expect("message");
        let request = Authorized {
            token: "t".into(),
            request: ControlRequest::Deliver {
                to: NodeId {
                    origin: 0,
                    serial: 1,
                },
                message,
            },
        };
        let text = serde_json::to_string(&request).expect("encodes");
        let back: Authorized = serde_json::from_slice(text.as_bytes()).expect("decodes");
        assert_eq!(back, request);
    }

    #[test]
    fn virtual_a_group_of_deliveries_keeps_its_order_on_the_wire() {
        let deliveries: Vec<(NodeId, Message)> = (0..3)
            .map(|serial| {
                let message = Message::new(serde_json::json!({"type": "increment", "n": serial}))
                    .expect("message");
                (NodeId { origin: 0, serial }, message)
            })
            .collect();
        let request = Authorized {
            token: "t".into(),
            request: ControlRequest::DeliverAll { deliveries },
        };
        let text = serde_json::to_string(&request).expect("encodes");
        let back: Authorized = serde_json::from_slice(text.as_bytes()).expect("decodes");
        assert_eq!(back, request);
    }

    #[test]
    fn virtual_peer_frames_carry_deliveries() {
        let envelope = Envelope::Deliver {
            from: None,
            to: NodeId {
                origin: 0,
                serial: 1,
            },
            message: Message::new(serde_json::json!({"type": "increment", "amount": 2}))
                .expect("message"),
        };
        let frame = PeerFrame::Envelope {
            envelope: envelope.clone(),
        };
        let text = serde_json::to_string(&frame).expect("encodes");
        let back: PeerFrame = serde_json::from_slice(text.as_bytes()).expect("decodes");
        assert_eq!(back, PeerFrame::Envelope { envelope });
    }

    #[test]
    fn virtual_peer_frames_carry_envelopes_as_is() {
        let envelope = Envelope::Terminate {
            id: NodeId {
                origin: 1,
                serial: 2,
            },
        };
        let frame = PeerFrame::Envelope {
            envelope: envelope.clone(),
        };
        let text = serde_json::to_string(&frame).expect("encodes");
        let back: PeerFrame = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, PeerFrame::Envelope { envelope });
    }
}
