//! [`Chunked`]: a list that is cheap to copy while it is changed an entry at a time.
//!
//! A sum node persists its table of senders after every increment, and the disk keeps what it
//! persisted: a plain `Vec` would be copied whole each time (3,000 entries for one changed
//! total), which makes a run quadratic in its users. A `Chunked` list is a tree of shared
//! chunks of [`CHUNK`] entries: a copy shares the whole tree, and a change copies only the
//! chunks on the path to the entry it touches (one per level, a handful for millions of
//! entries) if another copy still holds them.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Entries per chunk, and chunks per chunk of the level above.
pub const CHUNK: usize = 32;

/// A chunk: entries, or the chunks of the level below.
#[derive(Clone, PartialEq, Eq)]
enum Chunk<T> {
    Entries(Vec<T>),
    Chunks(Vec<Arc<Chunk<T>>>),
}

/// A list whose copies share their entries, chunk by chunk, until one of them changes. It
/// encodes as a JSON array, as a `Vec` does.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunked<T> {
    root: Option<Arc<Chunk<T>>>,
    /// Levels of chunks above the entries.
    height: u32,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            root: None,
            height: 0,
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

    /// How many entries the tree holds at its height.
    fn capacity(&self) -> usize {
        CHUNK.saturating_pow(self.height + 1)
    }

    /// Its entries, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            stack: self.root.iter().map(|root| (&**root, 0)).collect(),
        }
    }

    /// Entry `index`, to change (the chunks on its path are copied first if another copy
    /// shares them).
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        if index >= self.len {
            return None;
        }
        let mut span = self.capacity() / CHUNK;
        let mut chunk = Arc::make_mut(self.root.as_mut()?);
        loop {
            match chunk {
                Chunk::Entries(entries) => return entries.get_mut(index % CHUNK),
                Chunk::Chunks(chunks) => {
                    chunk = Arc::make_mut(chunks.get_mut((index / span) % CHUNK)?);
                    span /= CHUNK;
                }
            }
        }
    }

    /// Appends `entry`.
    pub fn push(&mut self, entry: T) {
        if self.len == self.capacity() {
            if let Some(root) = self.root.take() {
                self.root = Some(Arc::new(Chunk::Chunks(vec![root])));
                self.height += 1;
            }
        }
        let index = self.len;
        let mut span = self.capacity() / CHUNK;
        let mut chunk = Arc::make_mut(
            self.root
                .get_or_insert_with(|| Arc::new(Chunk::Entries(Vec::with_capacity(CHUNK)))),
        );
        let mut level = self.height;
        loop {
            match chunk {
                Chunk::Entries(entries) => {
                    entries.push(entry);
                    break;
                }
                Chunk::Chunks(chunks) => {
                    let at = (index / span) % CHUNK;
                    if at == chunks.len() {
                        chunks.push(Arc::new(if level == 1 {
                            Chunk::Entries(Vec::with_capacity(CHUNK))
                        } else {
                            Chunk::Chunks(Vec::with_capacity(CHUNK))
                        }));
                    }
                    let Some(next) = chunks.get_mut(at) else {
                        break;
                    };
                    chunk = Arc::make_mut(next);
                    span /= CHUNK;
                    level -= 1;
                }
            }
        }
        self.len += 1;
    }
}

/// The entries of a [`Chunked`] list, in order.
pub struct Iter<'a, T> {
    /// The chunks being walked, each with the position of its next entry or chunk.
    stack: Vec<(&'a Chunk<T>, usize)>,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            let top = self.stack.last_mut()?;
            let (chunk, position): (&'a Chunk<T>, usize) = (top.0, top.1);
            top.1 += 1;
            match chunk {
                Chunk::Entries(entries) => match entries.get(position) {
                    Some(entry) => return Some(entry),
                    None => {
                        self.stack.pop();
                    }
                },
                Chunk::Chunks(chunks) => match chunks.get(position) {
                    Some(next) => self.stack.push((&**next, 0)),
                    None => {
                        self.stack.pop();
                    }
                },
            }
        }
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
        for len in [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            CHUNK * CHUNK,
            CHUNK * CHUNK * 3 + 5,
        ] {
            let mut list: Chunked<usize> = (0..len).collect();
            let copy = list.clone();
            for index in (0..len).step_by(7) {
                *list.get_mut(index).expect("in range") += 1_000_000;
            }
            list.push(len);
            assert_eq!(copy.len(), len);
            assert_eq!(
                copy.iter().copied().collect::<Vec<_>>(),
                (0..len).collect::<Vec<_>>()
            );
            let changed: Vec<usize> = (0..len)
                .map(|index| index + if index % 7 == 0 { 1_000_000 } else { 0 })
                .chain([len])
                .collect();
            assert_eq!(list.iter().copied().collect::<Vec<_>>(), changed);
            assert_eq!(list.len(), len + 1);
            assert!(list.get_mut(len + 1).is_none());
        }
    }

    #[test]
    fn simulated_a_change_copies_only_the_chunks_on_its_path() {
        let mut list: Chunked<u64> = (0..(CHUNK * CHUNK) as u64).collect();
        let copy = list.clone();
        *list.get_mut(CHUNK + 3).expect("in range") = 7;
        let (Some(Chunk::Chunks(new)), Some(Chunk::Chunks(old))) =
            (list.root.as_deref(), copy.root.as_deref())
        else {
            panic!("two levels");
        };
        let shared: Vec<bool> = new
            .iter()
            .zip(old)
            .map(|(a, b)| Arc::ptr_eq(a, b))
            .collect();
        assert_eq!(shared.iter().filter(|same| !**same).count(), 1);
        assert!(!shared[1], "the second chunk holds entry {}", CHUNK + 3);
    }

    #[test]
    fn simulated_a_chunked_list_encodes_as_an_array() {
        let list: Chunked<i64> = vec![3, -1, 4].into();
        let text = serde_json::to_string(&list).expect("encodes");
        assert_eq!(text, "[3,-1,4]");
        let back: Chunked<i64> = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, list);
        assert!(Chunked::<i64>::default().is_empty());
        assert_eq!(format!("{list:?}"), "[3, -1, 4]");
    }
}
