//! Reading a typed config from a spawn's JSON, whose `"type"` key names the node type and is
//! no field of the config itself.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// `C`, read from a JSON object with its `"type"` entry skipped, so that a config type may deny
/// unknown fields. Read straight from the text, with no intermediate tree.
pub(super) struct WithoutType<C>(pub(super) C);

impl<'de, C: Deserialize<'de>> Deserialize<'de> for WithoutType<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(SkipType(PhantomData))
            .map(WithoutType)
    }
}

struct SkipType<C>(PhantomData<C>);

impl<'de, C: Deserialize<'de>> Visitor<'de> for SkipType<C> {
    type Value = C;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a config object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<C, A::Error> {
        C::deserialize(serde::de::value::MapAccessDeserializer::new(Filtered {
            inner: map,
        }))
    }
}

/// The entries of a map but `"type"`.
struct Filtered<A> {
    inner: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<std::borrow::Cow<'de, str>>()? else {
                return Ok(None);
            };
            if key == "type" {
                self.inner.next_value::<IgnoredAny>()?;
                continue;
            }
            let key: serde::de::value::CowStrDeserializer<'de, A::Error> = key.into_deserializer();
            return seed.deserialize(key).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        a: u32,
        #[serde(default)]
        b: Vec<u32>,
    }

    #[test]
    fn simulated_the_type_key_is_skipped_and_the_rest_is_checked() {
        let read = |text: &str| serde_json::from_str::<WithoutType<Strict>>(text).map(|w| w.0);
        assert_eq!(
            read(r#"{"type":"X","a":1,"b":[2]}"#).expect("reads"),
            Strict { a: 1, b: vec![2] }
        );
        assert_eq!(read(r#"{"a":1}"#).expect("reads").a, 1);
        assert!(
            read(r#"{"type":"X","a":1,"c":3}"#).is_err(),
            "unknown fields still refused"
        );
        assert!(
            read(r#"{"type":"X"}"#).is_err(),
            "missing fields still refused"
        );
        assert!(read("[1]").is_err());
    }
}
