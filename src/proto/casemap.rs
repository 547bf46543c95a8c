//! IRC casemapping: the `CASEMAPPING` rules for folding nicknames and
//! channel names, and [`CaseMap`], a map keyed by folded names that
//! remembers the spelling each entry was stored under.

use std::collections::HashMap;

/// A casemapping as advertised by the ISUPPORT `CASEMAPPING` token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaseMapping {
    /// Only `A`-`Z` fold to `a`-`z`.
    Ascii,
    /// ASCII letters plus `[]\~` fold to `{}|^`.
    #[default]
    Rfc1459,
    /// ASCII letters plus `[]\` fold to `{}|` (`~` and `^` stay distinct).
    Rfc1459Strict,
}

impl CaseMapping {
    /// From an ISUPPORT CASEMAPPING value; None for unknown values (callers fall back to Rfc1459).
    ///
    /// Matching ignores ASCII case. The historical spelling `strict-rfc1459`
    /// is accepted as an alias of `rfc1459-strict`.
    pub fn from_token(value: &str) -> Option<CaseMapping> {
        if value.eq_ignore_ascii_case("ascii") {
            Some(CaseMapping::Ascii)
        } else if value.eq_ignore_ascii_case("rfc1459") {
            Some(CaseMapping::Rfc1459)
        } else if value.eq_ignore_ascii_case("rfc1459-strict")
            || value.eq_ignore_ascii_case("strict-rfc1459")
        {
            Some(CaseMapping::Rfc1459Strict)
        } else {
            None
        }
    }

    /// The ISUPPORT token value for this mapping.
    pub fn as_token(&self) -> &'static str {
        match self {
            CaseMapping::Ascii => "ascii",
            CaseMapping::Rfc1459 => "rfc1459",
            CaseMapping::Rfc1459Strict => "rfc1459-strict",
        }
    }

    /// Fold one character to its canonical (lower-case) form.
    fn fold_char(&self, c: char) -> char {
        match (self, c) {
            (_, 'A'..='Z') => c.to_ascii_lowercase(),
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, '[') => '{',
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, ']') => '}',
            (CaseMapping::Rfc1459 | CaseMapping::Rfc1459Strict, '\\') => '|',
            (CaseMapping::Rfc1459, '~') => '^',
            _ => c,
        }
    }

    /// Fold a name to its canonical form under this mapping. Characters
    /// outside the mapping's range (including all non-ASCII) are unchanged.
    pub fn fold(&self, name: &str) -> String {
        name.chars().map(|c| self.fold_char(c)).collect()
    }

    /// Whether two names are equal under this mapping.
    pub fn eq(&self, a: &str, b: &str) -> bool {
        // Folding never changes a character's UTF-8 length, so differing
        // byte lengths already mean the names differ.
        a.len() == b.len()
            && a.chars()
                .zip(b.chars())
                .all(|(x, y)| self.fold_char(x) == self.fold_char(y))
    }
}

/// One entry of a [`CaseMap`].
#[derive(Clone, Debug)]
struct Entry<V> {
    /// The spelling the entry was last stored under.
    name: String,
    value: V,
    /// Insertion sequence number, used to order re-keying collisions.
    seq: u64,
}

/// Map keyed by the folded name that remembers the original spelling.
#[derive(Clone, Debug)]
pub struct CaseMap<V> {
    mapping: CaseMapping,
    entries: HashMap<String, Entry<V>>,
    next_seq: u64,
}

impl<V> Default for CaseMap<V> {
    fn default() -> Self {
        CaseMap::new(CaseMapping::default())
    }
}

impl<V> CaseMap<V> {
    /// An empty map folding names under `mapping`.
    pub fn new(mapping: CaseMapping) -> Self {
        CaseMap {
            mapping,
            entries: HashMap::new(),
            next_seq: 0,
        }
    }

    /// The mapping names are folded under.
    pub fn mapping(&self) -> CaseMapping {
        self.mapping
    }

    fn bump_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Insert or replace the entry for `name`, returning the previous value.
    /// The entry's stored spelling becomes `name`.
    pub fn insert(&mut self, name: &str, value: V) -> Option<V> {
        let seq = self.bump_seq();
        let entry = Entry {
            name: name.to_owned(),
            value,
            seq,
        };
        self.entries
            .insert(self.mapping.fold(name), entry)
            .map(|old| old.value)
    }

    /// The value stored for `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.entries.get(&self.mapping.fold(name)).map(|e| &e.value)
    }

    /// The value stored for `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        let key = self.mapping.fold(name);
        self.entries.get_mut(&key).map(|e| &mut e.value)
    }

    /// The value for `name`, inserted with `make` when missing. The
    /// entry's stored spelling becomes `name`.
    pub fn get_or_insert_with(&mut self, name: &str, make: impl FnOnce() -> V) -> &mut V {
        let seq = self.bump_seq();
        let entry = self
            .entries
            .entry(self.mapping.fold(name))
            .or_insert_with(|| Entry {
                name: name.to_owned(),
                value: make(),
                seq,
            });
        if entry.name != name {
            entry.name = name.to_owned();
            entry.seq = seq;
        }
        &mut entry.value
    }

    /// Whether an entry exists for `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(&self.mapping.fold(name))
    }

    /// Remove the entry for `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<V> {
        self.entries
            .remove(&self.mapping.fold(name))
            .map(|e| e.value)
    }

    /// Rename an entry (e.g. a nick change); returns false if `from` was absent. Overwrites `to` if present.
    ///
    /// The entry's stored spelling becomes `to`, which also covers
    /// case-only changes (`nick` -> `Nick`).
    pub fn rename(&mut self, from: &str, to: &str) -> bool {
        let Some(mut entry) = self.entries.remove(&self.mapping.fold(from)) else {
            return false;
        };
        entry.name = to.to_owned();
        entry.seq = self.bump_seq();
        self.entries.insert(self.mapping.fold(to), entry);
        true
    }

    /// The original spelling stored for `name`.
    pub fn original_name(&self, name: &str) -> Option<&str> {
        self.entries
            .get(&self.mapping.fold(name))
            .map(|e| e.name.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (original spelling, value) pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.values().map(|e| (e.name.as_str(), &e.value))
    }

    /// (original spelling, mutable value) pairs, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut V)> {
        self.entries
            .values_mut()
            .map(|e| (e.name.as_str(), &mut e.value))
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.values().map(|e| &e.value)
    }

    /// Re-key every entry under a new mapping (CASEMAPPING arrived late). On collisions, later entries win.
    ///
    /// "Later" means most recently inserted or renamed.
    pub fn set_mapping(&mut self, mapping: CaseMapping) {
        if mapping == self.mapping {
            return;
        }
        self.mapping = mapping;
        let mut old: Vec<Entry<V>> = self.entries.drain().map(|(_, e)| e).collect();
        old.sort_by_key(|e| e.seq);
        for entry in old {
            self.entries.insert(mapping.fold(&entry.name), entry);
        }
    }

    /// Remove every entry (the mapping is kept).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn get_or_insert_with_respells() {
        let mut m: CaseMap<u32> = CaseMap::new(CaseMapping::Rfc1459);
        *m.get_or_insert_with("Nick[a]", || 1) += 1;
        assert_eq!(m.get("nick{A}"), Some(&2));
        *m.get_or_insert_with("NICK{A}", || 10) += 1;
        assert_eq!(m.get("nick[a]"), Some(&3));
        assert_eq!(m.original_name("nick[a]"), Some("NICK{A}"));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn tokens_round_trip() {
        for m in [
            CaseMapping::Ascii,
            CaseMapping::Rfc1459,
            CaseMapping::Rfc1459Strict,
        ] {
            assert_eq!(CaseMapping::from_token(m.as_token()), Some(m));
        }
        assert_eq!(
            CaseMapping::from_token("strict-rfc1459"),
            Some(CaseMapping::Rfc1459Strict)
        );
        assert_eq!(
            CaseMapping::from_token("RFC1459"),
            Some(CaseMapping::Rfc1459)
        );
        assert_eq!(CaseMapping::from_token("rfc7613"), None);
        assert_eq!(CaseMapping::from_token(""), None);
        assert_eq!(CaseMapping::default(), CaseMapping::Rfc1459);
    }

    #[test]
    fn fold_ascii() {
        let m = CaseMapping::Ascii;
        assert_eq!(m.fold("ABC[]\\~xyz"), "abc[]\\~xyz");
        assert!(m.eq("NiCk", "nick"));
        assert!(!m.eq("nick[a]", "nick{a}"));
        assert!(!m.eq("a~", "a^"));
    }

    #[test]
    fn fold_rfc1459() {
        let m = CaseMapping::Rfc1459;
        assert_eq!(m.fold("ABC[]\\~xyz"), "abc{}|^xyz");
        assert_eq!(m.fold("{}|^"), "{}|^");
        assert!(m.eq("Nick[a]", "nick{A}"));
        assert!(m.eq("a\\b", "A|B"));
        assert!(m.eq("x~", "X^"));
    }

    #[test]
    fn fold_rfc1459_strict() {
        let m = CaseMapping::Rfc1459Strict;
        assert_eq!(m.fold("ABC[]\\~xyz"), "abc{}|~xyz");
        assert!(m.eq("Nick[a]", "nick{A}"));
        assert!(m.eq("a\\b", "A|B"));
        assert!(!m.eq("x~", "X^"));
    }

    #[test]
    fn fold_leaves_non_ascii_alone() {
        for m in [
            CaseMapping::Ascii,
            CaseMapping::Rfc1459,
            CaseMapping::Rfc1459Strict,
        ] {
            assert_eq!(m.fold("ÄÖÜé"), "ÄÖÜé");
            assert!(!m.eq("Ä", "ä"));
            assert!(!m.eq("ab", "abc"));
            assert!(m.eq("", ""));
        }
    }

    #[test]
    fn map_basic_operations() {
        let mut map = CaseMap::new(CaseMapping::Rfc1459);
        assert!(map.is_empty());
        assert_eq!(map.insert("#Chan[1]", 1), None);
        assert_eq!(map.get("#chan{1}"), Some(&1));
        assert!(map.contains("#CHAN[1]"));
        assert_eq!(map.original_name("#chan{1}"), Some("#Chan[1]"));
        assert_eq!(map.len(), 1);

        // Replacing returns the old value and stores the new spelling.
        assert_eq!(map.insert("#CHAN{1}", 2), Some(1));
        assert_eq!(map.original_name("#chan[1]"), Some("#CHAN{1}"));
        assert_eq!(map.len(), 1);

        if let Some(v) = map.get_mut("#chan[1]") {
            *v += 10;
        }
        assert_eq!(map.get("#chan[1]"), Some(&12));

        for (_, v) in map.iter_mut() {
            *v += 1;
        }
        let all: Vec<(&str, &i32)> = map.iter().collect();
        assert_eq!(all, vec![("#CHAN{1}", &13)]);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec![13]);

        assert_eq!(map.remove("#chan{1}"), Some(13));
        assert_eq!(map.remove("#chan{1}"), None);
        assert!(map.is_empty());

        map.insert("a", 1);
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.mapping(), CaseMapping::Rfc1459);
    }

    #[test]
    fn map_default_is_rfc1459() {
        let map: CaseMap<()> = CaseMap::default();
        assert_eq!(map.mapping(), CaseMapping::Rfc1459);
    }

    #[test]
    fn map_rename() {
        let mut map = CaseMap::new(CaseMapping::Rfc1459);
        map.insert("alice", 1);
        map.insert("bob", 2);

        assert!(!map.rename("carol", "dave"));

        // Case-only change updates the spelling.
        assert!(map.rename("ALICE", "Alice"));
        assert_eq!(map.original_name("alice"), Some("Alice"));
        assert_eq!(map.get("alice"), Some(&1));
        assert_eq!(map.len(), 2);

        // Rename onto an existing entry overwrites it.
        assert!(map.rename("alice", "Bob"));
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("bob"), Some(&1));
        assert_eq!(map.original_name("bob"), Some("Bob"));
        assert!(!map.contains("alice"));
    }

    #[test]
    fn map_set_mapping_rekeys() {
        let mut map = CaseMap::new(CaseMapping::Ascii);
        map.insert("nick[a]", 1);
        map.insert("x~", 2);
        map.insert("Other", 3);
        // Distinct under ascii.
        map.insert("nick{a}", 4);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get("NICK{A}"), Some(&4));
        assert_eq!(map.get("NICK[A]"), Some(&1));

        map.set_mapping(CaseMapping::Rfc1459);
        assert_eq!(map.mapping(), CaseMapping::Rfc1459);
        // "nick[a]" and "nick{a}" collide; the later insertion wins.
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("NICK[A]"), Some(&4));
        assert_eq!(map.original_name("nick[a]"), Some("nick{a}"));
        assert_eq!(map.get("X^"), Some(&2));
        assert_eq!(map.original_name("x^"), Some("x~"));
        assert_eq!(map.get("other"), Some(&3));

        map.set_mapping(CaseMapping::Rfc1459Strict);
        assert_eq!(map.get("x~"), Some(&2));
        assert_eq!(map.get("x^"), None);
    }

    #[test]
    fn map_set_mapping_later_rename_wins() {
        let mut map = CaseMap::new(CaseMapping::Ascii);
        map.insert("b{", 1);
        map.insert("c", 2);
        assert!(map.rename("c", "B["));
        map.set_mapping(CaseMapping::Rfc1459);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("b{"), Some(&2));
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::sample::select(vec![
                'a', 'A', 'b', 'B', '[', ']', '{', '}', '\\', '|', '~', '^', '-', 'é', 'É',
            ]),
            0..6,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    fn mapping_strategy() -> impl Strategy<Value = CaseMapping> {
        proptest::sample::select(vec![
            CaseMapping::Ascii,
            CaseMapping::Rfc1459,
            CaseMapping::Rfc1459Strict,
        ])
    }

    proptest! {
        #[test]
        fn fold_is_idempotent(m in mapping_strategy(), s in name_strategy()) {
            let once = m.fold(&s);
            prop_assert_eq!(m.fold(&once), once.clone());
            prop_assert_eq!(once.len(), s.len());
        }

        #[test]
        fn fold_equality_matches_eq(m in mapping_strategy(), a in name_strategy(), b in name_strategy()) {
            prop_assert_eq!(m.fold(&a) == m.fold(&b), m.eq(&a, &b));
        }

        #[test]
        fn map_lookup_is_case_insensitive(m in mapping_strategy(), a in name_strategy(), b in name_strategy()) {
            let mut map = CaseMap::new(m);
            map.insert(&a, ());
            prop_assert_eq!(map.contains(&b), m.eq(&a, &b));
        }
    }
}
