//! [`Persisted`]: what a node last wrote to its machine's disk.
//!
//! A node that persists after every change must not pay for an encoding each time: a sum node
//! with thousands of senders persists its table after every increment. So the disk keeps the
//! node's own value, shared, and encodes it as JSON only when it is read back (after a crash,
//! which is rare) or written out, once: a machine process that writes its disk image after
//! every batch of events encodes each value it holds once, not at every write. The JSON form is
//! what recovery reads, so a durable type that does not survive the round trip fails at
//! recovery, naming the node.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::NodeError;
use crate::messages::MessageError;

/// A value a node persisted: its own typed value or JSON, behind a shared pointer (cloning the
/// disk clones no value), with its JSON encoding once it has been written out.
#[derive(Clone)]
pub struct Persisted(Arc<Stored>);

/// The value, and its encoding made the first time it was written.
struct Stored {
    value: Box<dyn Durable>,
    written: OnceLock<Result<Box<serde_json::value::RawValue>, String>>,
}

/// A value that can be on a disk: it can be encoded as JSON.
trait Durable: Send + Sync {
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
}

impl<T: Serialize + Send + Sync> Durable for T {
    fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl Persisted {
    /// Keeps `value` as it is, to be encoded when it is read back.
    pub fn new<T: Serialize + Send + Sync + 'static>(value: T) -> Self {
        Persisted(Arc::new(Stored {
            value: Box::new(value),
            written: OnceLock::new(),
        }))
    }

    /// The value as JSON, as recovery reads it.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        self.0.value.to_json()
    }

    /// The value's JSON text, encoded on the first call and kept (the value never changes).
    fn written(&self) -> &Result<Box<serde_json::value::RawValue>, String> {
        self.0.written.get_or_init(|| {
            self.to_json()
                .and_then(|json| serde_json::value::to_raw_value(&json))
                .map_err(|error| error.to_string())
        })
    }

    /// The value as JSON for a node of type `node_type` to recover from; a value that cannot be
    /// encoded is that node's error.
    pub(crate) fn read_back(&self, node_type: &str) -> Result<serde_json::Value, NodeError> {
        self.to_json().map_err(|error| {
            NodeError::Message(MessageError::Encode(format!(
                "what {node_type} persisted cannot be encoded: {error}"
            )))
        })
    }
}

impl fmt::Debug for Persisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            Ok(json) => write!(f, "Persisted({json})"),
            Err(error) => write!(f, "Persisted(<cannot be encoded: {error}>)"),
        }
    }
}

/// Two persisted values are equal if they encode alike.
impl PartialEq for Persisted {
    fn eq(&self, other: &Self) -> bool {
        match (self.to_json(), other.to_json()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Persisted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.written() {
            Ok(json) => json.serialize(serializer),
            Err(error) => Err(serde::ser::Error::custom(error)),
        }
    }
}

impl<'de> Deserialize<'de> for Persisted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Persisted::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_a_persisted_value_reads_back_as_its_json_and_survives_a_disk_round_trip() {
        let persisted = Persisted::new(vec![(1u32, "a".to_owned())]);
        let json = persisted.to_json().expect("encodes");
        assert_eq!(json, serde_json::json!([[1, "a"]]));
        let written = serde_json::to_string(&persisted).expect("writes");
        let read: Persisted = serde_json::from_str(&written).expect("reads");
        assert_eq!(read, persisted);
        assert_eq!(read.clone().to_json().expect("encodes"), json);
    }

    #[test]
    fn virtual_a_persisted_value_is_encoded_once_however_often_its_disk_is_written() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ENCODED: AtomicUsize = AtomicUsize::new(0);
        struct Counted;
        impl Serialize for Counted {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                ENCODED.fetch_add(1, Ordering::Relaxed);
                serializer.serialize_u32(7)
            }
        }
        let persisted = Persisted::new(Counted);
        let copy = persisted.clone();
        for _ in 0..3 {
            assert_eq!(serde_json::to_string(&persisted).expect("writes"), "7");
            assert_eq!(serde_json::to_string(&copy).expect("writes"), "7");
        }
        assert_eq!(ENCODED.load(Ordering::Relaxed), 1);
    }
}
