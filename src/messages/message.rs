//! The JSON message every node sends and receives.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What is wrong with a would-be message or with its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The JSON value is not an object.
    #[error("a message must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The object has no string `"type"` key.
    #[error("a message must have a string \"type\" key")]
    MissingType,
    /// The message could not be read as the type the receiver expects.
    #[error("`{kind}` message is malformed: {reason}")]
    Malformed {
        /// The message's `"type"`.
        kind: String,
        /// What serde said about it.
        reason: String,
    },
    /// A typed value could not be turned into a message.
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// A JSON object with a string `"type"` key — the unit nodes exchange.
///
/// Cloning is cheap (the JSON is shared behind an `Arc`), so a node can broadcast one message to
/// thousands of receivers without copying it. The invariant (object with a string `"type"`) is
/// checked once, when the message is made or parsed, so receivers never re-validate it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message(Arc<Value>);

/// A node's configuration: a message whose `"type"` names the node type to create.
pub type NodeConfig = Message;

impl Message {
    /// Wraps a JSON value, checking that it is an object with a string `"type"`.
    pub fn new(value: Value) -> Result<Self, MessageError> {
        match &value {
            Value::Object(map) => match map.get("type") {
                Some(Value::String(_)) => Ok(Message(Arc::new(value))),
                _ => Err(MessageError::MissingType),
            },
            Value::Null => Err(MessageError::NotAnObject("null")),
            Value::Bool(_) => Err(MessageError::NotAnObject("a boolean")),
            Value::Number(_) => Err(MessageError::NotAnObject("a number")),
            Value::String(_) => Err(MessageError::NotAnObject("a string")),
            Value::Array(_) => Err(MessageError::NotAnObject("an array")),
        }
    }

    /// A message of type `kind` carrying `fields` (a `"type"` among them is replaced).
    pub fn tagged(kind: &str, mut fields: serde_json::Map<String, Value>) -> Self {
        fields.insert("type".to_owned(), Value::String(kind.to_owned()));
        Message(Arc::new(Value::Object(fields)))
    }

    /// Encodes a typed message (usually an enum with `#[serde(tag = "type")]`).
    pub fn encode<T: Serialize>(typed: &T) -> Result<Self, MessageError> {
        let value = serde_json::to_value(typed).map_err(|e| MessageError::Encode(e.to_string()))?;
        Message::new(value)
    }

    /// The message's `"type"`.
    pub fn kind(&self) -> &str {
        self.0
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Reads the message as a typed value, naming the message type and the problem on failure.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, MessageError> {
        T::deserialize(&*self.0).map_err(|e| MessageError::Malformed {
            kind: self.kind().to_owned(),
            reason: e.to_string(),
        })
    }

    /// The message as plain JSON.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// The message's wire form: compact JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.0).unwrap_or_default()
    }

    /// Parses a message from its wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed {
            kind: String::from("?"),
            reason: e.to_string(),
        })?;
        Message::new(value)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Message::new(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Sample {
        Increment { amount: i64 },
    }

    #[test]
    fn simulated_message_requires_an_object_with_a_type() {
        assert_eq!(
            Message::new(json!([1])),
            Err(MessageError::NotAnObject("an array"))
        );
        assert_eq!(
            Message::new(json!({"amount": 1})),
            Err(MessageError::MissingType)
        );
        assert_eq!(
            Message::new(json!({"type": 3})),
            Err(MessageError::MissingType)
        );
        assert!(Message::new(json!({"type": "increment"})).is_ok());
    }

    #[test]
    fn simulated_typed_messages_round_trip_through_the_wire_format() {
        let message = Message::encode(&Sample::Increment { amount: 7 }).expect("encodes");
        assert_eq!(message.kind(), "increment");
        let wire = message.to_bytes();
        let back = Message::from_bytes(&wire).expect("parses");
        assert_eq!(back, message);
        assert_eq!(back.decode::<Sample>(), Ok(Sample::Increment { amount: 7 }));
    }

    #[test]
    fn simulated_decode_names_the_message_and_the_problem() {
        let message = Message::new(json!({"type": "increment", "amount": "x"})).expect("valid");
        let error = message.decode::<Sample>().expect_err("mistyped");
        let text = error.to_string();
        assert!(text.contains("increment"), "{text}");
        assert!(text.contains("invalid type"), "{text}");
    }

    #[test]
    fn simulated_garbage_bytes_are_an_error_not_a_panic() {
        for garbage in [&b""[..], b"{", b"\xff\xfe", b"[]", b"{\"type\":1}"] {
            assert!(Message::from_bytes(garbage).is_err());
        }
    }
}
