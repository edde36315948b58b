//! [`MergeIterator`]: the k-way merge of sorted sources into one sorted, deduplicated cursor.
//!
//! Model: LevelDB's `MergingIterator`. Sources are ordered newest first (memtable, immutable
//! memtables, L0 tables newest first, then one cursor per level). When several sources hold the
//! same internal key (same user key and version, which happens while a flush or compaction
//! output is visible beside its input), only the entry of the lowest-index (newest) source is
//! yielded, in both directions.
//!
//! Why a binary heap and not a loser tree: both make a step O(log k); a loser tree needs about
//! half the comparisons, but k is small here (memtables + L0 tables + levels, tens at most),
//! the heap handles exhausted children by a plain removal, is rebuilt in O(k) on a direction
//! switch, and serves both directions with one comparator flag. The heap is a `Vec<usize>` of
//! child indices sized once: no step allocates.

use std::cmp::Ordering;
use std::fmt;

use super::iterator::KvIterator;
use crate::error::{Error, Result};
use crate::key::compare_keys;
use crate::value::ValueRef;

/// Which way the cursor last moved; decides the heap order and where non-current children sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Min-heap: every child is at its first entry `>=` the current key.
    Forward,
    /// Max-heap: every child is at its last entry `<=` the current key.
    Reverse,
}

/// A [`KvIterator`] over the union of its sources, in [`compare_keys`] order, each internal key
/// once (from the lowest-index source holding it).
///
/// Invariants: `heap` holds the indices of exactly the valid children, in heap order for
/// `direction` with ties broken by lower index first, so `heap[0]` is the current entry.
/// REQUIRES of each source: its keys are strictly increasing (no internal key twice).
pub struct MergeIterator {
    children: Vec<Box<dyn KvIterator>>,
    heap: Vec<usize>,
    direction: Direction,
    /// The current key, copied only on a direction switch (the children move under it).
    switch_key: Vec<u8>,
}

impl fmt::Debug for MergeIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergeIterator")
            .field("children", &self.children.len())
            .field("heap", &self.heap)
            .field("direction", &self.direction)
            .finish()
    }
}

impl MergeIterator {
    /// Merges `sources`, newest first. The result is unpositioned.
    pub fn new(sources: Vec<Box<dyn KvIterator>>) -> Self {
        let k = sources.len();
        MergeIterator {
            children: sources,
            heap: Vec::with_capacity(k),
            direction: Direction::Forward,
            switch_key: Vec::new(),
        }
    }

    /// Number of sources.
    pub fn num_sources(&self) -> usize {
        self.children.len()
    }

    /// Runs `position` on every child, then rebuilds the heap for `direction`. On a child's
    /// error the iterator is left invalid.
    fn position_all(
        &mut self,
        direction: Direction,
        mut position: impl FnMut(&mut dyn KvIterator) -> Result<()>,
    ) -> Result<()> {
        self.heap.clear();
        self.direction = direction;
        for child in &mut self.children {
            position(child.as_mut())?;
        }
        self.rebuild();
        Ok(())
    }

    /// Heapifies the valid children in O(k).
    fn rebuild(&mut self) {
        self.heap.clear();
        self.heap
            .extend((0..self.children.len()).filter(|&i| self.children[i].valid()));
        for at in (0..self.heap.len() / 2).rev() {
            sift_down(&mut self.heap, &self.children, self.direction, at);
        }
        self.debug_assert_heap();
    }

    /// One step in the current direction: first moves every other child sitting on the
    /// current key past it (the duplicates), then the current child.
    fn step(&mut self) -> Result<()> {
        let result = self.step_inner();
        if result.is_err() {
            self.heap.clear(); // invalid until the next positioning call
        }
        result
    }

    fn step_inner(&mut self) -> Result<()> {
        // A child equal to the top has only equal ancestors, so one exists iff a child of the
        // root is one: checking heap[1] and heap[2] finds them all, one at a time.
        while let Some(at) = self.duplicate_of_top() {
            self.advance(at)?;
        }
        self.advance(0)
    }

    fn duplicate_of_top(&self) -> Option<usize> {
        let top = self.children[*self.heap.first()?].key();
        [1, 2].into_iter().find(|&at| {
            self.heap
                .get(at)
                .is_some_and(|&i| self.children[i].key() == top)
        })
    }

    /// Moves the child at heap slot `at` one entry in the current direction and restores the
    /// heap (its key moved away from the top, so it only sinks, or leaves if exhausted).
    fn advance(&mut self, at: usize) -> Result<()> {
        let i = self.heap[at];
        match self.direction {
            Direction::Forward => self.children[i].next()?,
            Direction::Reverse => self.children[i].prev()?,
        }
        if self.children[i].valid() {
            sift_down(&mut self.heap, &self.children, self.direction, at);
        } else {
            self.heap.swap_remove(at);
            // `at` is the root or a child of it, and the moved-in last leaf never comes before
            // the root: sinking is enough.
            debug_assert!(at <= 2);
            if at < self.heap.len() {
                sift_down(&mut self.heap, &self.children, self.direction, at);
            }
        }
        self.debug_assert_heap();
        Ok(())
    }

    /// Repositions every non-current child strictly on the `to` side of the current key (as
    /// LevelDB does when the direction changes), moves the current child, rebuilds the heap.
    fn switch_direction(&mut self, to: Direction) -> Result<()> {
        let current = self.heap[0];
        self.switch_key.clear();
        self.switch_key
            .extend_from_slice(self.children[current].key());
        let key = &self.switch_key;
        for (i, child) in self.children.iter_mut().enumerate() {
            if i == current {
                continue;
            }
            match to {
                Direction::Forward => {
                    child.seek(key)?;
                    if child.valid() && child.key() == key.as_slice() {
                        child.next()?; // a duplicate of the current key: skip it
                    }
                }
                Direction::Reverse => {
                    child.seek_for_prev(key)?;
                    if child.valid() && child.key() == key.as_slice() {
                        child.prev()?;
                    }
                }
            }
        }
        match to {
            Direction::Forward => self.children[current].next()?,
            Direction::Reverse => self.children[current].prev()?,
        }
        self.direction = to;
        self.rebuild();
        Ok(())
    }

    fn move_toward(&mut self, to: Direction) -> Result<()> {
        if self.heap.is_empty() {
            return Err(Error::InvalidRequest(
                "next or prev on a merge iterator that is not positioned",
            ));
        }
        if self.direction == to {
            return self.step();
        }
        let result = self.switch_direction(to);
        if result.is_err() {
            self.heap.clear();
        }
        result
    }

    fn debug_assert_heap(&self) {
        if cfg!(debug_assertions) {
            for at in 1..self.heap.len() {
                let parent = (at - 1) / 2;
                debug_assert!(
                    !before(
                        &self.children,
                        self.direction,
                        self.heap[at],
                        self.heap[parent]
                    ),
                    "heap order broken at slot {at}"
                );
            }
        }
    }
}

/// True if child `a` must come out of the heap before child `b`: the smaller key (larger in
/// reverse), and on equal keys the lower index (the newer source), in both directions.
fn before(children: &[Box<dyn KvIterator>], dir: Direction, a: usize, b: usize) -> bool {
    let by_key = compare_keys(children[a].key(), children[b].key());
    let by_key = match dir {
        Direction::Forward => by_key,
        Direction::Reverse => by_key.reverse(),
    };
    by_key.then(a.cmp(&b)) == Ordering::Less
}

fn sift_down(heap: &mut [usize], children: &[Box<dyn KvIterator>], dir: Direction, at: usize) {
    let mut at = at;
    loop {
        let (left, right) = (2 * at + 1, 2 * at + 2);
        let mut first = at;
        if left < heap.len() && before(children, dir, heap[left], heap[first]) {
            first = left;
        }
        if right < heap.len() && before(children, dir, heap[right], heap[first]) {
            first = right;
        }
        if first == at {
            return;
        }
        heap.swap(at, first);
        at = first;
    }
}

impl KvIterator for MergeIterator {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    /// The current key; empty when not positioned (a contract violation, not a panic).
    fn key(&self) -> &[u8] {
        match self.heap.first() {
            Some(&i) => self.children[i].key(),
            None => &[],
        }
    }

    fn value(&self) -> ValueRef<'_> {
        match self.heap.first() {
            Some(&i) => self.children[i].value(),
            None => ValueRef {
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                value: &[],
            },
        }
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.position_all(Direction::Forward, |c| c.seek_to_first())
    }

    fn seek_to_last(&mut self) -> Result<()> {
        self.position_all(Direction::Reverse, |c| c.seek_to_last())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.position_all(Direction::Forward, |c| c.seek(key))
    }

    fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        self.position_all(Direction::Reverse, |c| c.seek_for_prev(key))
    }

    fn next(&mut self) -> Result<()> {
        self.move_toward(Direction::Forward)
    }

    fn prev(&mut self) -> Result<()> {
        self.move_toward(Direction::Reverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{key_with_version, InternalKey};
    use crate::table::VecIterator;
    use crate::value::ValueStruct;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
    use std::sync::Arc;

    /// A source: a set of (user key, version) pairs; its entries carry the source's index.
    type Source = BTreeSet<(Vec<u8>, u64)>;

    #[derive(Clone, Debug)]
    enum Op {
        First,
        Last,
        Seek(Vec<u8>, u64),
        SeekForPrev(Vec<u8>, u64),
        Next,
        Prev,
    }

    /// User keys over a two-letter alphabet, so that some are prefixes of others.
    fn user_key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b')], 0..4)
    }

    /// Few versions so that sources share internal keys, plus the extremes.
    fn version() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..4, Just(u64::MAX)]
    }

    fn sources() -> impl Strategy<Value = Vec<Source>> {
        proptest::collection::vec(
            proptest::collection::btree_set((user_key(), version()), 0..10),
            0..6,
        )
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            1 => Just(Op::First),
            1 => Just(Op::Last),
            1 => (user_key(), version()).prop_map(|(k, v)| Op::Seek(k, v)),
            1 => (user_key(), version()).prop_map(|(k, v)| Op::SeekForPrev(k, v)),
            4 => Just(Op::Next),
            4 => Just(Op::Prev),
        ];
        proptest::collection::vec(op, 1..40)
    }

    fn vec_source(index: usize, source: &Source) -> Box<dyn KvIterator> {
        let entries = source
            .iter()
            .map(|(k, v)| {
                let value = ValueStruct {
                    value: vec![index as u8],
                    ..ValueStruct::default()
                };
                (key_with_version(k, *v), value)
            })
            .collect();
        Box::new(VecIterator::new(entries))
    }

    /// The merged, deduplicated entries: each internal key with the lowest source index.
    fn model(sources: &[Source]) -> Vec<(Vec<u8>, u8)> {
        let mut merged: BTreeMap<InternalKey, u8> = BTreeMap::new();
        for (i, s) in sources.iter().enumerate() {
            for (k, v) in s {
                merged.entry(InternalKey::new(k, *v)).or_insert(i as u8);
            }
        }
        merged.into_iter().map(|(k, i)| (k.0, i)).collect()
    }

    /// Applies `op` to the model cursor `pos` over `m`.
    fn model_step(m: &[(Vec<u8>, u8)], pos: Option<usize>, op: &Op) -> Option<usize> {
        let lower = |key: &[u8]| m.partition_point(|e| compare_keys(&e.0, key) == Ordering::Less);
        let upper =
            |key: &[u8]| m.partition_point(|e| compare_keys(&e.0, key) != Ordering::Greater);
        match op {
            Op::First => (!m.is_empty()).then_some(0),
            Op::Last => m.len().checked_sub(1),
            Op::Seek(k, v) => Some(lower(&key_with_version(k, *v))).filter(|&i| i < m.len()),
            Op::SeekForPrev(k, v) => upper(&key_with_version(k, *v)).checked_sub(1),
            Op::Next => pos.and_then(|p| Some(p + 1).filter(|&i| i < m.len())),
            Op::Prev => pos.and_then(|p| p.checked_sub(1)),
        }
    }

    fn apply(it: &mut MergeIterator, op: &Op) -> Result<()> {
        match op {
            Op::First => it.seek_to_first(),
            Op::Last => it.seek_to_last(),
            Op::Seek(k, v) => it.seek(&key_with_version(k, *v)),
            Op::SeekForPrev(k, v) => it.seek_for_prev(&key_with_version(k, *v)),
            Op::Next => it.next(),
            Op::Prev => it.prev(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn merge_matches_model(srcs in sources(), ops in ops()) {
            // Proves every step of random seeks and moves in both directions (with direction
            // switches) lands where the deduplicated merged vector says, and that a duplicated
            // internal key is taken from the lowest-index source.
            let m = model(&srcs);
            let mut it = MergeIterator::new(
                srcs.iter().enumerate().map(|(i, s)| vec_source(i, s)).collect());
            let mut pos = None;
            for (n, op) in ops.iter().enumerate() {
                let moving = matches!(op, Op::Next | Op::Prev);
                let result = apply(&mut it, op);
                if moving && pos.is_none() {
                    prop_assert!(matches!(result, Err(Error::InvalidRequest(_))));
                } else {
                    prop_assert!(result.is_ok());
                    pos = model_step(&m, pos, op);
                }
                prop_assert_eq!(it.valid(), pos.is_some(), "step {} {:?}", n, op);
                if let Some(p) = pos {
                    prop_assert_eq!(it.key(), &m[p].0[..], "step {} {:?}", n, op);
                    prop_assert_eq!(it.value().value, &[m[p].1][..], "step {} {:?}", n, op);
                }
            }
        }

        #[test]
        fn full_scans_both_ways_equal_the_model(srcs in sources()) {
            // Proves a forward scan and a backward scan each yield the whole merged sequence.
            let m = model(&srcs);
            let mut it = MergeIterator::new(
                srcs.iter().enumerate().map(|(i, s)| vec_source(i, s)).collect());
            let mut fwd = Vec::new();
            it.seek_to_first().unwrap();
            while it.valid() { fwd.push((it.key().to_vec(), it.value().value[0])); it.next().unwrap(); }
            prop_assert_eq!(&fwd, &m);
            let mut back = Vec::new();
            it.seek_to_last().unwrap();
            while it.valid() { back.push((it.key().to_vec(), it.value().value[0])); it.prev().unwrap(); }
            back.reverse();
            prop_assert_eq!(&back, &m);
        }
    }

    #[test]
    fn no_sources_and_empty_sources_are_never_valid() {
        // Proves a merge of nothing, or of empty sources, is invalid after every positioning.
        for n in [0, 3] {
            let mut it =
                MergeIterator::new((0..n).map(|i| vec_source(i, &Source::new())).collect());
            assert_eq!(it.num_sources(), n);
            for op in [
                Op::First,
                Op::Last,
                Op::Seek(vec![], 0),
                Op::SeekForPrev(b"z".to_vec(), 0),
            ] {
                apply(&mut it, &op).unwrap();
                assert!(!it.valid());
                assert_eq!(it.key(), b"");
            }
            assert!(matches!(it.next(), Err(Error::InvalidRequest(_))));
        }
    }

    #[test]
    fn one_source_passes_through() {
        // Proves a merge of one source yields exactly that source, both ways.
        let src: Source = [(b"a".to_vec(), 2), (b"a".to_vec(), 1), (b"ab".to_vec(), 0)].into();
        let mut it = MergeIterator::new(vec![vec_source(0, &src)]);
        let want = model(std::slice::from_ref(&src));
        it.seek_to_first().unwrap();
        for (k, _) in &want {
            assert_eq!(it.key(), &k[..]);
            it.next().unwrap();
        }
        assert!(!it.valid());
        it.seek_to_last().unwrap();
        it.prev().unwrap();
        assert_eq!(it.key(), &want[1].0[..]);
        it.next().unwrap();
        assert_eq!(it.key(), &want[2].0[..]);
    }

    /// A source that fails every call while its flag is set.
    struct FailingIter {
        inner: VecIterator,
        fail: Arc<AtomicBool>,
    }

    impl FailingIter {
        fn check(&self) -> Result<()> {
            if self.fail.load(AtomicOrdering::SeqCst) {
                return Err(Error::corruption("table-7", 99, "injected"));
            }
            Ok(())
        }
    }

    impl KvIterator for FailingIter {
        fn valid(&self) -> bool {
            self.inner.valid()
        }
        fn key(&self) -> &[u8] {
            self.inner.key()
        }
        fn value(&self) -> ValueRef<'_> {
            self.inner.value()
        }
        fn seek_to_first(&mut self) -> Result<()> {
            self.check()?;
            self.inner.seek_to_first()
        }
        fn seek_to_last(&mut self) -> Result<()> {
            self.check()?;
            self.inner.seek_to_last()
        }
        fn seek(&mut self, key: &[u8]) -> Result<()> {
            self.check()?;
            self.inner.seek(key)
        }
        fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
            self.check()?;
            self.inner.seek_for_prev(key)
        }
        fn next(&mut self) -> Result<()> {
            self.check()?;
            self.inner.next()
        }
        fn prev(&mut self) -> Result<()> {
            self.check()?;
            self.inner.prev()
        }
    }

    #[test]
    fn child_errors_propagate_and_invalidate() {
        // Proves a child's error surfaces from seek, next and a direction switch, leaves the
        // merge invalid, and a later positioning call works again once the child recovers.
        let fail = Arc::new(AtomicBool::new(false));
        let a: Source = [(b"b".to_vec(), 1), (b"d".to_vec(), 1)].into();
        let b: Source = [(b"a".to_vec(), 1), (b"c".to_vec(), 1)].into();
        let entries = b
            .iter()
            .map(|(k, v)| (key_with_version(k, *v), ValueStruct::default()));
        let failing = FailingIter {
            inner: VecIterator::new(entries.collect()),
            fail: fail.clone(),
        };
        let mut it = MergeIterator::new(vec![vec_source(0, &a), Box::new(failing)]);
        let is_injected = |r: Result<()>| matches!(r, Err(Error::Corruption { offset: 99, .. }));
        type Step = fn(&mut MergeIterator) -> Result<()>;
        let steps: [(&str, Step); 3] = [
            ("seek", |it| it.seek(&key_with_version(b"a", 1))),
            ("next", |it| it.next()),
            ("prev after forward", |it| it.prev()),
        ];
        for (name, step) in steps {
            it.seek_to_first().unwrap();
            assert_eq!(it.key(), key_with_version(b"a", 1), "{name}");
            fail.store(true, AtomicOrdering::SeqCst);
            assert!(is_injected(step(&mut it)), "{name}");
            assert!(!it.valid(), "{name}");
            fail.store(false, AtomicOrdering::SeqCst);
            it.seek_to_last().unwrap();
            assert_eq!(it.key(), key_with_version(b"d", 1), "{name}");
        }
    }
}
