//! A linearizability checker for histories of reads and writes on registers (one per key).
//!
//! Linearizability is compositional, so each key is checked on its own. The search is Wing
//! and Gong's, with Lowe's memoization (as in Knossos and Porcupine): walk the history's call
//! and return events in time order; at a call, try to linearize that operation now (the
//! register model says whether it may take effect in the current state); at a return whose
//! operation is not linearized yet, backtrack. A cache of (operations linearized, state)
//! prunes configurations already explored.
//!
//! A write whose outcome is unknown (a timeout, a dropped connection) returns at +infinity: it
//! may take effect at any point after its call, or never. A read whose outcome is unknown is
//! dropped: it observed nothing.
//!
//! Open-ended unknown writes make the search explode, so when an unknown write's value is
//! written by no other operation of its key (clients write unique values), it is narrowed
//! first, without changing the verdict: if no read saw its value, it is dropped (a witness
//! order where it took effect stays legal without it, as no read sits between it and the next
//! write; and "never took effect" was allowed anyway); otherwise it must have taken effect
//! before the first read that saw it returned, which becomes its return time.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

/// What an operation did, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `Some(v)`: put `v`; `None`: delete.
    Write(Option<String>),
    /// A read of the key.
    Read,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned; for a read, the value it saw (`None`: absent).
    Ok(Option<String>),
    /// It failed or timed out: unknown whether a write took effect.
    Unknown,
}

/// One operation of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Which client ran it (for messages).
    pub client: usize,
    /// The key.
    pub key: String,
    /// Read or write.
    pub kind: OpKind,
    /// When it was called (ns since the start).
    pub invoke: u64,
    /// When it returned (ns since the start; ignored for an unknown outcome).
    pub complete: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A history that is not linearizable, or that the checker gave up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key whose history fails.
    pub key: String,
    /// Operations on that key.
    pub ops: usize,
    /// One line: what failed.
    pub message: String,
}

/// What a successful check went through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckSummary {
    /// Keys checked.
    pub keys: usize,
    /// Operations checked (unknown reads dropped).
    pub ops: usize,
    /// Writes whose outcome was unknown.
    pub unknown_writes: usize,
    /// Search states explored, all keys together.
    pub states_explored: u64,
}

/// States explored for one key before the checker gives up (and says so).
const MAX_STATES: u64 = 50_000_000;

/// Checks `history` with every register starting at `initial`.
pub fn check(history: &[Op], initial: Option<&str>) -> Result<CheckSummary, Violation> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if op.kind == OpKind::Read && op.outcome == Outcome::Unknown {
            continue;
        }
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut summary = CheckSummary {
        keys: by_key.len(),
        ..CheckSummary::default()
    };
    for (key, ops) in by_key {
        summary.ops += ops.len();
        summary.unknown_writes += ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
        summary.states_explored += check_key(key, &ops, initial)?;
    }
    Ok(summary)
}

/// One operation of one key, with values interned (0 = absent).
#[derive(Clone, Copy, Debug)]
struct KeyOp {
    /// Its index in the key's operations (for messages).
    source: usize,
    write: Option<u32>,
    read: Option<u32>,
    invoke: u64,
    /// `u64::MAX` for an unknown write.
    complete: u64,
}

/// A call or return event in the list the search walks.
#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
}

fn check_key(key: &str, ops: &[&Op], initial: Option<&str>) -> Result<u64, Violation> {
    let violation = |message: String| Violation {
        key: key.to_string(),
        ops: ops.len(),
        message,
    };
    let mut ids: HashMap<Option<String>, u32> = HashMap::new();
    let mut intern = |v: Option<&str>| -> u32 {
        let next = ids.len() as u32;
        *ids.entry(v.map(str::to_string)).or_insert(next)
    };
    let start_state = intern(initial);
    // Narrow unknown writes of unique values (see the module docs).
    let mut writers: HashMap<&Option<String>, usize> = HashMap::new();
    for op in ops {
        if let OpKind::Write(v) = &op.kind {
            *writers.entry(v).or_default() += 1;
        }
    }
    let first_seen = |v: &Option<String>| {
        ops.iter()
            .filter(|o| o.kind == OpKind::Read && o.outcome == Outcome::Ok(v.clone()))
            .map(|o| o.complete)
            .min()
    };
    let mut key_ops = Vec::with_capacity(ops.len());
    for (source, op) in ops.iter().enumerate() {
        let mut unknown = op.outcome == Outcome::Unknown;
        let mut complete = op.complete;
        if let (OpKind::Write(v), true) = (&op.kind, unknown) {
            if writers[v] == 1 {
                match first_seen(v) {
                    None => continue,
                    Some(seen) => {
                        unknown = false;
                        complete = seen.max(op.invoke);
                    }
                }
            }
        }
        if !unknown && complete < op.invoke {
            return Err(violation(format!(
                "client {} op returned before it was called ({} < {})",
                op.client, op.complete, op.invoke
            )));
        }
        key_ops.push(match (&op.kind, &op.outcome) {
            (OpKind::Write(v), _) => KeyOp {
                source,
                write: Some(intern(v.as_deref())),
                read: None,
                invoke: op.invoke,
                complete: if unknown { u64::MAX } else { complete },
            },
            (OpKind::Read, Outcome::Ok(seen)) => KeyOp {
                source,
                write: None,
                read: Some(intern(seen.as_deref())),
                invoke: op.invoke,
                complete: op.complete,
            },
            (OpKind::Read, Outcome::Unknown) => continue,
        });
    }
    let n = key_ops.len();
    // Events in time order; at equal times calls first (the more permissive reading).
    let mut events: Vec<Event> = (0..n)
        .flat_map(|op| [Event { op, is_call: true }, Event { op, is_call: false }])
        .collect();
    let time = |e: &Event| {
        let o = &key_ops[e.op];
        (if e.is_call { o.invoke } else { o.complete }, !e.is_call)
    };
    events.sort_by_key(time);
    // A doubly linked list over the events; index `len` is the head sentinel.
    let len = events.len();
    let head = len;
    const END: usize = usize::MAX;
    let mut next: Vec<usize> = (0..=len)
        .map(|i| if i + 1 < len { i + 1 } else { END })
        .collect();
    let mut prev: Vec<usize> = (0..=len)
        .map(|i| if i == 0 { head } else { i - 1 })
        .collect();
    next[head] = if len > 0 { 0 } else { END };
    prev[head] = END;
    // Where each op's return event sits.
    let mut return_of = vec![0usize; n];
    for (i, e) in events.iter().enumerate() {
        if !e.is_call {
            return_of[e.op] = i;
        }
    }
    let unlink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[i], next[i]);
        next[p] = q;
        if q != END {
            prev[q] = p;
        }
    };
    let relink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, q) = (prev[i], next[i]);
        next[p] = i;
        if q != END {
            prev[q] = i;
        }
    };

    let words = n.div_ceil(64).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut state = start_state;
    let mut explored = 0u64;
    let mut entry = next[head];
    while next[head] != END {
        explored += 1;
        if explored > MAX_STATES {
            return Err(violation(format!(
                "gave up after {MAX_STATES} search states: neither proved nor refuted"
            )));
        }
        let e = events[entry];
        let op = key_ops[e.op];
        if e.is_call {
            let stepped = match (op.write, op.read) {
                (Some(v), _) => Some(v),
                (None, Some(seen)) if seen == state => Some(state),
                _ => None,
            };
            if let Some(new_state) = stepped {
                let mut lin = linearized.clone();
                lin[e.op / 64] |= 1 << (e.op % 64);
                if cache.insert((lin.clone(), new_state)) {
                    stack.push((entry, state));
                    state = new_state;
                    linearized = lin;
                    // Lift the op: its call and return leave the list.
                    unlink(entry, &mut next, &mut prev);
                    unlink(return_of[e.op], &mut next, &mut prev);
                    entry = next[head];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            if op.complete == u64::MAX {
                // Only unknown writes (returning at +infinity) are left unlinearized: they
                // never took effect.
                return Ok(explored);
            }
            // This op returned without being linearized: undo the last choice.
            let Some((call, prev_state)) = stack.pop() else {
                let o = ops[op.source];
                return Err(violation(format!(
                    "no order of the operations on {key:?} explains them; first stuck at \
                     client {}'s {:?} -> {:?} over [{}, {}] ns",
                    o.client, o.kind, o.outcome, o.invoke, o.complete
                )));
            };
            let call_op = events[call].op;
            state = prev_state;
            linearized[call_op / 64] &= !(1 << (call_op % 64));
            relink(return_of[call_op], &mut next, &mut prev);
            relink(call, &mut next, &mut prev);
            entry = next[call];
        }
    }
    Ok(explored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(client: usize, key: &str, v: &str, invoke: u64, complete: u64) -> Op {
        Op {
            client,
            key: key.into(),
            kind: OpKind::Write(Some(v.into())),
            invoke,
            complete,
            outcome: Outcome::Ok(None),
        }
    }

    fn del(client: usize, key: &str, invoke: u64, complete: u64) -> Op {
        Op {
            kind: OpKind::Write(None),
            ..w(client, key, "", invoke, complete)
        }
    }

    fn unknown_w(client: usize, key: &str, v: &str, invoke: u64) -> Op {
        Op {
            outcome: Outcome::Unknown,
            ..w(client, key, v, invoke, 0)
        }
    }

    fn r(client: usize, key: &str, seen: Option<&str>, invoke: u64, complete: u64) -> Op {
        Op {
            client,
            key: key.into(),
            kind: OpKind::Read,
            invoke,
            complete,
            outcome: Outcome::Ok(seen.map(Into::into)),
        }
    }

    #[test]
    fn a_sequential_history_is_linearizable() {
        let h = [
            r(0, "k", None, 0, 1),
            w(0, "k", "a", 2, 3),
            r(1, "k", Some("a"), 4, 5),
            w(1, "k", "b", 6, 7),
            r(0, "k", Some("b"), 8, 9),
        ];
        let s = check(&h, None).unwrap();
        assert_eq!((s.keys, s.ops, s.unknown_writes), (1, 5, 0));
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let h = [
            w(0, "k", "a", 0, 1),
            w(0, "k", "b", 2, 3),
            r(1, "k", Some("a"), 4, 5),
        ];
        let v = check(&h, None).unwrap_err();
        assert_eq!(v.key, "k");
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_value() {
        for seen in [Some("a"), Some("b")] {
            let h = [
                w(0, "k", "a", 0, 1),
                w(0, "k", "b", 2, 10),
                r(1, "k", seen, 3, 5),
            ];
            check(&h, None).unwrap();
        }
        let h = [
            w(0, "k", "a", 0, 1),
            w(0, "k", "b", 2, 10),
            r(1, "k", Some("c"), 3, 5),
        ];
        assert!(check(&h, None).is_err());
    }

    #[test]
    fn readers_that_disagree_on_the_order_of_concurrent_writes_are_a_violation() {
        // Two concurrent writes; reader 2 sees a then b, reader 3 sees b then a, all reads
        // after both writes started and the second read of each after the first of the other.
        let h = [
            w(0, "k", "a", 0, 100),
            w(1, "k", "b", 0, 100),
            r(2, "k", Some("a"), 10, 20),
            r(3, "k", Some("b"), 10, 20),
            r(2, "k", Some("b"), 30, 40),
            r(3, "k", Some("a"), 30, 40),
        ];
        assert!(check(&h, None).is_err());
        // Either order alone is fine.
        let ok = [
            w(0, "k", "a", 0, 100),
            w(1, "k", "b", 0, 100),
            r(2, "k", Some("a"), 10, 20),
            r(3, "k", Some("a"), 10, 20),
            r(2, "k", Some("b"), 30, 40),
            r(3, "k", Some("b"), 30, 40),
        ];
        check(&ok, None).unwrap();
    }

    #[test]
    fn a_value_never_written_is_a_violation() {
        let h = [w(0, "k", "a", 0, 1), r(1, "k", Some("zzz"), 2, 3)];
        assert!(check(&h, None).is_err());
        assert!(check(&[r(0, "k", Some("x"), 0, 1)], None).is_err());
        check(&[r(0, "k", Some("x"), 0, 1)], Some("x")).unwrap();
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let happened = [
            w(0, "k", "a", 0, 1),
            unknown_w(1, "k", "b", 2),
            r(2, "k", Some("b"), 5, 6),
        ];
        let s = check(&happened, None).unwrap();
        assert_eq!(s.unknown_writes, 1);
        let never = [
            w(0, "k", "a", 0, 1),
            unknown_w(1, "k", "b", 2),
            r(2, "k", Some("a"), 5, 6),
        ];
        check(&never, None).unwrap();
        // ... but not before it was called.
        let early = [
            w(0, "k", "a", 0, 1),
            r(2, "k", Some("b"), 2, 3),
            unknown_w(1, "k", "b", 4),
        ];
        assert!(check(&early, None).is_err());
        // And once seen, it cannot be unseen without another write.
        let flicker = [
            w(0, "k", "a", 0, 1),
            unknown_w(1, "k", "b", 2),
            r(2, "k", Some("b"), 5, 6),
            r(2, "k", Some("a"), 7, 8),
        ];
        assert!(check(&flicker, None).is_err());
    }

    #[test]
    fn unknown_reads_are_dropped_and_deletes_clear_the_register() {
        let mut lost = r(3, "k", Some("nonsense"), 0, 1);
        lost.outcome = Outcome::Unknown;
        let h = [
            w(0, "k", "a", 0, 1),
            del(1, "k", 2, 3),
            r(2, "k", None, 4, 5),
            lost,
        ];
        let s = check(&h, None).unwrap();
        assert_eq!(s.ops, 3);
        let stale = [
            w(0, "k", "a", 0, 1),
            del(1, "k", 2, 3),
            r(2, "k", Some("a"), 4, 5),
        ];
        assert!(check(&stale, None).is_err());
    }

    #[test]
    fn keys_are_independent_and_the_violation_names_its_key() {
        let h = [
            w(0, "a", "1", 0, 1),
            w(0, "b", "1", 0, 1),
            r(1, "a", Some("1"), 2, 3),
            // "a"'s value under "b": fine for a register of "a", wrong for "b" after a delete.
            del(0, "b", 4, 5),
            r(1, "b", Some("1"), 6, 7),
        ];
        let v = check(&h, None).unwrap_err();
        assert_eq!(v.key, "b");
        assert_eq!(v.ops, 3);
    }

    /// Xorshift for reproducible random histories.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A history of `clients` clients each running `per_client` operations on one register,
    /// each taking effect at a random point inside its interval (so linearizable by
    /// construction); some writes end unknown.
    fn random_history(seed: u64, clients: usize, per_client: usize) -> Vec<Op> {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // (effect time, client, op index) chosen first, then applied in effect order.
        struct Plan {
            client: usize,
            invoke: u64,
            effect: u64,
            complete: u64,
            write: Option<String>,
            unknown: bool,
        }
        let mut plans = Vec::new();
        for client in 0..clients {
            let mut t = rng.below(50);
            for i in 0..per_client {
                let invoke = t;
                let effect = invoke + rng.below(40);
                let complete = effect + rng.below(40);
                let write = (rng.below(2) == 0).then(|| format!("c{client}-{i}"));
                let unknown = write.is_some() && rng.below(10) == 0;
                plans.push(Plan {
                    client,
                    invoke,
                    effect,
                    complete,
                    write,
                    unknown,
                });
                t = complete + 1 + rng.below(20);
            }
        }
        plans.sort_by_key(|p| p.effect);
        let mut state: Option<String> = None;
        let mut ops = Vec::new();
        for p in plans {
            // An unknown write takes effect only half of the time.
            let takes_effect = !p.unknown || rng.below(2) == 0;
            match p.write {
                Some(v) => {
                    if takes_effect {
                        state = Some(v.clone());
                    }
                    ops.push(Op {
                        client: p.client,
                        key: "k".into(),
                        kind: OpKind::Write(Some(v)),
                        invoke: p.invoke,
                        complete: p.complete,
                        outcome: if p.unknown {
                            Outcome::Unknown
                        } else {
                            Outcome::Ok(None)
                        },
                    });
                }
                None => ops.push(Op {
                    client: p.client,
                    key: "k".into(),
                    kind: OpKind::Read,
                    invoke: p.invoke,
                    complete: p.complete,
                    outcome: Outcome::Ok(state.clone()),
                }),
            }
        }
        ops
    }

    #[test]
    fn random_linearizable_histories_pass_and_a_corrupted_read_is_caught() {
        for seed in 0..200 {
            let mut h = random_history(seed, 4, 12);
            if let Err(v) = check(&h, None) {
                panic!("seed {seed}: a linearizable history was refused: {v:?}");
            }
            // A read of a value nobody ever wrote is impossible in any order.
            if let Some(read) = h.iter_mut().find(|o| o.kind == OpKind::Read) {
                read.outcome = Outcome::Ok(Some("never-written".into()));
                assert!(
                    check(&h, None).is_err(),
                    "seed {seed}: corrupted read accepted"
                );
            }
        }
    }

    #[test]
    fn a_large_history_is_checked_quickly() {
        let h = random_history(7, 5, 300);
        let s = check(&h, None).unwrap();
        assert_eq!(s.ops, 1_500);
        // The memoized search stays near-linear here; an exponential one would explode.
        assert!(s.states_explored < 200_000, "{s:?}");
    }
}
