//! The JSON message every node sends and receives.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
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
/// A message is kept as its wire form: validated, compact JSON text, with its `"type"` read out
/// once. Cloning is cheap (shared behind an `Arc`), so a node can broadcast one message to
/// thousands of receivers without copying it.
///
/// A message made from a typed value with [`Message::encode_typed`] keeps that value beside its
/// JSON, so a receiver that reads it as the same type gets a copy of the value without decoding
/// the text (see [`Message::decode_shared`]). Every message is still encoded once — its text is
/// what the simulator's trace hashes, and what the real modes send — and the typed layer's wire
/// check (on in debug builds and every test) decodes the text instead and checks that the value
/// survives the round trip, so a message type that does not is found before it runs anywhere
/// for real.
#[derive(Clone)]
pub struct Message(Arc<Inner>);

struct Inner {
    json: Box<RawValue>,
    kind: Kind,
    /// The first typed reading of `json`, shared by every receiver of this message (a broadcast
    /// to thousands of nodes is decoded once).
    decoded: OnceLock<Box<dyn Any + Send + Sync>>,
    /// The typed value the message was encoded from, if it was made by
    /// [`Message::encode_typed`].
    sent: Option<Box<dyn Any + Send + Sync>>,
    /// The XXH3 digest of `json`, once asked for.
    digest: OnceLock<u64>,
}

/// Where a message's `"type"` is: a stretch of its JSON text when it needs no unescaping (nearly
/// always), else its own string.
enum Kind {
    At(u32, u32),
    Owned(Box<str>),
}

/// A node's configuration: a message whose `"type"` names the node type to create.
pub type NodeConfig = Message;

/// Just the `"type"` of a JSON object; every other key is skipped (but still syntax-checked).
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

impl Message {
    /// Wraps a JSON value, checking that it is an object with a string `"type"`.
    pub fn new(value: Value) -> Result<Self, MessageError> {
        match &value {
            Value::Object(_) => {
                Self::from_raw(serde_json::value::to_raw_value(&value).map_err(encode_error)?)
            }
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
        let json = serde_json::value::to_raw_value(&fields).unwrap_or_else(|_| empty_object());
        Message(Arc::new(Inner {
            json,
            kind: Kind::Owned(kind.into()),
            decoded: OnceLock::new(),
            sent: None,
            digest: OnceLock::new(),
        }))
    }

    /// Encodes a typed message (usually an enum with `#[serde(tag = "type")]`).
    pub fn encode<T: Serialize>(typed: &T) -> Result<Self, MessageError> {
        // serde_json writes compact JSON: only the object and its type need checking.
        Self::from_compact(serde_json::value::to_raw_value(typed).map_err(encode_error)?)
    }

    /// Encodes a typed message and keeps the value itself beside its JSON: a receiver that reads
    /// the message as `T` can take a copy of it ([`Message::sent_value`]) instead of decoding
    /// (what it would decode is the same value, as the typed layer's wire check verifies).
    pub fn encode_typed<T>(typed: &T) -> Result<Self, MessageError>
    where
        T: Serialize + Clone + Send + Sync + 'static,
    {
        let mut message = Self::encode(typed)?;
        if let Some(inner) = Arc::get_mut(&mut message.0) {
            inner.sent = Some(Box::new(typed.clone()));
        }
        Ok(message)
    }

    /// A copy of the value the message was encoded from by [`Message::encode_typed`], if it was
    /// and that value is a `T`. A message that came over a real wire has none.
    pub fn sent_value<T: Clone + 'static>(&self) -> Option<T> {
        self.0.sent.as_ref()?.downcast_ref::<T>().cloned()
    }

    /// The message's `"type"`.
    pub fn kind(&self) -> &str {
        match &self.0.kind {
            Kind::At(start, end) => self
                .0
                .json
                .get()
                .get(*start as usize..*end as usize)
                .unwrap_or_default(),
            Kind::Owned(kind) => kind,
        }
    }

    /// Reads the message as a typed value, naming the message type and the problem on failure.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, MessageError> {
        serde_json::from_str(self.0.json.get()).map_err(|e| MessageError::Malformed {
            kind: self.kind().to_owned(),
            reason: e.to_string(),
        })
    }

    /// Reads the message with `parse` once and shares the result with every later reader that
    /// asks for the same type. Decoding is a pure function of the JSON text, so this changes
    /// nothing but the cost. Failures are not cached.
    pub fn decode_shared<T>(
        &self,
        parse: impl FnOnce(&Message) -> Result<T, MessageError>,
    ) -> Result<T, MessageError>
    where
        T: Clone + Send + Sync + 'static,
    {
        if let Some(known) = self.0.decoded.get().and_then(|any| any.downcast_ref::<T>()) {
            return Ok(known.clone());
        }
        let value = parse(self)?;
        let _ = self.0.decoded.set(Box::new(value.clone()));
        Ok(value)
    }

    /// The message as compact JSON text (its wire form).
    pub fn as_json(&self) -> &str {
        self.0.json.get()
    }

    /// The 64-bit XXH3 digest of [`Message::as_json`] (a fixed, portable hash), computed once
    /// and shared by every copy: what the simulator's trace folds in for the message's text.
    pub fn digest(&self) -> u64 {
        *self
            .0
            .digest
            .get_or_init(|| xxhash_rust::xxh3::xxh3_64(self.as_json().as_bytes()))
    }

    /// The message's wire form: compact JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_json().as_bytes().to_vec()
    }

    /// Parses a message from its wire form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MessageError> {
        let text = std::str::from_utf8(bytes).map_err(|e| MessageError::Malformed {
            kind: String::from("?"),
            reason: e.to_string(),
        })?;
        let raw =
            RawValue::from_string(text.trim().to_owned()).map_err(|e| MessageError::Malformed {
                kind: String::from("?"),
                reason: e.to_string(),
            })?;
        Self::from_raw(raw)
    }

    /// Checks raw JSON is an object with a string `"type"`, and keeps that type. JSON with
    /// white space (pretty-printed, from a file) is rewritten compactly, so a message's text is
    /// the same however it was written.
    fn from_raw(json: Box<RawValue>) -> Result<Self, MessageError> {
        if !has_whitespace_between_tokens(json.get()) {
            return Self::from_compact(json);
        }
        let value: Value =
            serde_json::from_str(json.get()).map_err(|e| MessageError::Malformed {
                kind: String::from("?"),
                reason: e.to_string(),
            })?;
        Self::from_compact(serde_json::value::to_raw_value(&value).map_err(encode_error)?)
    }

    /// Checks compact raw JSON is an object with a string `"type"`, and keeps that type.
    fn from_compact(json: Box<RawValue>) -> Result<Self, MessageError> {
        let text = json.get();
        if !text.starts_with('{') {
            return Err(MessageError::NotAnObject(match text.as_bytes().first() {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b'n') => "null",
                Some(b't' | b'f') => "a boolean",
                _ => "a number",
            }));
        }
        let kind = match leading_type(text) {
            Some(range) => Kind::At(range.0, range.1),
            None => {
                let header: Header<'_> =
                    serde_json::from_str(text).map_err(|_| MessageError::MissingType)?;
                match header.kind.ok_or(MessageError::MissingType)? {
                    Cow::Borrowed(kind) => match text.find(kind) {
                        Some(at) if u32::try_from(at + kind.len()).is_ok() => {
                            Kind::At(at as u32, (at + kind.len()) as u32)
                        }
                        _ => Kind::Owned(kind.into()),
                    },
                    Cow::Owned(kind) => Kind::Owned(kind.into()),
                }
            }
        };
        Ok(Message(Arc::new(Inner {
            json,
            kind,
            decoded: OnceLock::new(),
            sent: None,
            digest: OnceLock::new(),
        })))
    }
}

/// Where the `"type"` of compact, valid JSON `text` is, if the object begins with it and it
/// needs no unescaping — as serde writes every internally tagged enum — and no other key is
/// `"type"` (a duplicate is left to the full reading, which rejects it).
fn leading_type(text: &str) -> Option<(u32, u32)> {
    const PREFIX: &str = r#"{"type":""#;
    let rest = text.strip_prefix(PREFIX)?;
    let len = rest.find(['"', '\\'])?;
    if rest.as_bytes().get(len) != Some(&b'"') || rest[len..].contains(r#""type":"#) {
        return None;
    }
    let start = u32::try_from(PREFIX.len()).ok()?;
    let end = u32::try_from(PREFIX.len() + len).ok()?;
    Some((start, end))
}

/// Whether valid JSON `text` has white space outside its strings (so is not in compact form).
fn has_whitespace_between_tokens(text: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte.is_ascii_whitespace() {
            return true;
        }
    }
    false
}

fn encode_error(error: serde_json::Error) -> MessageError {
    MessageError::Encode(error.to_string())
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string(String::from("{}"))
        .unwrap_or_else(|_| unreachable!("`{{}}` is valid JSON"))
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Message::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        assert_eq!(
            Message::from_bytes(b"[1]"),
            Err(MessageError::NotAnObject("an array"))
        );
    }

    #[test]
    fn simulated_messages_nested_in_json_keep_their_wire_form() {
        let inner = Message::new(json!({"type": "increment", "amount": 3})).expect("valid");
        let outer = json!({"actions": [[5, inner.clone()]]});
        let back: Vec<(u64, Message)> =
            serde_json::from_value(outer["actions"].clone()).expect("parses from a value");
        assert_eq!(back[0].1, inner);
        let text = serde_json::to_string(&outer).expect("serializes");
        assert_eq!(text, r#"{"actions":[[5,{"amount":3,"type":"increment"}]]}"#);
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
    fn simulated_messages_are_kept_compact_however_they_were_written() {
        let pretty =
            Message::from_bytes(b"{ \"type\" : \"increment\",\n  \"amount\": 2 }").expect("valid");
        assert_eq!(pretty.as_json(), r#"{"amount":2,"type":"increment"}"#);
        let spaced = Message::from_bytes(br#"{"type":"say","text":"a b"}"#).expect("valid");
        assert_eq!(
            spaced.as_json(),
            r#"{"type":"say","text":"a b"}"#,
            "already compact: kept as written"
        );
    }

    #[test]
    fn simulated_white_space_inside_strings_is_not_layout() {
        assert!(!has_whitespace_between_tokens(r#"{"a":"b c","d":"e\" f"}"#));
        assert!(has_whitespace_between_tokens(r#"{"a": 1}"#));
        assert!(has_whitespace_between_tokens(r#"{"a":"\\" ,"b":1}"#));
    }

    #[test]
    fn simulated_shared_decoding_gives_every_reader_the_same_value() {
        let message = Message::encode(&Sample::Increment { amount: 5 }).expect("encodes");
        let copy = message.clone();
        let first = message
            .decode_shared(|m| m.decode::<Sample>())
            .expect("decodes");
        let second = copy
            .decode_shared(|_| -> Result<Sample, MessageError> { Err(MessageError::MissingType) })
            .expect("served from the shared reading");
        assert_eq!(first, second);
        let other: Result<i64, _> = message.decode_shared(|_| Ok(9));
        assert_eq!(other, Ok(9));
    }

    #[test]
    fn simulated_a_typed_message_keeps_the_value_it_was_encoded_from() {
        let typed = Sample::Increment { amount: 4 };
        let message = Message::encode_typed(&typed).expect("encodes");
        assert_eq!(message.kind(), "increment");
        assert_eq!(message.as_json(), r#"{"type":"increment","amount":4}"#);
        assert_eq!(message.sent_value::<Sample>(), Some(typed.clone()));
        assert_eq!(message.clone().sent_value::<i64>(), None, "another type");
        let over_the_wire = Message::from_bytes(&message.to_bytes()).expect("parses");
        assert_eq!(over_the_wire.sent_value::<Sample>(), None);
        assert_eq!(over_the_wire.decode::<Sample>(), Ok(typed));
        assert_eq!(over_the_wire, message);
    }

    #[test]
    fn simulated_the_type_is_read_wherever_it_is_in_the_object() {
        for (text, kind) in [
            (r#"{"type":"a","x":1}"#, "a"),
            (r#"{"x":1,"type":"b"}"#, "b"),
            (r#"{"type":"c\u0041","x":1}"#, "cA"),
            (r#"{"type":"d","x":"{\"type\":\"e\"}"}"#, "d"),
        ] {
            let message = Message::from_bytes(text.as_bytes()).expect("valid");
            assert_eq!(message.kind(), kind, "{text}");
        }
        assert_eq!(
            Message::from_bytes(br#"{"type":"a","type":"b"}"#),
            Err(MessageError::MissingType),
            "a duplicate type is refused, as before"
        );
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
        for garbage in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[]",
            b"{\"type\":1}",
            b"{\"type\":\"a\"} x",
            b"7",
        ] {
            assert!(Message::from_bytes(garbage).is_err());
        }
    }
}
