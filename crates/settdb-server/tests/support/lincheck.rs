//! A linearizability checker for a key-value store's recorded client history.
//!
//! Every key is an independent read/write register, and linearizability is compositional, so
//! each key's sub-history is checked on its own.
//!
//! The search is Wing & Gong's, with Lowe's memoization (the "WGL" algorithm used by Knossos
//! and Porcupine):
//!
//! * Every operation becomes a call event (at its invoke time) and a return event (at its
//!   completion time). The events are sorted by time into a doubly-linked list.
//! * Walking the list from the front, at a call event we try to *linearize* that operation
//!   now: if the register model accepts it in the current state, we remove its call and
//!   return events from the list ("lift"), push the old state on a stack and restart from the
//!   front. At a return event whose operation is still in the list, the operation should
//!   already have taken effect, so this branch is a dead end: pop the stack, put the last
//!   operation back ("unlift") and try the next candidate after it.
//! * A cache of (set of linearized operations, register state) prunes configurations already
//!   explored: the rest of the search only depends on that pair.
//! * The history is linearizable iff the list can be emptied.
//!
//! Unknown outcomes: an Unknown read observed nothing and is dropped. An Unknown write may
//! never take effect or take effect at any point after its call (its return is at +infinity).
//! Open-ended operations make the search much wider, so before searching each one is narrowed
//! without changing the verdict (see [`narrow_unknown_write`]): dropped if no read saw its
//! value, made an ordinary write if it is the only possible source of a value some read saw
//! (unique values, the usual case), and otherwise made a "MaybeWrite" (write or no-op) with a
//! finite return. MaybeWrites (e.g. Unknown deletes) are handled in the search by trying them
//! last, taking the no-op only when forced, letting identical ones take effect in order, and
//! pruning configurations dominated by one that already failed (see [`search`]).
//!
//! When a key fails, the furthest return event the search reached marks the smallest
//! non-linearizable prefix of its history; the message names the operation there.
//!
//! Timestamps are closed intervals: an operation that completes at `t` and one invoked at the
//! same `t` are treated as concurrent (calls sort before returns at equal times).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// What an operation did, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// `Some(v)`: put `v`; `None`: delete.
    Write(Option<String>),
    /// Read the key's value.
    Read,
}

/// How an operation ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned; for a read, the value it saw (None = absent).
    Ok(Option<String>),
    /// The call failed or timed out in a way that leaves unknown whether a write took effect
    /// (for a read: treat as if it never happened).
    Unknown,
}

/// One operation of the recorded history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it (used in messages only).
    pub client: usize,
    /// The key it touched.
    pub key: String,
    /// Read or write.
    pub kind: OpKind,
    /// When it was invoked, in ns since the start of the run.
    pub invoke: u64,
    /// When it completed, in ns since the start; ignored for an [`Outcome::Unknown`] op.
    pub complete: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A key whose history is not linearizable, or that the checker could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The offending key.
    pub key: String,
    /// For a violation: the number of operations on the key (Unknown reads excluded) in the
    /// smallest non-linearizable prefix of its history, i.e. those invoked no later than the
    /// completion at which the search got stuck. For malformed input or when the checker
    /// gave up: all operations on the key (Unknown reads excluded).
    pub ops: usize,
    /// One line naming the key and explaining what went wrong.
    pub message: String,
}

/// What a successful check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckSummary {
    /// Distinct keys checked.
    pub keys: usize,
    /// Operations checked (Unknown reads are dropped and not counted).
    pub ops: usize,
    /// Writes with an [`Outcome::Unknown`] outcome.
    pub unknown_writes: usize,
    /// Distinct (linearized set, state) configurations visited, over all keys.
    pub states_explored: u64,
}

/// Distinct configurations explored for one key before the checker gives up (and reports a
/// [`Violation`] saying so). Each one costs a cache entry of roughly 50 bytes, so this bounds
/// memory to about half a gigabyte; valid histories of the expected size need a few thousand.
const MAX_STATES: u64 = 10_000_000;

/// Checks that `history` is linearizable, treating every key as an independent register whose
/// initial value is `initial`.
///
/// Keys are checked in sorted order and the first failing key is reported. Operations may be
/// given in any order. An `Err` is returned for a non-linearizable key, for malformed input
/// (a completed operation that completes before it is invoked), and when the search exceeds
/// its state budget: the checker never reports success for a history it did not finish.
pub fn check(history: &[Op], initial: Option<&str>) -> Result<CheckSummary, Violation> {
    check_with_limit(history, initial, MAX_STATES)
}

/// [`check`] with an explicit per-key state budget.
fn check_with_limit(
    history: &[Op],
    initial: Option<&str>,
    max_states: u64,
) -> Result<CheckSummary, Violation> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.key.as_str()).or_default().push(i);
    }
    let mut summary = CheckSummary {
        keys: by_key.len(),
        ..CheckSummary::default()
    };
    for (key, idxs) in &by_key {
        let stats = check_key(history, key, idxs, initial, max_states)?;
        summary.ops += stats.ops;
        summary.unknown_writes += stats.unknown_writes;
        summary.states_explored = summary.states_explored.saturating_add(stats.states);
    }
    Ok(summary)
}

// ---------------------------------------------------------------------------------------------
// Per-key preparation
// ---------------------------------------------------------------------------------------------

/// What one key's check covered.
struct KeyStats {
    ops: usize,
    unknown_writes: usize,
    states: u64,
}

/// Interns values so that register states are small integers.
#[derive(Default)]
struct Values<'a> {
    ids: HashMap<Option<&'a str>, usize>,
    list: Vec<Option<&'a str>>,
}

impl<'a> Values<'a> {
    fn id(&mut self, v: Option<&'a str>) -> usize {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.list.len();
        self.ids.insert(v, id);
        self.list.push(v);
        id
    }

    fn get(&self, id: usize) -> Option<&'a str> {
        self.list.get(id).copied().flatten()
    }
}

/// The register operation of a search entry; values are interned ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    /// Sets the register.
    Write(usize),
    /// Either sets the register or has no effect (a narrowed Unknown write).
    MaybeWrite(usize),
    /// Must observe exactly this value.
    Read(usize),
}

impl Action {
    /// The register model: the state after taking effect (a MaybeWrite as a write) in
    /// `state`, or `None` if the operation cannot take effect there.
    fn step(self, state: usize) -> Option<usize> {
        match self {
            Action::Write(v) | Action::MaybeWrite(v) => Some(v),
            Action::Read(v) if v == state => Some(state),
            Action::Read(_) => None,
        }
    }
}

/// An operation as the search sees it: a finite interval and an action.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Index into the caller's history (for messages).
    orig: usize,
    invoke: u64,
    complete: u64,
    action: Action,
}

/// Facts about the key's values used to narrow Unknown writes and to explain violations.
#[derive(Default)]
struct ValueFacts {
    /// Completion times of the completed reads that returned each value, sorted.
    read_completions: HashMap<usize, Vec<u64>>,
    /// How many writes (completed or not) wrote each value.
    writers: HashMap<usize, usize>,
    /// The earliest invoke among the writes of each value.
    first_write: HashMap<usize, u64>,
}

/// Narrows an Unknown write (value `value`, invoked at `invoke`, return at +infinity) to an
/// entry with a finite return, or drops it (`None`), without changing the verdict.
///
/// Only reads completing at or after `invoke` can observe it ("relevant" reads).
/// * No relevant read returned `value`: drop it. If it took effect in a witness order, no read
///   sits between it and the next write (that read would have returned `value`), so the order
///   minus the write is still a witness; and "never took effect" was allowed anyway.
/// * `value` is not the initial value and no other write wrote it: it must have taken effect
///   (a read saw it) and before the first relevant read that saw it returned, which becomes
///   its return time.
/// * Otherwise it becomes "write or no-op" returning at the last relevant read returning
///   `value`: taking effect later is unobservable, so is the same as a no-op.
fn narrow_unknown_write(
    orig: usize,
    invoke: u64,
    value: usize,
    initial: usize,
    facts: &ValueFacts,
) -> Option<Entry> {
    let reads = facts.read_completions.get(&value)?;
    let relevant = &reads[reads.partition_point(|&t| t < invoke)..];
    let (&first, &last) = (relevant.first()?, relevant.last()?);
    let sole_source = value != initial && facts.writers.get(&value) == Some(&1);
    Some(if sole_source {
        Entry {
            orig,
            invoke,
            complete: first,
            action: Action::Write(value),
        }
    } else {
        Entry {
            orig,
            invoke,
            complete: last,
            action: Action::MaybeWrite(value),
        }
    })
}

/// Checks one key's sub-history (`idxs` index into `history`).
fn check_key(
    history: &[Op],
    key: &str,
    idxs: &[usize],
    initial: Option<&str>,
    max_states: u64,
) -> Result<KeyStats, Violation> {
    let fail = |ops: usize, what: String| Violation {
        key: key.to_string(),
        ops,
        message: format!("key {}: {}", show(Some(key)), what),
    };
    let is_unknown_read = |op: &Op| op.kind == OpKind::Read && op.outcome == Outcome::Unknown;
    let checked = idxs
        .iter()
        .filter(|&&i| !is_unknown_read(&history[i]))
        .count();

    // Intern values, drop Unknown reads, validate intervals, gather value facts.
    let mut values = Values::default();
    let initial_id = values.id(initial);
    let mut facts = ValueFacts::default();
    let mut completed: Vec<Entry> = Vec::new();
    let mut unknown: Vec<(usize, u64, usize)> = Vec::new(); // (orig, invoke, value)
    for &i in idxs {
        let op = &history[i];
        let done = matches!(op.outcome, Outcome::Ok(_));
        if done && op.complete < op.invoke {
            let what = format!(
                "malformed history: {} completes before it is invoked",
                describe(i, op)
            );
            return Err(fail(checked, what));
        }
        match (&op.kind, &op.outcome) {
            (OpKind::Read, Outcome::Unknown) => {}
            (OpKind::Read, Outcome::Ok(seen)) => {
                let v = values.id(seen.as_deref());
                facts
                    .read_completions
                    .entry(v)
                    .or_default()
                    .push(op.complete);
                let action = Action::Read(v);
                completed.push(Entry {
                    orig: i,
                    invoke: op.invoke,
                    complete: op.complete,
                    action,
                });
            }
            (OpKind::Write(written), outcome) => {
                let v = values.id(written.as_deref());
                *facts.writers.entry(v).or_default() += 1;
                let first = facts.first_write.entry(v).or_insert(op.invoke);
                *first = (*first).min(op.invoke);
                if *outcome == Outcome::Unknown {
                    unknown.push((i, op.invoke, v));
                } else {
                    let action = Action::Write(v);
                    completed.push(Entry {
                        orig: i,
                        invoke: op.invoke,
                        complete: op.complete,
                        action,
                    });
                }
            }
        }
    }
    for reads in facts.read_completions.values_mut() {
        reads.sort_unstable();
    }
    let unknown_writes = unknown.len();
    let mut entries = completed;
    entries.extend(
        unknown
            .iter()
            .filter_map(|&(i, invoke, v)| narrow_unknown_write(i, invoke, v, initial_id, &facts)),
    );
    // Bit ids follow invoke order, so the linearized set is nearly a prefix (compact keys).
    entries.sort_by_key(|e| (e.invoke, e.orig));

    let states = match search(&entries, initial_id, max_states) {
        SearchResult::Linearizable { states } => states,
        SearchResult::GaveUp { states } => {
            let what = format!(
                "gave up after exploring {states} states (limit {max_states}) over {checked} ops; \
                 linearizability NOT established"
            );
            return Err(fail(checked, what));
        }
        SearchResult::Stuck {
            entry,
            states,
            more,
        } => {
            let stuck = entries.get(entry).copied();
            let Some(stuck) = stuck else {
                return Err(fail(checked, "not linearizable".to_string()));
            };
            let at = stuck.complete;
            let prefix = idxs
                .iter()
                .filter(|&&i| !is_unknown_read(&history[i]) && history[i].invoke <= at)
                .count();
            let reason = explain(&stuck, &states, more, initial_id, &values, &facts);
            let what = format!(
                "not linearizable: the first {prefix} ops (all invoked by {at} ns) have no valid \
                 order; stuck at {}: {reason}",
                describe(stuck.orig, &history[stuck.orig])
            );
            return Err(fail(prefix, what));
        }
    };
    Ok(KeyStats {
        ops: checked,
        unknown_writes,
        states,
    })
}

/// Why the operation at the search frontier could not be placed.
fn explain(
    stuck: &Entry,
    states: &[usize],
    more: bool,
    initial: usize,
    values: &Values,
    facts: &ValueFacts,
) -> String {
    let list = || {
        let mut shown: Vec<String> = states.iter().map(|&s| show(values.get(s))).collect();
        if more {
            shown.push("...".to_string());
        }
        format!("[{}]", shown.join(", "))
    };
    match stuck.action {
        Action::Read(v) if v != initial && !facts.writers.contains_key(&v) => {
            format!("{} was never written on this key", show(values.get(v)))
        }
        Action::Read(v)
            if v != initial
                && facts
                    .first_write
                    .get(&v)
                    .is_some_and(|&t| t > stuck.complete) =>
        {
            format!(
                "every write of {} was invoked after this read completed",
                show(values.get(v))
            )
        }
        _ => format!(
            "the ops that completed before it leave the register at one of {}",
            list()
        ),
    }
}

/// Renders a value for a message: quoted and escaped, shortened if long, or `<absent>`.
fn show(v: Option<&str>) -> String {
    const MAX: usize = 40;
    match v {
        None => "<absent>".to_string(),
        Some(s) if s.chars().count() > MAX => {
            let short: String = s.chars().take(MAX).collect();
            format!("{short:?}...")
        }
        Some(s) => format!("{s:?}"),
    }
}

/// Renders an operation for a message.
fn describe(i: usize, op: &Op) -> String {
    let action = match (&op.kind, &op.outcome) {
        (OpKind::Read, Outcome::Ok(seen)) => format!("read -> {}", show(seen.as_deref())),
        (OpKind::Read, Outcome::Unknown) => "read -> unknown".to_string(),
        (OpKind::Write(Some(v)), _) => format!("put {}", show(Some(v))),
        (OpKind::Write(None), _) => "delete".to_string(),
    };
    let span = match op.outcome {
        Outcome::Ok(_) => format!("[{}..{}] ns", op.invoke, op.complete),
        Outcome::Unknown => format!("[{}..?] ns, outcome unknown", op.invoke),
    };
    format!("history[{i}] (client {}, {action}, {span})", op.client)
}

// ---------------------------------------------------------------------------------------------
// The WGL search
// ---------------------------------------------------------------------------------------------

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// The call/return events as a doubly-linked list over index arrays. Node 0 is the head
/// sentinel; node `k >= 1` is the `k`-th event in time order, so node order is time order.
struct EventList {
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The entry each node belongs to.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// Each entry's call node.
    call_of: Vec<usize>,
    /// Each entry's return node.
    ret_of: Vec<usize>,
}

impl EventList {
    fn new(entries: &[Entry]) -> EventList {
        // (time, 0 = call / 1 = return, entry): calls sort before returns at equal times.
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * entries.len());
        for (i, e) in entries.iter().enumerate() {
            events.push((e.invoke, 0, i));
            events.push((e.complete, 1, i));
        }
        events.sort_unstable();
        let nodes = events.len() + 1;
        let mut list = EventList {
            next: (1..=nodes)
                .map(|k| if k < nodes { k } else { NIL })
                .collect(),
            prev: (0..nodes).map(|k| k.wrapping_sub(1)).collect(), // head's prev = NIL
            op: vec![0; nodes],
            is_call: vec![false; nodes],
            call_of: vec![NIL; entries.len()],
            ret_of: vec![NIL; entries.len()],
        };
        for (pos, &(_, kind, i)) in events.iter().enumerate() {
            let node = pos + 1;
            list.op[node] = i;
            list.is_call[node] = kind == 0;
            if kind == 0 {
                list.call_of[i] = node;
            } else {
                list.ret_of[i] = node;
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.next[HEAD]
    }

    fn unlink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = x;
        if x != NIL {
            self.prev[x] = p;
        }
    }

    fn relink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = n;
        if x != NIL {
            self.prev[x] = n;
        }
    }

    /// Removes a call node and its return node (the operation is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.ret_of[self.op[call]]);
    }

    /// Undoes [`EventList::lift`] (dancing links: restore in reverse order).
    fn unlift(&mut self, call: usize) {
        self.relink(self.ret_of[self.op[call]]);
        self.relink(call);
    }
}

/// The set of linearized entries; bit `i` is entry `i`.
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The cache key for this set with register `state`, in a canonical compact form: the
    /// count of leading all-ones words, then the remaining words without trailing zero words
    /// (inline when at most two, the usual case as the set is nearly a prefix).
    fn key(&self, state: usize) -> CacheKey {
        let full = self.words.iter().take_while(|&&w| w == u64::MAX).count();
        let rest = &self.words[full..];
        let len = rest.iter().rposition(|&w| w != 0).map_or(0, |p| p + 1);
        let rest = &rest[..len];
        let tail = if len <= 2 {
            let mut inline = [0; 2];
            inline[..len].copy_from_slice(rest);
            Tail::Inline(inline)
        } else {
            Tail::Heap(rest.into())
        };
        CacheKey { full, state, tail }
    }
}

/// See [`Bitset::key`].
#[derive(PartialEq, Eq, Hash)]
struct CacheKey {
    full: usize,
    state: usize,
    tail: Tail,
}

#[derive(PartialEq, Eq, Hash)]
enum Tail {
    Inline([u64; 2]),
    Heap(Box<[u64]>),
}

/// A fast non-cryptographic hasher for cache keys (FxHash rounds, murmur3 finalizer).
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// How a search ended.
enum SearchResult {
    Linearizable {
        states: u64,
    },
    /// No linearization exists. `entry` is the operation whose return event is the furthest
    /// the search got: the history up to that return is the smallest non-linearizable
    /// prefix. `states` are (some of) the register values in the configurations that got
    /// stuck there, `more` whether there were more than listed.
    Stuck {
        entry: usize,
        states: Vec<usize>,
        more: bool,
    },
    GaveUp {
        states: u64,
    },
}

/// Which calls the scan tries at the current configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Calls of operations other than MaybeWrites.
    Regular,
    /// Calls of MaybeWrites (taking effect as writes). Tried last, so that configurations
    /// where they are still pending are explored (and cached) first; see
    /// [`Search::dominated`].
    Maybe,
}

/// A linearized operation on the backtracking stack.
struct Frame {
    /// Its call node.
    node: usize,
    /// The register state before it.
    state: usize,
    /// The scan phase it was linearized in; `None` for a MaybeWrite's forced no-op.
    phase: Option<Phase>,
}

/// The result of trying to move to a new configuration.
enum Enter {
    New,
    Pruned,
    GaveUp,
}

/// The search's mutable state (besides the stack and the current register value).
struct Search {
    list: EventList,
    linearized: Bitset,
    /// Configurations visited. One not on the stack has been fully explored and failed.
    cache: HashSet<CacheKey, BuildHasherDefault<FxHasher>>,
    /// The entries whose action is a MaybeWrite.
    maybe: Vec<usize>,
    /// For a MaybeWrite: the previous MaybeWrite with the same action and return time.
    twin: Vec<Option<usize>>,
    explored: u64,
    max_states: u64,
}

impl Search {
    /// Tries to linearize entry `op`, taking the register from `state` to `next`: succeeds
    /// if the resulting configuration is neither cached nor dominated.
    fn enter(&mut self, op: usize, state: usize, next: usize) -> Enter {
        self.linearized.set(op);
        let key = self.linearized.key(next);
        if self.cache.contains(&key) {
            self.linearized.clear(op);
            return Enter::Pruned;
        }
        let dominated = self.dominated(op, state, next);
        // A dominated configuration failed too: cache it, to find more dominations.
        self.cache.insert(key);
        self.explored += 1;
        if self.explored > self.max_states {
            return Enter::GaveUp;
        }
        if dominated {
            self.linearized.clear(op);
            return Enter::Pruned;
        }
        Enter::New
    }

    /// Whether the new configuration (`linearized`, `next`) is dominated by a failed one:
    /// the same minus a linearized MaybeWrite `u`, with the same register value. From there
    /// `u` could still become a no-op, so anything the new configuration can do, that one
    /// could have done; and a cached configuration that is not the parent (the only
    /// ancestor with one operation fewer) has been fully explored, so it failed.
    fn dominated(&mut self, op: usize, state: usize, next: usize) -> bool {
        let first = self.list.first();
        for i in 0..self.maybe.len() {
            let u = self.maybe[i];
            let is_parent = u == op && next == state;
            // Only MaybeWrites whose return is still ahead can be pending in a cached
            // configuration with these operations linearized (a cheap filter).
            if is_parent || !self.linearized.get(u) || self.list.ret_of[u] <= first {
                continue;
            }
            self.linearized.clear(u);
            let hit = self.cache.contains(&self.linearized.key(next));
            self.linearized.set(u);
            if hit {
                return true;
            }
        }
        false
    }
}

/// Runs the WGL search over `entries` starting from register state `initial`.
///
/// Besides the plain algorithm, a MaybeWrite (an Unknown write that may be a no-op) is
/// only tried as a write at its call; its no-op is forced when its return is reached (a
/// no-op can always be postponed to then), and configurations dominated by failed ones are
/// pruned. Without this, each pending Unknown delete would double the state space.
fn search(entries: &[Entry], initial: usize, max_states: u64) -> SearchResult {
    const SHOWN_STATES: usize = 6;
    let maybe: Vec<usize> = (0..entries.len())
        .filter(|&i| matches!(entries[i].action, Action::MaybeWrite(_)))
        .collect();
    let has_maybe = !maybe.is_empty();
    // Twins are interchangeable once both are invoked: only let them take effect in order.
    let mut twin = vec![None; entries.len()];
    let mut last_of: HashMap<(Action, u64), usize> = HashMap::new();
    for &u in &maybe {
        twin[u] = last_of.insert((entries[u].action, entries[u].complete), u);
    }
    let mut s = Search {
        list: EventList::new(entries),
        linearized: Bitset::new(entries.len()),
        cache: HashSet::default(),
        maybe,
        twin,
        explored: 0,
        max_states,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut state = initial;
    // The furthest return event where the search got stuck, and the states seen there.
    let mut frontier = HEAD;
    let mut frontier_states: Vec<usize> = Vec::new();
    let mut more = false;

    // The scan cursor: a node, the phase, and (at a return) whether its no-op was tried.
    let mut node = s.list.first();
    let mut phase = Phase::Regular;
    let mut noop_tried = false;
    loop {
        if s.list.first() == NIL {
            return SearchResult::Linearizable { states: s.explored };
        }
        if node != NIL && s.list.is_call[node] {
            // A call: try to linearize the operation now.
            let op = s.list.op[node];
            let action = entries[op].action;
            let in_phase = matches!(action, Action::MaybeWrite(_)) == (phase == Phase::Maybe)
                && s.twin[op].is_none_or(|t| s.linearized.get(t));
            if let Some(next) = action.step(state).filter(|_| in_phase) {
                match s.enter(op, state, next) {
                    Enter::New => {
                        stack.push(Frame {
                            node,
                            state,
                            phase: Some(phase),
                        });
                        state = next;
                        s.list.lift(node);
                        (node, phase, noop_tried) = (s.list.first(), Phase::Regular, false);
                        continue;
                    }
                    Enter::GaveUp => return SearchResult::GaveUp { states: s.explored },
                    Enter::Pruned => {}
                }
            }
            (node, noop_tried) = (s.list.next[node], false);
            continue;
        }
        // A return (NIL cannot happen: a call's return always follows it). Its operation
        // had to take effect already.
        if node != NIL {
            if phase == Phase::Regular && has_maybe {
                (node, phase, noop_tried) = (s.list.first(), Phase::Maybe, false);
                continue;
            }
            let op = s.list.op[node];
            if matches!(entries[op].action, Action::MaybeWrite(_)) && !noop_tried {
                // A pending MaybeWrite becomes a no-op at the last moment.
                let call = s.list.call_of[op];
                match s.enter(op, state, state) {
                    Enter::New => {
                        stack.push(Frame {
                            node: call,
                            state,
                            phase: None,
                        });
                        s.list.lift(call);
                        (node, phase, noop_tried) = (s.list.first(), Phase::Regular, false);
                        continue;
                    }
                    Enter::GaveUp => return SearchResult::GaveUp { states: s.explored },
                    Enter::Pruned => {}
                }
            }
            // A dead end: remember the furthest one for the message.
            if node > frontier {
                frontier = node;
                frontier_states.clear();
                more = false;
            }
            if node == frontier && !frontier_states.contains(&state) {
                if frontier_states.len() < SHOWN_STATES {
                    frontier_states.push(state);
                } else {
                    more = true;
                }
            }
        }
        // Backtrack: undo the last linearization and resume the scan after it.
        let Some(frame) = stack.pop() else {
            let entry = match frontier {
                HEAD => NIL, // cannot happen: a non-empty list always has a return
                node => s.list.op[node],
            };
            return SearchResult::Stuck {
                entry,
                states: frontier_states,
                more,
            };
        };
        s.list.unlift(frame.node);
        let op = s.list.op[frame.node];
        s.linearized.clear(op);
        state = frame.state;
        (node, phase, noop_tried) = match frame.phase {
            Some(p) => (s.list.next[frame.node], p, false),
            None => (s.list.ret_of[op], Phase::Maybe, true),
        };
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        client: usize,
        key: &str,
        kind: OpKind,
        invoke: u64,
        complete: u64,
        outcome: Outcome,
    ) -> Op {
        Op {
            client,
            key: key.to_string(),
            kind,
            invoke,
            complete,
            outcome,
        }
    }

    fn put(client: usize, key: &str, v: &str, invoke: u64, complete: u64) -> Op {
        op(
            client,
            key,
            OpKind::Write(Some(v.to_string())),
            invoke,
            complete,
            Outcome::Ok(None),
        )
    }

    fn del(client: usize, key: &str, invoke: u64, complete: u64) -> Op {
        op(
            client,
            key,
            OpKind::Write(None),
            invoke,
            complete,
            Outcome::Ok(None),
        )
    }

    fn read(client: usize, key: &str, seen: Option<&str>, invoke: u64, complete: u64) -> Op {
        let seen = Outcome::Ok(seen.map(str::to_string));
        op(client, key, OpKind::Read, invoke, complete, seen)
    }

    /// An Unknown put (its `complete` is ignored; set it to something misleading).
    fn unknown_put(client: usize, key: &str, v: &str, invoke: u64) -> Op {
        op(
            client,
            key,
            OpKind::Write(Some(v.to_string())),
            invoke,
            0,
            Outcome::Unknown,
        )
    }

    fn unknown_del(client: usize, key: &str, invoke: u64) -> Op {
        op(
            client,
            key,
            OpKind::Write(None),
            invoke,
            0,
            Outcome::Unknown,
        )
    }

    #[track_caller]
    fn ok_with(history: &[Op], initial: Option<&str>) -> CheckSummary {
        match check(history, initial) {
            Ok(summary) => summary,
            Err(v) => panic!("expected linearizable, got {v:?}"),
        }
    }

    #[track_caller]
    fn ok(history: &[Op]) -> CheckSummary {
        ok_with(history, None)
    }

    #[track_caller]
    fn bad_with(history: &[Op], initial: Option<&str>) -> Violation {
        match check(history, initial) {
            Ok(summary) => panic!("expected a violation, got {summary:?}"),
            Err(v) => {
                assert!(!v.message.contains('\n'), "message is not one line: {v:?}");
                assert!(v.message.contains(&format!("key {:?}", v.key)), "{v:?}");
                v
            }
        }
    }

    #[track_caller]
    fn bad(history: &[Op]) -> Violation {
        bad_with(history, None)
    }

    #[test]
    fn sequential_valid_history_is_ok() {
        let h = vec![
            read(0, "x", None, 0, 5),
            put(0, "x", "1", 10, 20),
            read(1, "x", Some("1"), 30, 40),
            put(2, "x", "2", 50, 60),
            read(0, "x", Some("2"), 70, 80),
            del(1, "x", 90, 100),
            read(2, "x", None, 110, 120),
        ];
        let s = ok(&h);
        assert_eq!((s.keys, s.ops, s.unknown_writes), (1, 7, 0));
        assert!(s.states_explored >= 7, "{s:?}");
        // Input order does not matter.
        let mut reversed = h.clone();
        reversed.reverse();
        ok(&reversed);
    }

    #[test]
    fn stale_read_after_completed_write_is_violation() {
        let h = vec![
            put(0, "x", "1", 0, 10),
            put(1, "x", "2", 20, 30),
            read(2, "x", Some("1"), 40, 50),
        ];
        let v = bad(&h);
        assert_eq!(v.key, "x");
        assert_eq!(v.ops, 3);
        assert!(v.message.contains("history[2]"), "{v:?}");
        assert!(v.message.contains("[\"2\"]"), "{v:?}");
        // Reading the initial value after a completed write is stale too.
        let v = bad(&[put(0, "x", "1", 0, 10), read(1, "x", None, 11, 12)]);
        assert_eq!(v.ops, 2);
    }

    #[test]
    fn concurrent_write_and_read_may_see_either_value() {
        for seen in [Some("1"), Some("2")] {
            ok(&[
                put(0, "x", "1", 0, 10),
                put(1, "x", "2", 20, 50),
                read(2, "x", seen, 30, 40),
            ]);
        }
        // But not the value from before the completed write.
        bad(&[
            put(0, "x", "1", 0, 10),
            put(1, "x", "2", 20, 50),
            read(2, "x", None, 30, 40),
        ]);
        // A read may see a write that overlaps it even if it started earlier.
        ok(&[read(0, "x", Some("1"), 0, 100), put(1, "x", "1", 50, 60)]);
        ok(&[read(0, "x", None, 0, 100), put(1, "x", "1", 50, 60)]);
        // Touching intervals count as concurrent (closed intervals).
        ok(&[put(0, "x", "1", 0, 10), read(1, "x", None, 10, 20)]);
    }

    #[test]
    fn readers_disagreeing_on_the_order_of_concurrent_writes_is_violation() {
        // w1 and w2 are concurrent; reader A sees 2 then 1 (so w2 before w1), reader B sees
        // 1 then 2 (so w1 before w2). Each view alone is fine; together no order works.
        let writes = vec![put(0, "x", "1", 0, 100), put(1, "x", "2", 0, 100)];
        let a = vec![
            read(2, "x", Some("2"), 10, 20),
            read(2, "x", Some("1"), 30, 40),
        ];
        let b = vec![
            read(3, "x", Some("1"), 10, 20),
            read(3, "x", Some("2"), 30, 40),
        ];
        ok(&[writes.clone(), a.clone()].concat());
        ok(&[writes.clone(), b.clone()].concat());
        let v = bad(&[writes, a, b].concat());
        assert_eq!(v.key, "x");
        // Both second reads complete at 40, so the whole history is the failing prefix.
        assert_eq!(v.ops, 6);
    }

    #[test]
    fn read_of_never_written_value_is_violation() {
        let v = bad(&[put(0, "x", "1", 0, 10), read(1, "x", Some("zzz"), 20, 30)]);
        assert!(v.message.contains("\"zzz\" was never written"), "{v:?}");
        // Initial value is a legal read, even if never written.
        ok_with(&[read(0, "x", Some("init"), 0, 10)], Some("init"));
        let v = bad_with(&[read(0, "x", None, 0, 10)], Some("init"));
        assert!(v.message.contains("<absent> was never written"), "{v:?}");
        let v = bad_with(
            &[put(0, "x", "a", 0, 10), read(0, "x", Some("b"), 20, 30)],
            Some("b"),
        );
        assert!(v.message.contains("one of [\"a\"]"), "{v:?}");
    }

    #[test]
    fn unknown_write_may_or_may_not_have_happened() {
        let w = unknown_put(0, "x", "u", 10);
        // Never took effect.
        let s = ok(&[
            w.clone(),
            read(1, "x", None, 20, 30),
            read(1, "x", None, 1_000, 1_010),
        ]);
        assert_eq!(s.unknown_writes, 1);
        // Took effect immediately, or much later than its (ignored) completion.
        ok(&[w.clone(), read(1, "x", Some("u"), 20, 30)]);
        ok(&[
            w.clone(),
            read(1, "x", None, 20, 30),
            read(1, "x", Some("u"), 1_000, 1_010),
        ]);
        // But once seen it stays (nothing else writes): seen then gone is a violation.
        bad(&[
            w.clone(),
            read(1, "x", Some("u"), 20, 30),
            read(1, "x", None, 40, 50),
        ]);
        // With a later completed write, either outcome of the unknown write is fine, but
        // after the completed write is seen the unknown one can still land on top of it.
        let later = put(2, "x", "p", 100, 110);
        ok(&[w.clone(), later.clone(), read(1, "x", Some("p"), 120, 130)]);
        ok(&[w.clone(), later.clone(), read(1, "x", Some("u"), 120, 130)]);
        ok(&[
            w.clone(),
            later.clone(),
            read(1, "x", Some("p"), 120, 130),
            read(1, "x", Some("u"), 140, 150),
        ]);
        // ... but it cannot take effect twice.
        bad(&[
            w.clone(),
            later.clone(),
            read(1, "x", Some("u"), 120, 130),
            read(1, "x", Some("p"), 140, 150),
            read(1, "x", Some("u"), 160, 170),
        ]);
        // Two unknown writes of the same value: either may be the one seen, and after a
        // completed write one of them may still land.
        ok(&[
            unknown_put(0, "x", "u", 10),
            unknown_put(3, "x", "u", 15),
            read(1, "x", Some("u"), 20, 30),
            put(2, "x", "p", 40, 50),
            read(1, "x", Some("u"), 60, 70),
        ]);
        bad(&[
            unknown_put(0, "x", "u", 10),
            unknown_put(3, "x", "u", 15),
            read(1, "x", Some("u"), 20, 30),
            put(2, "x", "p", 40, 50),
            read(1, "x", Some("u"), 60, 70),
            put(2, "x", "q", 80, 90),
            read(1, "x", Some("u"), 100, 110),
            put(2, "x", "r", 120, 130),
            read(1, "x", Some("u"), 140, 150),
        ]);
    }

    #[test]
    fn unknown_write_seen_by_read_that_started_before_its_invoke_is_violation() {
        // The read completed before the write was even invoked.
        let v = bad(&[read(0, "x", Some("u"), 0, 10), unknown_put(1, "x", "u", 20)]);
        assert!(
            v.message.contains("invoked after this read completed"),
            "{v:?}"
        );
        // A completed write likewise.
        bad(&[read(0, "x", Some("u"), 0, 10), put(1, "x", "u", 20, 30)]);
        // But a read that started earlier and overlaps the write's invoke may see it.
        ok(&[read(0, "x", Some("u"), 0, 30), unknown_put(1, "x", "u", 20)]);
    }

    #[test]
    fn unknown_reads_are_dropped() {
        let ghost = op(1, "x", OpKind::Read, 20, 30, Outcome::Unknown);
        let s = ok(&[put(0, "x", "1", 0, 10), ghost.clone()]);
        assert_eq!(s.ops, 1);
        // An Unknown read alone on a key still counts the key, with nothing to check.
        let s = ok(&[op(1, "y", OpKind::Read, 30, 20, Outcome::Unknown)]);
        assert_eq!((s.keys, s.ops), (1, 0));
    }

    #[test]
    fn delete_semantics() {
        let init = Some("init");
        ok_with(
            &[
                read(0, "x", Some("init"), 0, 5),
                del(1, "x", 10, 20),
                read(0, "x", None, 30, 40),
                put(1, "x", "a", 50, 60),
                read(0, "x", Some("a"), 70, 80),
                del(1, "x", 90, 100),
                read(0, "x", None, 110, 120),
            ],
            init,
        );
        bad_with(
            &[del(1, "x", 10, 20), read(0, "x", Some("init"), 30, 40)],
            init,
        );
        bad(&[
            put(0, "x", "a", 0, 10),
            del(1, "x", 20, 30),
            read(2, "x", Some("a"), 40, 50),
        ]);
        // An unknown delete: both ways are fine...
        ok_with(
            &[unknown_del(1, "x", 10), read(0, "x", Some("init"), 20, 30)],
            init,
        );
        ok_with(&[unknown_del(1, "x", 10), read(0, "x", None, 20, 30)], init);
        ok_with(
            &[
                unknown_del(1, "x", 10),
                read(0, "x", Some("init"), 20, 30),
                read(0, "x", None, 40, 50),
            ],
            init,
        );
        // ... but it happens at most once.
        bad_with(
            &[
                unknown_del(1, "x", 10),
                read(0, "x", None, 20, 30),
                read(0, "x", Some("init"), 40, 50),
            ],
            init,
        );
        // An unknown delete with the initial value absent may still be seen later.
        ok(&[
            put(0, "x", "a", 0, 10),
            unknown_del(1, "x", 20),
            read(0, "x", Some("a"), 30, 40),
            read(0, "x", None, 50, 60),
        ]);
    }

    #[test]
    fn keys_are_independent_and_the_violation_names_its_key() {
        // As one register this would be non-linearizable; as two it is fine.
        let s = ok(&[
            put(0, "a", "1", 0, 10),
            put(1, "b", "2", 20, 30),
            read(2, "a", Some("1"), 40, 50),
            read(2, "b", Some("2"), 60, 70),
        ]);
        assert_eq!((s.keys, s.ops), (2, 4));
        let h = vec![
            put(0, "a", "1", 0, 10),
            put(0, "b", "1", 0, 10),
            put(1, "b", "2", 20, 30),
            read(2, "a", Some("1"), 40, 50),
            read(2, "b", Some("1"), 40, 50),
            read(2, "c", None, 40, 50),
        ];
        let v = bad(&h);
        assert_eq!(v.key, "b");
        assert_eq!(v.ops, 3);
        assert!(v.message.starts_with("key \"b\": "), "{v:?}");
        assert!(v.message.contains("history[4]"), "{v:?}");
    }

    #[test]
    fn malformed_and_empty_input_do_not_panic() {
        let v = bad(&[put(0, "x", "1", 0, 10), read(1, "x", Some("1"), 30, 20)]);
        assert!(v.message.contains("malformed"), "{v:?}");
        assert_eq!(ok(&[]), CheckSummary::default());
        // Extreme times.
        ok(&[
            put(0, "x", "1", 0, u64::MAX),
            read(1, "x", Some("1"), u64::MAX, u64::MAX),
        ]);
        ok(&[
            unknown_put(0, "x", "1", u64::MAX),
            read(1, "x", Some("1"), 0, u64::MAX),
        ]);
    }

    #[test]
    fn giving_up_is_a_violation_not_success() {
        let h = vec![
            put(0, "x", "1", 0, 10),
            read(1, "x", Some("1"), 20, 30),
            put(0, "x", "2", 40, 50),
            read(1, "x", Some("2"), 60, 70),
        ];
        match check_with_limit(&h, None, 2) {
            Ok(s) => panic!("should give up, got {s:?}"),
            Err(v) => {
                assert!(
                    v.message.contains("gave up") && v.message.contains("NOT"),
                    "{v:?}"
                );
                assert_eq!(v.ops, 4);
            }
        }
        assert!(check_with_limit(&h, None, 4).is_ok());
    }

    #[test]
    fn more_than_64_ops_on_a_key() {
        // Exercises multi-word bitsets: 300 sequential ops, then a stale read at the end.
        let mut h = Vec::new();
        for i in 0..150u64 {
            h.push(put(0, "x", &i.to_string(), 100 * i, 100 * i + 10));
            h.push(read(
                1,
                "x",
                Some(&i.to_string()),
                100 * i + 20,
                100 * i + 30,
            ));
        }
        ok(&h);
        h.push(read(1, "x", Some("100"), 1_000_000, 1_000_010));
        let v = bad(&h);
        assert_eq!(v.ops, 301);
        assert!(v.message.contains("[\"149\"]"), "{v:?}");
    }

    // ------------------------------------------------------------------ randomized histories

    /// xorshift64 with a seed scrambler.
    struct XorShift(u64);

    impl XorShift {
        fn new(seed: u64) -> XorShift {
            XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    struct Sim {
        clients: usize,
        keys: u64,
        ops_per_client: usize,
        unknown_write_pct: u64,
        unknown_read_pct: u64,
    }

    /// Simulates clients of a real linearizable store: each op gets a random interval and a
    /// random linearization point inside it; a real register applied in linearization-point
    /// order gives the reads their values. Unknown writes either never take effect or take
    /// effect at some point after their invoke, possibly well after the client gave up.
    /// Every written value is unique.
    fn simulate(seed: u64, sim: &Sim) -> Vec<Op> {
        let mut rng = XorShift::new(seed);
        let mut ops = Vec::new();
        let mut points: Vec<Option<u64>> = Vec::new();
        for client in 0..sim.clients {
            let mut t = rng.below(50);
            for j in 0..sim.ops_per_client {
                let invoke = t + rng.below(20);
                let dur = 1 + rng.below(100);
                let complete = invoke + dur;
                let key = format!("k{}", rng.below(sim.keys));
                let roll = rng.below(100);
                let kind = if roll < 50 {
                    OpKind::Read
                } else if roll < 88 {
                    OpKind::Write(Some(format!("c{client}-{j}")))
                } else {
                    OpKind::Write(None)
                };
                let at = invoke + rng.below(dur + 1);
                let (outcome, point) = match kind {
                    OpKind::Read if rng.chance(sim.unknown_read_pct) => (Outcome::Unknown, None),
                    OpKind::Write(_) if rng.chance(sim.unknown_write_pct) => {
                        let late = invoke + rng.below(4 * dur + 1);
                        (
                            Outcome::Unknown,
                            if rng.chance(50) { Some(late) } else { None },
                        )
                    }
                    _ => (Outcome::Ok(None), Some(at)),
                };
                ops.push(Op {
                    client,
                    key,
                    kind,
                    invoke,
                    complete,
                    outcome,
                });
                points.push(point);
                t = complete + 1;
            }
        }
        let mut order: Vec<usize> = (0..ops.len()).filter(|&i| points[i].is_some()).collect();
        order.sort_by_key(|&i| (points[i], i));
        let mut registers: HashMap<String, Option<String>> = HashMap::new();
        for i in order {
            let op = &mut ops[i];
            match &op.kind {
                OpKind::Write(v) => {
                    registers.insert(op.key.clone(), v.clone());
                }
                OpKind::Read => {
                    op.outcome = Outcome::Ok(registers.get(&op.key).cloned().flatten());
                }
            }
        }
        // Shuffle: the checker must not depend on input order.
        for i in (1..ops.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            ops.swap(i, j);
        }
        ops
    }

    fn is_done_read(op: &Op) -> bool {
        op.kind == OpKind::Read && matches!(op.outcome, Outcome::Ok(_))
    }

    fn is_done_write(op: &Op) -> bool {
        matches!(op.kind, OpKind::Write(_)) && op.outcome == Outcome::Ok(None)
    }

    fn put_value(op: &Op) -> Option<String> {
        match (&op.kind, &op.outcome) {
            (OpKind::Write(Some(v)), Outcome::Ok(_)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Changes one read of a history so it is provably non-linearizable; returns the new
    /// history and the key of the changed read.
    type Mutation = fn(&[Op], &mut XorShift) -> Option<(Vec<Op>, String)>;

    /// A completed read returns a value nobody wrote.
    fn mutate_never_written(h: &[Op], rng: &mut XorShift) -> Option<(Vec<Op>, String)> {
        let reads: Vec<usize> = (0..h.len()).filter(|&i| is_done_read(&h[i])).collect();
        let r = *reads.get(rng.below(reads.len() as u64) as usize)?;
        let mut h = h.to_vec();
        h[r].outcome = Outcome::Ok(Some("never-written".to_string()));
        let key = h[r].key.clone();
        Some((h, key))
    }

    /// A completed read returns the (unique) value of a completed put invoked after the read
    /// completed: it saw the future.
    fn mutate_future_read(h: &[Op], rng: &mut XorShift) -> Option<(Vec<Op>, String)> {
        let n = h.len();
        let start = rng.below(n as u64) as usize;
        for k in 0..n {
            let r = (start + k) % n;
            if !is_done_read(&h[r]) {
                continue;
            }
            let w = (0..n).find(|&w| {
                h[w].key == h[r].key && put_value(&h[w]).is_some() && h[w].invoke > h[r].complete
            });
            if let Some(w) = w {
                let mut m = h.to_vec();
                m[r].outcome = Outcome::Ok(put_value(&h[w]));
                return Some((m, h[r].key.clone()));
            }
        }
        None
    }

    /// A completed read returns the (unique) value of a completed put w1 although another
    /// completed write w2 lies strictly between w1 and the read in real time.
    fn mutate_stale_read(h: &[Op], rng: &mut XorShift) -> Option<(Vec<Op>, String)> {
        let n = h.len();
        let start = rng.below(n as u64) as usize;
        for k in 0..n {
            let r = (start + k) % n;
            if !is_done_read(&h[r]) {
                continue;
            }
            let same_key = |i: usize| h[i].key == h[r].key;
            for w2 in (0..n).filter(|&i| same_key(i) && is_done_write(&h[i])) {
                if h[w2].complete >= h[r].invoke {
                    continue;
                }
                let w1 = (0..n).find(|&i| {
                    same_key(i) && put_value(&h[i]).is_some() && h[i].complete < h[w2].invoke
                });
                if let Some(w1) = w1 {
                    let mut m = h.to_vec();
                    m[r].outcome = Outcome::Ok(put_value(&h[w1]));
                    return Some((m, h[r].key.clone()));
                }
            }
        }
        None
    }

    #[test]
    fn random_linearizable_histories_pass_and_impossible_reads_are_caught() {
        let sim = Sim {
            clients: 5,
            keys: 3,
            ops_per_client: 60,
            unknown_write_pct: 15,
            unknown_read_pct: 5,
        };
        let mutations: [(&str, Mutation); 3] = [
            ("never-written", mutate_never_written),
            ("future", mutate_future_read),
            ("stale", mutate_stale_read),
        ];
        let mut caught = [0usize; 3];
        let mut unknown_writes = 0;
        const SEEDS: u64 = 60;
        for seed in 0..SEEDS {
            let h = simulate(seed, &sim);
            let s = match check(&h, None) {
                Ok(s) => s,
                Err(v) => panic!("seed {seed}: valid history rejected: {v:?}"),
            };
            unknown_writes += s.unknown_writes;
            let mut rng = XorShift::new(seed ^ 0xdead_beef);
            for (m, (name, mutate)) in mutations.iter().enumerate() {
                let Some((mutated, key)) = mutate(&h, &mut rng) else {
                    continue;
                };
                match check(&mutated, None) {
                    Ok(s) => panic!("seed {seed}: {name} mutation not caught: {s:?}"),
                    Err(v) => {
                        assert_eq!(v.key, key, "seed {seed}: {name}: {v:?}");
                        assert!(!v.message.contains("gave up"), "seed {seed}: {v:?}");
                        if *name == "never-written" {
                            assert!(v.message.contains("never written"), "{v:?}");
                        }
                        caught[m] += 1;
                    }
                }
            }
        }
        assert!(
            unknown_writes > 100,
            "too few unknown writes exercised: {unknown_writes}"
        );
        for (m, (name, _)) in mutations.iter().enumerate() {
            assert!(
                caught[m] as u64 >= SEEDS * 3 / 4,
                "{name}: only {} caught",
                caught[m]
            );
        }
    }

    /// A reference checker: tries every order (memoizing failed (done set, value) pairs),
    /// with none of the search's reductions. For histories of at most 20 ops.
    fn brute_force(h: &[Op], initial: Option<&str>) -> bool {
        fn go(
            ops: &[&Op],
            required: u32,
            done: u32,
            value: Option<String>,
            failed: &mut HashSet<(u32, Option<String>)>,
        ) -> bool {
            if done & required == required {
                return true; // Unknown writes left over never took effect.
            }
            if failed.contains(&(done, value.clone())) {
                return false;
            }
            for x in (0..ops.len()).filter(|&x| done & (1 << x) == 0) {
                // Every completed op that returned before x was invoked must precede it.
                let blocked = (0..ops.len()).any(|y| {
                    done & (1 << y) == 0
                        && required & (1 << y) != 0
                        && ops[y].complete < ops[x].invoke
                });
                if blocked {
                    continue;
                }
                let next = match (&ops[x].kind, &ops[x].outcome) {
                    (OpKind::Write(v), _) => v.clone(),
                    (OpKind::Read, Outcome::Ok(seen)) if *seen == value => value.clone(),
                    _ => continue,
                };
                if go(ops, required, done | 1 << x, next, failed) {
                    return true;
                }
            }
            failed.insert((done, value));
            false
        }
        let ops: Vec<&Op> = h
            .iter()
            .filter(|o| !(o.kind == OpKind::Read && o.outcome == Outcome::Unknown))
            .collect();
        assert!(ops.len() <= 20);
        let required = (0..ops.len())
            .filter(|&i| ops[i].outcome != Outcome::Unknown)
            .fold(0u32, |m, i| m | 1 << i);
        go(
            &ops,
            required,
            0,
            initial.map(str::to_string),
            &mut HashSet::new(),
        )
    }

    /// The history as it stood at time `t`: ops invoked by then; those not yet complete
    /// become Unknown (writes) or are dropped (reads).
    fn prefix(h: &[Op], t: u64) -> Vec<Op> {
        h.iter()
            .filter(|o| o.invoke <= t)
            .filter_map(|o| {
                let pending = o.outcome == Outcome::Unknown || o.complete > t;
                match (&o.kind, pending) {
                    (OpKind::Read, true) => None,
                    (OpKind::Write(_), true) => Some(Op {
                        outcome: Outcome::Unknown,
                        ..o.clone()
                    }),
                    _ => Some(o.clone()),
                }
            })
            .collect()
    }

    /// Small single-key histories with few distinct values (so repeated values, deletes and
    /// Unknown writes that may or may not be the source of a read), many ties and overlaps:
    /// half from a simulated linearizable register, half with one read's value replaced.
    fn small_history(rng: &mut XorShift) -> Vec<Op> {
        const VALUES: [Option<&str>; 4] = [Some("a"), Some("b"), Some("c"), None];
        let n = 2 + rng.below(11) as usize;
        let mut ops = Vec::new();
        let mut points = Vec::new();
        for _ in 0..n {
            let invoke = rng.below(40);
            let dur = rng.below(16);
            let kind = if rng.chance(50) {
                OpKind::Read
            } else {
                OpKind::Write(VALUES[rng.below(4) as usize].map(str::to_string))
            };
            let at = invoke + rng.below(dur + 1);
            let (outcome, point) = match kind {
                OpKind::Read if rng.chance(10) => (Outcome::Unknown, None),
                OpKind::Write(_) if rng.chance(30) => {
                    let late = invoke + rng.below(3 * dur + 3);
                    (
                        Outcome::Unknown,
                        if rng.chance(50) { Some(late) } else { None },
                    )
                }
                _ => (Outcome::Ok(None), Some(at)),
            };
            let client = ops.len();
            ops.push(Op {
                client,
                key: "x".to_string(),
                kind,
                invoke,
                complete: invoke + dur,
                outcome,
            });
            points.push(point);
        }
        let mut order: Vec<usize> = (0..n).filter(|&i| points[i].is_some()).collect();
        order.sort_by_key(|&i| (points[i], rng.next()));
        let mut value: Option<String> = None;
        for i in order {
            match &ops[i].kind {
                OpKind::Write(v) => value = v.clone(),
                OpKind::Read => ops[i].outcome = Outcome::Ok(value.clone()),
            }
        }
        if rng.chance(50) {
            let reads: Vec<usize> = (0..n).filter(|&i| is_done_read(&ops[i])).collect();
            if !reads.is_empty() {
                let r = reads[rng.below(reads.len() as u64) as usize];
                ops[r].outcome = Outcome::Ok(VALUES[rng.below(4) as usize].map(str::to_string));
            }
        }
        ops
    }

    #[test]
    fn agrees_with_brute_force_and_reports_the_smallest_failing_prefix() {
        let mut rng = XorShift::new(12345);
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..20_000 {
            // The initial value is the empty register, or "a" (also written by the ops).
            let h = small_history(&mut rng);
            let initial = if case % 3 == 0 { Some("a") } else { None };
            let expected = brute_force(&h, initial);
            match check(&h, initial) {
                Ok(_) if expected => valid += 1,
                Ok(s) => panic!("case {case}: accepted a non-linearizable history {h:?}: {s:?}"),
                Err(v) if expected => panic!("case {case}: rejected a linearizable {h:?}: {v:?}"),
                Err(v) => {
                    invalid += 1;
                    // The reported prefix fails, and the one just before it does not.
                    let t: u64 = v
                        .message
                        .split("all invoked by ")
                        .nth(1)
                        .and_then(|rest| rest.split(' ').next())
                        .and_then(|t| t.parse().ok())
                        .unwrap_or_else(|| panic!("no prefix time in {v:?}"));
                    let failing = prefix(&h, t);
                    let invoked = h.iter().filter(|o| {
                        o.invoke <= t && {
                            !(o.kind == OpKind::Read && o.outcome == Outcome::Unknown)
                        }
                    });
                    assert_eq!(v.ops, invoked.count(), "case {case}: {v:?}");
                    assert!(!brute_force(&failing, initial), "case {case}: {h:?} {v:?}");
                    if t > 0 {
                        let before = prefix(&h, t - 1);
                        assert!(brute_force(&before, initial), "case {case}: {h:?} {v:?}");
                    }
                }
            }
        }
        assert!(
            valid > 5_000 && invalid > 5_000,
            "valid {valid}, invalid {invalid}"
        );
    }

    #[test]
    fn a_large_history_is_checked_with_a_bounded_search() {
        let sim = Sim {
            clients: 5,
            keys: 1,
            ops_per_client: 500,
            unknown_write_pct: 5,
            unknown_read_pct: 2,
        };
        let h = simulate(7, &sim);
        let s = match check(&h, None) {
            Ok(s) => s,
            Err(v) => panic!("valid history rejected: {v:?}"),
        };
        assert!(s.ops >= 2_400, "{s:?}");
        // The memoized search stays near-linear on such a history (about 5,000 states); an
        // exponential one would explode past this bound.
        assert!(s.states_explored < 200_000, "{s:?}");
        // A violation near the end must also be found, with the search exhausted.
        let mut rng = XorShift::new(99);
        let (mutated, _) = mutate_stale_read(&h, &mut rng).expect("a stale-read candidate");
        let v = check(&mutated, None).expect_err("mutated history accepted");
        assert!(!v.message.contains("gave up"), "{v:?}");
    }
}
