//! [`Map`], a session's dict: string keys in sorted order, as Flask writes
//! them (`sort_keys=True`).
//!
//! A session holds a handful of keys and is built, read and dropped on every
//! request, so the map is a sorted vector rather than a tree: reading a
//! cookie pushes its keys in the order they arrive (already sorted, when
//! Flask or tessera wrote them) with no per-key search, node allocation or
//! rebalancing, and lookups are a binary search over contiguous entries.
//! Inserting a new key shifts the keys after it, which is cheap at session
//! sizes; building a large map from an iterator sorts once instead, so even
//! hostile input with many keys costs `O(n log n)`.
//!
//! Keys of up to 24 bytes live inside the entry itself rather than in an
//! allocation of their own. A session of a few kilobytes has a few hundred
//! keys (each dict in a list repeats its own), and freeing that many small
//! allocations at the end of every request overflows glibc's per-thread
//! cache, which then merges them all back the next time anything large is
//! allocated: with every key on the heap, that took about a third of the
//! time to read a 4 KiB session.
//!
//! ```
//! use tessera::{Map, Value};
//!
//! let mut map = Map::new();
//! map.insert("theme".to_owned(), Value::from("dark"));
//! map.insert("_user_id".to_owned(), Value::from("42"));
//! assert_eq!(map.get("theme").and_then(Value::as_str), Some("dark"));
//! // Keys iterate in sorted order, as they are written to the cookie.
//! assert_eq!(map.keys().collect::<Vec<_>>(), ["_user_id", "theme"]);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::ops::Index;

use compact_str::CompactString;

use crate::value::Value;

/// A stored key: inline up to 24 bytes (see the module docs).
type Key = CompactString;

/// A Flask session's dict: string keys in sorted order, each with a [`Value`].
///
/// The API follows `BTreeMap<String, Value>`'s, which it replaced, except
/// that borrowed keys are `&str` (owned ones are `String`); see the
/// [module docs](crate::map) for why it is a sorted vector and how it keeps
/// its keys.
#[derive(Clone, Default, PartialEq)]
pub struct Map {
    /// Sorted by key, each key once.
    entries: Vec<(Key, Value)>,
}

impl Map {
    /// An empty map; allocates nothing until the first insert.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// An empty map with room for `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// A map of `entries` in any order; of keys given more than once, the
    /// last value wins, as in a Python dict literal or repeated inserts.
    fn from_unsorted(mut entries: Vec<(Key, Value)>) -> Self {
        if !is_strictly_sorted(&entries) {
            // Stable, so equal keys stay in the order given and the last of
            // each run is the one to keep.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, kept| {
                let repeated = later.0 == kept.0;
                if repeated {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                repeated
            });
        }
        Self { entries }
    }

    /// Appends an entry read from a document, its value written in place by
    /// `fill` (see `tagged`'s parser for why), without a search. Returns
    /// whether the key sorts after the previous one, as it does in what
    /// Flask or tessera wrote; if any does not, the reader calls
    /// [`restore_order`](Self::restore_order) once all are read, so that
    /// hostile input with many keys out of order costs one sort rather than
    /// one shift per key. On error the entry is left with whatever `fill`
    /// wrote.
    pub(crate) fn push_read_with<E>(
        &mut self,
        key: Cow<'_, str>,
        fill: impl FnOnce(&mut Value) -> Result<(), E>,
    ) -> Result<bool, E> {
        let in_order = self
            .entries
            .last()
            .is_none_or(|(last, _)| last.as_str() < &*key);
        let key = match key {
            Cow::Borrowed(text) => Key::new(text),
            // An owned key longer than 24 bytes keeps its allocation.
            Cow::Owned(text) => Key::from(text),
        };
        self.entries.push((key, Value::Null));
        if let Some((_, slot)) = self.entries.last_mut() {
            fill(slot)?;
        }
        Ok(in_order)
    }

    /// Sorts entries appended out of order (by
    /// [`push_read_with`](Self::push_read_with) or `extend`); of repeated
    /// keys, the last one appended wins.
    pub(crate) fn restore_order(&mut self) {
        *self = Self::from_unsorted(std::mem::take(&mut self.entries));
    }

    #[cfg(test)]
    fn push_read(&mut self, key: String, value: Value) {
        let pushed: Result<bool, std::convert::Infallible> =
            self.push_read_with(key.into(), |slot| {
                *slot = value;
                Ok(())
            });
        if pushed != Ok(true) {
            self.restore_order();
        }
    }

    /// How many keys the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every key, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(probe, _)| probe.as_str().cmp(key))
    }

    /// The index of `key`, if the map holds it. A session holds a few keys
    /// and is looked up several times a request: over a few entries a scan
    /// that compares lengths first rules most of them out without reading
    /// their bytes, and costs less than the binary search's ordered
    /// comparisons.
    fn find(&self, key: &str) -> Option<usize> {
        const SCANNED: usize = 8;
        if self.entries.len() <= SCANNED {
            self.entries
                .iter()
                .position(|(probe, _)| probe.as_str() == key)
        } else {
            self.position(key).ok()
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let index = self.find(key)?;
        Some(&self.entries[index].1)
    }

    /// The value for `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let index = self.find(key)?;
        Some(&mut self.entries[index].1)
    }

    /// The stored key and value for `key`.
    pub fn get_key_value(&self, key: &str) -> Option<(&str, &Value)> {
        let index = self.find(key)?;
        let (key, value) = &self.entries[index];
        Some((key, value))
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.insert_key(key, value)
    }

    /// [`insert`](Self::insert) for a borrowed key, which is copied only
    /// when new (and then inline when short): `Session::insert`'s path,
    /// where the key is most often a literal already in the map.
    pub(crate) fn insert_borrowed(&mut self, key: &str, value: Value) -> Option<Value> {
        self.insert_key(key, value)
    }

    /// An owned key keeps its allocation when long; a borrowed one is
    /// copied only when new.
    fn insert_key<K: AsRef<str> + Into<Key>>(&mut self, key: K, value: Value) -> Option<Value> {
        match self.position(key.as_ref()) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value)),
            Err(index) => {
                self.entries.insert(index, (key.into(), value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.remove_entry(key).map(|(_, value)| value)
    }

    /// Removes `key`, returning the stored key and its value.
    pub fn remove_entry(&mut self, key: &str) -> Option<(String, Value)> {
        let index = self.find(key)?;
        Some(into_pair(self.entries.remove(index)))
    }

    /// The place of `key` in the map, to read, insert or change in one
    /// lookup:
    ///
    /// ```
    /// use tessera::{Map, Value};
    ///
    /// let mut map = Map::new();
    /// map.entry("cart").or_insert_with(|| Value::List(Vec::new()));
    /// if let Some(Value::List(items)) = map.get_mut("cart") {
    ///     items.push(Value::from("apple"));
    /// }
    /// assert_eq!(map["cart"].as_slice().map(<[Value]>::len), Some(1));
    /// ```
    pub fn entry(&mut self, key: impl Into<String>) -> Entry<'_> {
        let key = key.into();
        match self.position(&key) {
            Ok(index) => Entry::Occupied(OccupiedEntry { map: self, index }),
            Err(index) => Entry::Vacant(VacantEntry {
                map: self,
                key,
                index,
            }),
        }
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Option<(String, Value)> {
        (!self.entries.is_empty()).then(|| into_pair(self.entries.remove(0)))
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut Value) -> bool) {
        self.entries.retain_mut(|(key, value)| keep(key, value));
    }

    /// Moves every entry of `other` into this map, leaving `other` empty;
    /// where both hold a key, `other`'s value wins.
    pub fn append(&mut self, other: &mut Map) {
        let other = std::mem::take(&mut other.entries);
        if self.entries.is_empty() {
            self.entries = other;
        } else {
            self.entries.extend(other);
            self.restore_order();
        }
    }

    /// The entries in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries.iter())
    }

    /// The entries in key order, with values to change in place.
    pub fn iter_mut(&mut self) -> IterMut<'_> {
        IterMut(self.entries.iter_mut())
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(key, _)| key.as_str())
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + '_ {
        self.entries.iter().map(|(_, value)| value)
    }

    /// The values in key order, to change in place.
    pub fn values_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator + '_ {
        self.entries.iter_mut().map(|(_, value)| value)
    }
}

/// An entry as the API hands it out.
fn into_pair((key, value): (Key, Value)) -> (String, Value) {
    (key.into_string(), value)
}

fn is_strictly_sorted(entries: &[(Key, Value)]) -> bool {
    entries.windows(2).all(|pair| pair[0].0 < pair[1].0)
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Index<&str> for Map {
    type Output = Value;

    /// # Panics
    ///
    /// If the map does not hold `key`.
    fn index(&self, key: &str) -> &Value {
        self.get(key)
            .unwrap_or_else(|| panic!("no key {key:?} in the map"))
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Self {
        Self::from_unsorted(
            entries
                .into_iter()
                .map(|(key, value)| (Key::from(key), value))
                .collect(),
        )
    }
}

impl<'a> FromIterator<(&'a str, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (&'a str, Value)>>(entries: I) -> Self {
        Self::from_unsorted(
            entries
                .into_iter()
                .map(|(key, value)| (Key::from(key), value))
                .collect(),
        )
    }
}

impl<const N: usize> From<[(String, Value); N]> for Map {
    fn from(entries: [(String, Value); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<const N: usize> From<[(&str, Value); N]> for Map {
    fn from(entries: [(&str, Value); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl Extend<(String, Value)> for Map {
    /// Where a key is already in the map, the new value wins. Appends
    /// everything and sorts once (a sort that finds the two sorted runs),
    /// rather than shifting the map for each new key.
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, entries: I) {
        self.entries.extend(
            entries
                .into_iter()
                .map(|(key, value)| (Key::from(key), value)),
        );
        self.restore_order();
    }
}

/// A key's place in a [`Map`], from [`Map::entry`].
#[derive(Debug)]
pub enum Entry<'a> {
    /// The map does not hold the key.
    Vacant(VacantEntry<'a>),
    /// The map holds the key.
    Occupied(OccupiedEntry<'a>),
}

impl<'a> Entry<'a> {
    /// The key.
    pub fn key(&self) -> &str {
        match self {
            Entry::Vacant(entry) => entry.key(),
            Entry::Occupied(entry) => entry.key(),
        }
    }

    /// The value, inserting `default` first if there is none.
    pub fn or_insert(self, default: Value) -> &'a mut Value {
        self.or_insert_with(|| default)
    }

    /// The value, inserting what `default` returns first if there is none.
    pub fn or_insert_with(self, default: impl FnOnce() -> Value) -> &'a mut Value {
        match self {
            Entry::Vacant(entry) => entry.insert(default()),
            Entry::Occupied(entry) => entry.into_mut(),
        }
    }

    /// Calls `change` on the value if there is one.
    #[must_use]
    pub fn and_modify(mut self, change: impl FnOnce(&mut Value)) -> Self {
        if let Entry::Occupied(entry) = &mut self {
            change(entry.get_mut());
        }
        self
    }
}

/// The place of a key the [`Map`] does not hold.
#[derive(Debug)]
pub struct VacantEntry<'a> {
    map: &'a mut Map,
    key: String,
    /// Where the key goes to keep the keys sorted.
    index: usize,
}

impl<'a> VacantEntry<'a> {
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key, given back.
    pub fn into_key(self) -> String {
        self.key
    }

    /// Inserts `value` under the key, returning it in its place.
    pub fn insert(self, value: Value) -> &'a mut Value {
        let entries = &mut self.map.entries;
        entries.insert(self.index, (Key::from(self.key), value));
        &mut entries[self.index].1
    }
}

/// The place of a key the [`Map`] holds.
#[derive(Debug)]
pub struct OccupiedEntry<'a> {
    map: &'a mut Map,
    /// Where the key is; valid for as long as the entry borrows the map.
    index: usize,
}

impl<'a> OccupiedEntry<'a> {
    /// The key.
    pub fn key(&self) -> &str {
        &self.map.entries[self.index].0
    }

    /// The value.
    pub fn get(&self) -> &Value {
        &self.map.entries[self.index].1
    }

    /// The value, to change in place.
    pub fn get_mut(&mut self) -> &mut Value {
        &mut self.map.entries[self.index].1
    }

    /// The value, to change in place, for as long as the map was borrowed.
    pub fn into_mut(self) -> &'a mut Value {
        &mut self.map.entries[self.index].1
    }

    /// Replaces the value, returning the one it replaced.
    pub fn insert(&mut self, value: Value) -> Value {
        std::mem::replace(self.get_mut(), value)
    }

    /// Removes the entry, returning its value.
    pub fn remove(self) -> Value {
        self.remove_entry().1
    }

    /// Removes the entry, returning its key and value.
    pub fn remove_entry(self) -> (String, Value) {
        into_pair(self.map.entries.remove(self.index))
    }
}

/// The entries of a [`Map`] in key order, from [`Map::iter`].
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (Key, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(key, value)| (key.as_str(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(key, value)| (key.as_str(), value))
    }
}

impl ExactSizeIterator for Iter<'_> {}
impl FusedIterator for Iter<'_> {}

/// The entries of a [`Map`] in key order with mutable values, from
/// [`Map::iter_mut`].
#[derive(Debug)]
pub struct IterMut<'a>(std::slice::IterMut<'a, (Key, Value)>);

impl<'a> Iterator for IterMut<'a> {
    type Item = (&'a str, &'a mut Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(key, value)| (key.as_str(), value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IterMut<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(key, value)| (key.as_str(), value))
    }
}

impl ExactSizeIterator for IterMut<'_> {}
impl FusedIterator for IterMut<'_> {}

/// The entries of a [`Map`] in key order, by value.
#[derive(Debug)]
pub struct IntoIter(std::vec::IntoIter<(Key, Value)>);

impl Iterator for IntoIter {
    type Item = (String, Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(into_pair)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for IntoIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(into_pair)
    }
}

impl ExactSizeIterator for IntoIter {}
impl FusedIterator for IntoIter {}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter(self.entries.into_iter())
    }
}

impl<'a> IntoIterator for &'a Map {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Map {
    type Item = (&'a str, &'a mut Value);
    type IntoIter = IterMut<'a>;

    fn into_iter(self) -> IterMut<'a> {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn keys_stay_sorted_and_unique() {
        let mut map = Map::new();
        for key in ["b", "a", "c", "a"] {
            map.insert(key.to_owned(), Value::from(key));
        }
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(map.len(), 3);
        assert_eq!(map.remove("b"), Some(Value::from("b")));
        assert_eq!(map.remove("b"), None);
        assert_eq!(map.pop_first(), Some(("a".to_owned(), Value::from("a"))));
        assert_eq!(format!("{map:?}"), r#"{"c": "c"}"#);
    }

    #[test]
    fn entries_read_insert_and_change_in_one_lookup() {
        let mut map = Map::new();
        let increment = |value: &mut Value| {
            *value = Value::from(value.as_i64().map_or(0, |n| n + 1));
        };
        for _ in 0..3 {
            map.entry("visits")
                .and_modify(increment)
                .or_insert(Value::from(1));
        }
        assert_eq!(map["visits"], Value::from(3));
        // Asking for an entry inserts nothing.
        assert_eq!(map.entry("b").key(), "b");
        assert!(!map.contains_key("b"));
        map.entry("a").or_insert_with(|| Value::from("first"));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "visits"]);
        let Entry::Occupied(mut entry) = map.entry("a") else {
            panic!("a is in the map");
        };
        assert_eq!(entry.insert(Value::Null), Value::from("first"));
        assert_eq!(entry.remove_entry(), ("a".to_owned(), Value::Null));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn the_last_of_repeated_keys_wins() {
        let map = Map::from([
            ("x", Value::from(1.0)),
            ("a", Value::Null),
            ("x", Value::from(2.0)),
        ]);
        assert_eq!(map.len(), 2);
        assert_eq!(map["x"], Value::from(2.0));

        let mut read = Map::new();
        read.push_read("a".to_owned(), Value::from(1.0));
        read.push_read("a".to_owned(), Value::from(2.0));
        read.push_read("0".to_owned(), Value::Null);
        assert_eq!(read.keys().collect::<Vec<_>>(), ["0", "a"]);
        assert_eq!(read["a"], Value::from(2.0));
    }

    #[test]
    fn append_lets_the_other_map_win() {
        let mut map = Map::from([("a", Value::from(1.0)), ("b", Value::from(1.0))]);
        let mut other = Map::from([("b", Value::from(2.0)), ("c", Value::from(2.0))]);
        map.append(&mut other);
        assert!(other.is_empty());
        assert_eq!(
            map,
            Map::from([
                ("a", Value::from(1.0)),
                ("b", Value::from(2.0)),
                ("c", Value::from(2.0)),
            ])
        );
    }

    #[derive(Debug, Clone)]
    enum Operation {
        Insert(String, i64),
        Remove(String),
        Extend(Vec<(String, i64)>),
        Retain(i64),
        Read(Vec<(String, i64)>),
        Entry(String, i64),
    }

    fn key() -> impl Strategy<Value = String> {
        // Few distinct keys, so operations often meet an existing one; some
        // long enough to be stored inline or not (24 bytes), some not ASCII.
        prop_oneof![
            "[a-e]{0,2}",
            "[a-e]{0,2}x{21,24}[a-e]{0,2}",
            "[é🦀][a-e]{0,2}"
        ]
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            (key(), any::<i64>()).prop_map(|(k, v)| Operation::Insert(k, v)),
            key().prop_map(Operation::Remove),
            prop::collection::vec((key(), any::<i64>()), 0..12).prop_map(Operation::Extend),
            any::<i64>().prop_map(Operation::Retain),
            prop::collection::vec((key(), any::<i64>()), 0..12).prop_map(Operation::Read),
            (key(), any::<i64>()).prop_map(|(k, v)| Operation::Entry(k, v)),
        ]
    }

    proptest! {
        /// Every operation leaves the map as a `BTreeMap` would be: the
        /// same entries in the same order.
        #[test]
        fn behaves_as_a_btree_map(operations in prop::collection::vec(operation(), 0..40)) {
            let mut map = Map::new();
            let mut model: BTreeMap<String, Value> = BTreeMap::new();
            for operation in operations {
                match operation {
                    Operation::Insert(key, n) => {
                        prop_assert_eq!(
                            map.insert(key.clone(), n.into()),
                            model.insert(key, n.into())
                        );
                    }
                    Operation::Remove(key) => {
                        prop_assert_eq!(map.remove(&key), model.remove(&key));
                    }
                    Operation::Extend(entries) => {
                        let entries: Vec<(String, Value)> =
                            entries.into_iter().map(|(k, n)| (k, n.into())).collect();
                        map.extend(entries.clone());
                        model.extend(entries);
                    }
                    Operation::Retain(pivot) => {
                        let keep = |_: &str, value: &mut Value| {
                            value.as_i64().is_some_and(|n| n < pivot)
                        };
                        map.retain(keep);
                        model.retain(|key, value| keep(key, value));
                    }
                    Operation::Entry(key, n) => {
                        // Inserts when absent, else doubles odd values and
                        // removes even ones, through each entry API.
                        let change = |value: &mut Value| {
                            if let Some(old) = value.as_i64() {
                                *value = Value::from(old.wrapping_mul(2));
                            }
                        };
                        let odd = |value: &Value| value.as_i64().is_some_and(|v| v % 2 != 0);
                        match map.entry(key.clone()) {
                            Entry::Occupied(entry) if odd(entry.get()) => {
                                change(entry.into_mut());
                            }
                            Entry::Occupied(entry) => {
                                prop_assert_eq!(entry.key(), key.as_str());
                                entry.remove();
                            }
                            Entry::Vacant(entry) => {
                                entry.insert(n.into());
                            }
                        }
                        match model.entry(key) {
                            std::collections::btree_map::Entry::Occupied(entry)
                                if odd(entry.get()) =>
                            {
                                change(entry.into_mut());
                            }
                            std::collections::btree_map::Entry::Occupied(entry) => {
                                entry.remove();
                            }
                            std::collections::btree_map::Entry::Vacant(entry) => {
                                entry.insert(n.into());
                            }
                        }
                    }
                    Operation::Read(entries) => {
                        let mut read = Map::new();
                        let mut expected = BTreeMap::new();
                        for (key, n) in entries {
                            read.push_read(key.clone(), n.into());
                            expected.insert(key, Value::from(n));
                        }
                        prop_assert!(read.iter().eq(expected.iter().map(|(k, v)| (k.as_str(), v))));
                        map = read;
                        model = expected;
                    }
                }
                prop_assert!(map.iter().eq(model.iter().map(|(k, v)| (k.as_str(), v))));
                // Every key held and a few not, over few entries (scanned)
                // and many (searched).
                for key in model.keys().map(String::as_str).chain(["", "a", "ab", "e", "zz"]) {
                    prop_assert_eq!(map.get(key), model.get(key));
                    prop_assert_eq!(map.contains_key(key), model.contains_key(key));
                }
            }
            let collected: Map = model.clone().into_iter().rev().collect();
            prop_assert!(collected.iter().eq(model.iter().map(|(k, v)| (k.as_str(), v))));
        }
    }
}
