//! [`Chunked`]: a list that is cheap to copy while it is changed an entry at a time.
//!
//! A sum node persists its table of senders after every increment, and the disk keeps what it
//! persisted: a plain `Vec` would be copied whole each time (3,000 entries for one 3-byte
//! change). A `Chunked` list holds its entries in shared chunks of [`CHUNK`]; a copy shares
//! every chunk, and a change copies only the chunk it touches if another copy still holds it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Entries per chunk.
pub const CHUNK: usize = 64;

/// A list whose copies share their entries, chunk by chunk, until one of them changes. It
/// encodes as a JSON array, as a `Vec` does.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// Entry `index`, to change (its chunk is copied first if another copy shares it).
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        Arc::make_mut(self.chunks.get_mut(index / CHUNK)?).get_mut(index % CHUNK)
    }

    /// Appends `entry`.
    pub fn push(&mut self, entry: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(entry),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(entries: I) -> Self {
        let mut list = Chunked::default();
        for entry in entries {
            list.push(entry);
        }
        list
    }
}

impl<T: Clone> From<Vec<T>> for Chunked<T> {
    fn from(entries: Vec<T>) -> Self {
        entries.into_iter().collect()
    }
}

impl<T: Clone + fmt::Debug> fmt::Debug for Chunked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Clone + Serialize> Serialize for Chunked<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: Clone + Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(deserializer).map(Chunked::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_a_copy_keeps_its_entries_while_the_original_changes() {
        let mut list: Chunked<u32> = (0..200).collect();
        let copy = list.clone();
        *list.get_mut(130).expect("in range") = 7;
        list.push(200);
        assert_eq!(
            copy.iter().copied().collect::<Vec<_>>(),
            (0..200).collect::<Vec<_>>()
        );
        assert_eq!(list.len(), 201);
        assert_eq!(list.iter().nth(130), Some(&7));
        assert_eq!(list.iter().last(), Some(&200));
        assert!(list.get_mut(201).is_none());
        // Only the chunks that changed (the third, and the last, which grew) were copied.
        let shared: Vec<bool> = list
            .chunks
            .iter()
            .zip(&copy.chunks)
            .map(|(a, b)| Arc::ptr_eq(a, b))
            .collect();
        assert_eq!(shared, [true, true, false, false]);
    }

    #[test]
    fn simulated_a_chunked_list_encodes_as_an_array() {
        let list: Chunked<i64> = vec![3, -1, 4].into();
        let text = serde_json::to_string(&list).expect("encodes");
        assert_eq!(text, "[3,-1,4]");
        let back: Chunked<i64> = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, list);
        assert!(Chunked::<i64>::default().is_empty());
    }
}
