package main

// The benchmark driver protocol of docs/bench/protocol.md: `--workload W` and the spec's flags.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger"
)

// threadRand is goroutine g's own source, seeded from --seed and g (the value pool uses g = -1).
func threadRand(seed uint64, g int) *rand.Rand {
	return rand.New(rand.NewSource(int64(splitmix64(seed^uint64(g)<<32) >> 1)))
}

// values hands out V-byte values sliced at random offsets of a 16 MiB pool of random bytes.
type values struct {
	pool []byte
	size int
}

func newValues(seed uint64, size int) values {
	pool := make([]byte, 16<<20)
	threadRand(seed, -1).Read(pool)
	return values{pool: pool, size: size}
}

func (v values) next(r *rand.Rand) []byte {
	off := r.Intn(len(v.pool) - v.size + 1)
	return v.pool[off : off+v.size]
}

// params are the spec's flags.
type params struct {
	workload, dir, dist, txn          string
	records, insertStart, ops, seed   uint64
	valueSize, threads, batch, scanLn int
	secs, writeRate                   float64
}

// usageError ends the process the way the spec asks of a bad invocation: one line, status 2.
func usageError(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "badger-peer: "+format+"\n", a...)
	os.Exit(2)
}

// wantsWorkload says whether the arguments are the protocol's (a --workload flag) rather than
// the old -mode interface.
func wantsWorkload(args []string) bool {
	for _, a := range args {
		name := strings.TrimLeft(a, "-")
		if strings.HasPrefix(a, "-") && (name == "workload" || strings.HasPrefix(name, "workload=")) {
			return true
		}
	}
	return false
}

func parseParams(args []string) params {
	fs := flag.NewFlagSet("badger-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the error is reported below on one line
	var p params
	fs.StringVar(&p.workload, "workload", "", "load | read | scan | scan-short | ycsb-a..ycsb-f | overwrite | read-while-writing")
	fs.StringVar(&p.dir, "dir", "", "database directory")
	fs.Uint64Var(&p.records, "records", 0, "N: records 0..N")
	fs.IntVar(&p.valueSize, "value-size", 0, "V: value bytes")
	fs.IntVar(&p.threads, "threads", 1, "T: goroutines")
	fs.Float64Var(&p.secs, "secs", 10, "S: seconds to run")
	fs.StringVar(&p.dist, "dist", "uniform", "uniform | zipf")
	fs.StringVar(&p.txn, "txn", "view", "read: view | long")
	fs.IntVar(&p.batch, "batch", 1000, "B: records per write batch")
	fs.IntVar(&p.scanLn, "scan-len", 50, "L: entries per short scan")
	fs.Uint64Var(&p.insertStart, "insert-start", 0, "M: first insert index (default N)")
	fs.Uint64Var(&p.ops, "ops", 0, "K: overwrites (default N)")
	fs.Uint64Var(&p.seed, "seed", 1, "X: random seed")
	fs.Float64Var(&p.writeRate, "write-rate", 0, "R: read-while-writing's records/s (0: as fast as it can)")
	if err := fs.Parse(args); err != nil {
		usageError("%v", err)
	}
	if fs.NArg() > 0 {
		usageError("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["insert-start"] {
		p.insertStart = p.records
	}
	if !set["ops"] {
		p.ops = p.records
	}
	switch p.workload {
	case "load", "read", "scan", "scan-short", "ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e",
		"ycsb-f", "overwrite", "read-while-writing":
	default:
		usageError("unknown workload %q", p.workload)
	}
	if p.dist != "uniform" && p.dist != "zipf" {
		usageError("unknown --dist %q (uniform | zipf)", p.dist)
	}
	if p.txn != "view" && p.txn != "long" {
		usageError("unknown --txn %q (view | long)", p.txn)
	}
	if p.dir == "" {
		usageError("--dir is required")
	}
	if p.workload != "scan" {
		// scan reads whatever the database holds; every other workload names records.
		if p.records == 0 || p.records >= 1<<62 {
			usageError("--records must be in 1..2^62")
		}
		if p.valueSize <= 0 || p.valueSize > 16<<20 {
			usageError("--value-size must be in 1..16 MiB")
		}
	}
	if p.threads < 1 || p.batch < 1 || p.scanLn < 1 || !(p.secs > 0) {
		usageError("--threads, --batch, --scan-len and --secs must be positive")
	}
	return p
}

// result is the RESULT line; nil fields are left out, and the percentiles come from latencies
// when it is not nil.
type result struct {
	ops                             uint64
	secs                            float64
	missing, inserts, bytes, writes *uint64
	latencies                       []latencies
	gcSecs                          *float64
}

func u64(v uint64) *uint64 { return &v }

func (r result) line() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
	s := fmt.Sprintf("RESULT ops=%d secs=%s", r.ops, strconv.FormatFloat(r.secs, 'f', 6, 64))
	if r.missing != nil {
		s += fmt.Sprintf(" missing=%d", *r.missing)
	}
	if r.inserts != nil {
		s += fmt.Sprintf(" inserts=%d", *r.inserts)
	}
	if r.bytes != nil {
		s += fmt.Sprintf(" bytes=%d", *r.bytes)
	}
	if r.writes != nil {
		s += fmt.Sprintf(" writes=%d", *r.writes)
	}
	if r.latencies != nil {
		p50, p99, p999 := percentiles(r.latencies)
		s += " p50_us=" + f(p50) + " p99_us=" + f(p99) + " p999_us=" + f(p999)
	}
	if r.gcSecs != nil {
		s += " gc_secs=" + strconv.FormatFloat(*r.gcSecs, 'f', 6, 64)
	}
	return s
}

// openDB opens Badger as its docs advise, with sync off like every store in the comparison (v2
// defaults SyncWrites to true).
func openDB(dir string) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(false))
	must(err)
	return db
}

func runProtocol(args []string) {
	p := parseParams(args)
	var r result
	switch p.workload {
	case "load":
		r = runLoad(p)
	case "read":
		r = runRead(p)
	case "scan":
		r = runScan(p)
	case "scan-short":
		r = runScanShort(p)
	case "overwrite":
		r = runOverwrite(p)
	case "read-while-writing":
		r = runReadWhileWriting(p)
	default:
		r = runYCSB(p)
	}
	fmt.Println(r.line())
}

// writeBatches writes count records chosen by pick in WriteBatches of batch records (one Flush
// each), stopping early between batches once stop says so; gives the records written.
func writeBatches(db *badger.DB, count uint64, batch int, vals values, r *rand.Rand,
	pick func() uint64, stop func() bool) uint64 {
	written := uint64(0)
	for written < count && !stop() {
		wb := db.NewWriteBatch()
		n := uint64(batch)
		if count-written < n {
			n = count - written
		}
		for j := uint64(0); j < n; j++ {
			must(wb.Set(newRecordKey(pick()), vals.next(r)))
		}
		must(wb.Flush())
		written += n
	}
	return written
}

func never() bool { return false }

// runLoad writes records 0..N in index order into a new database, B per WriteBatch (what
// Badger's docs advise for bulk loads), from one goroutine; timed from open to Close returned.
func runLoad(p params) result {
	if entries, err := os.ReadDir(p.dir); err == nil && len(entries) > 0 {
		must(fmt.Errorf("load: %s is not empty", p.dir))
	}
	vals := newValues(p.seed, p.valueSize)
	r := threadRand(p.seed, 0)
	start := time.Now()
	db := openDB(p.dir)
	next := uint64(0)
	writeBatches(db, p.records, p.batch, vals, r, func() uint64 { next++; return next - 1 }, never)
	must(db.Close())
	return result{ops: p.records, secs: time.Since(start).Seconds()}
}

// getter reads one record, checking its value is V bytes; false means missing.
type getter func(key []byte) bool

// viewGet is a `--txn view` read: one db.View per read.
func viewGet(db *badger.DB, size int) getter {
	return func(key []byte) bool {
		found := false
		must(db.View(func(txn *badger.Txn) error { return getIn(txn, key, size, &found) }))
		return found
	}
}

func getIn(txn *badger.Txn, key []byte, size int, found *bool) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return item.Value(func(v []byte) error { *found = len(v) == size; return nil })
}

// timedRun runs body(g, stop) on T goroutines until S seconds pass, then gives the seconds from
// their start to the last one's return.
func timedRun(threads int, secs float64, body func(g int, stop *int32)) float64 {
	var stop int32
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < threads; g++ {
		wg.Add(1)
		go func(g int) { defer wg.Done(); body(g, &stop) }(g)
	}
	time.Sleep(time.Duration(secs * float64(time.Second)))
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	return time.Since(start).Seconds()
}

func stopped(stop *int32) bool { return atomic.LoadInt32(stop) != 0 }

// runRead: T goroutines get records picked by --dist for S seconds; `--txn view` is a db.View
// per read, `--txn long` one read-only transaction per goroutine for the whole run.
func runRead(p params) result {
	db := openDB(p.dir)
	pick := makeChooser(p.dist, p.records)
	ops := make([]uint64, p.threads)
	missing := make([]uint64, p.threads)
	secs := timedRun(p.threads, p.secs, func(g int, stop *int32) {
		r := threadRand(p.seed, g)
		get := viewGet(db, p.valueSize)
		if p.txn == "long" {
			txn := db.NewTransaction(false)
			defer txn.Discard()
			get = func(key []byte) bool {
				found := false
				must(getIn(txn, key, p.valueSize, &found))
				return found
			}
		}
		var k [16]byte
		for !stopped(stop) {
			if !get(recordKey(&k, pick(r))) {
				missing[g]++
			}
			ops[g]++
		}
	})
	must(db.Close())
	return result{ops: sum(ops), secs: secs, missing: u64(sum(missing))}
}

func sum(xs []uint64) uint64 {
	t := uint64(0)
	for _, x := range xs {
		t += x
	}
	return t
}

// runScan iterates every key with its value (item.Value) from the first, with
// DefaultIteratorOptions (values prefetched 100 ahead), in one db.View.
func runScan(p params) result {
	db := openDB(p.dir)
	var ops, bytes uint64
	start := time.Now()
	must(db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(v []byte) error {
				bytes += uint64(len(item.Key()) + len(v))
				return nil
			})
			if err != nil {
				return err
			}
			ops++
		}
		return nil
	}))
	secs := time.Since(start).Seconds()
	must(db.Close())
	return result{ops: ops, secs: secs, bytes: u64(bytes)}
}

// shortScan seeks to key in its own db.View and reads up to n entries with their values; false
// means the key (which must exist) was not the first entry, or a value was not size bytes.
//
// Prefetch: DefaultIteratorOptions prefetches the values of the next 100 items; Badger's docs
// say to adjust that with PrefetchSize, so a short scan prefetches exactly the n values it reads
// (and no more).
func shortScan(db *badger.DB, key []byte, n, size int) bool {
	ok := true
	must(db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchSize = n
		it := txn.NewIterator(opts)
		defer it.Close()
		seen := 0
		for it.Seek(key); it.Valid() && seen < n; it.Next() {
			item := it.Item()
			if seen == 0 && string(item.Key()) != string(key) {
				ok = false
			}
			err := item.Value(func(v []byte) error {
				if len(v) != size {
					ok = false
				}
				return nil
			})
			if err != nil {
				return err
			}
			seen++
		}
		if seen == 0 {
			ok = false
		}
		return nil
	}))
	return ok
}

// runScanShort: T goroutines for S seconds seek to the key of a uniform index and read the next
// L entries with their values.
func runScanShort(p params) result {
	db := openDB(p.dir)
	pick := makeChooser("uniform", p.records)
	ops := make([]uint64, p.threads)
	missing := make([]uint64, p.threads)
	secs := timedRun(p.threads, p.secs, func(g int, stop *int32) {
		r := threadRand(p.seed, g)
		var k [16]byte
		for !stopped(stop) {
			if !shortScan(db, recordKey(&k, pick(r)), p.scanLn, p.valueSize) {
				missing[g]++
			}
			ops[g]++
		}
	})
	must(db.Close())
	return result{ops: sum(ops), secs: secs, missing: u64(sum(missing))}
}

// runOverwrite overwrites K uniform records in WriteBatches of B, then runs RunValueLogGC(0.5)
// until ErrNoRewrite (Badger's docs), then closes. secs times the writes, gc_secs the GC loop.
func runOverwrite(p params) result {
	db := openDB(p.dir)
	vals := newValues(p.seed, p.valueSize)
	r := threadRand(p.seed, 0)
	pick := makeChooser("uniform", p.records)
	start := time.Now()
	writeBatches(db, p.ops, p.batch, vals, r, func() uint64 { return pick(r) }, never)
	secs := time.Since(start).Seconds()
	gcStart := time.Now()
	for {
		err := db.RunValueLogGC(0.5)
		if errors.Is(err, badger.ErrNoRewrite) {
			break
		}
		must(err)
	}
	gcSecs := time.Since(gcStart).Seconds()
	must(db.Close())
	return result{ops: p.ops, secs: secs, gcSecs: &gcSecs}
}

// runReadWhileWriting: one writer goroutine overwrites uniform records in WriteBatches of B as
// fast as it can while T readers do db.View reads by --dist for S seconds. writes counts the
// records of the batches flushed (the writer finishes the batch it is in when time is up).
func runReadWhileWriting(p params) result {
	db := openDB(p.dir)
	vals := newValues(p.seed, p.valueSize)
	pick := makeChooser(p.dist, p.records)
	uniform := makeChooser("uniform", p.records)
	ops := make([]uint64, p.threads)
	missing := make([]uint64, p.threads)
	lats := make([]latencies, p.threads)
	var writes uint64
	writerDone := make(chan struct{})
	secs := timedRun(p.threads+1, p.secs, func(g int, stop *int32) {
		if g == p.threads { // the writer
			defer close(writerDone)
			r := threadRand(p.seed, g)
			start, batches := time.Now(), 0
			paced := func() bool {
				// At most R records per second: batch k starts no sooner than k*B/R seconds in.
				if p.writeRate > 0 {
					due := start.Add(time.Duration(float64(batches*p.batch) / p.writeRate * 1e9))
					for time.Now().Before(due) && !stopped(stop) {
						time.Sleep(time.Millisecond)
					}
				}
				batches++
				return stopped(stop)
			}
			writes = writeBatches(db, math.MaxUint64, p.batch, vals, r,
				func() uint64 { return uniform(r) }, paced)
			return
		}
		r := threadRand(p.seed, g)
		get := viewGet(db, p.valueSize)
		var k [16]byte
		for !stopped(stop) {
			key := recordKey(&k, pick(r))
			t := time.Now()
			found := get(key)
			lats[g] = append(lats[g], since(t))
			if !found {
				missing[g]++
			}
			ops[g]++
		}
	})
	<-writerDone
	must(db.Close())
	return result{ops: sum(ops), secs: secs, missing: u64(sum(missing)), writes: u64(writes),
		latencies: lats}
}

// runYCSB runs ycsb-a..f: T goroutines for S seconds, each op drawn from the mix; keys by the
// scrambled Zipfian (D's reads: latest). A read is one db.View, an update or insert one
// db.Update, a read-modify-write a db.View get then a db.Update set (two operations as in YCSB,
// timed together as one op), a scan (E) a db.View with an iterator. Every op's latency is kept.
func runYCSB(p params) result {
	db := openDB(p.dir)
	vals := newValues(p.seed, p.valueSize)
	pick := makeChooser("zipf", p.records)
	var latest *latestList
	if p.workload == "ycsb-d" {
		latest = &latestList{n: p.records, m: p.insertStart, published: make([]uint64, p.threads),
			z: newZipfian(float64(p.records), zipfTheta, zeta(p.records, zipfTheta))}
	}
	ops := make([]uint64, p.threads)
	missing := make([]uint64, p.threads)
	inserts := make([]uint64, p.threads)
	lats := make([]latencies, p.threads)
	secs := timedRun(p.threads, p.secs, func(g int, stop *int32) {
		r := threadRand(p.seed, g)
		get := viewGet(db, p.valueSize)
		var k [16]byte
		update := func(i uint64) {
			key, val := newRecordKey(i), vals.next(r)
			must(db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) }))
		}
		insert := func() {
			update(p.insertStart + uint64(g) + inserts[g]*uint64(p.threads))
			inserts[g]++
			if latest != nil {
				atomic.StoreUint64(&latest.published[g], inserts[g])
			}
		}
		for !stopped(stop) {
			u := r.Float64()
			t := time.Now()
			ok := true
			switch p.workload {
			case "ycsb-a", "ycsb-b":
				if (p.workload == "ycsb-a" && u < 0.5) || (p.workload == "ycsb-b" && u < 0.95) {
					ok = get(recordKey(&k, pick(r)))
				} else {
					update(pick(r))
				}
			case "ycsb-c":
				ok = get(recordKey(&k, pick(r)))
			case "ycsb-d":
				if u < 0.95 {
					ok = get(recordKey(&k, latest.index(r.Float64())))
				} else {
					insert()
				}
			case "ycsb-e":
				if u < 0.95 {
					ok = shortScan(db, recordKey(&k, pick(r)), 1+r.Intn(100), p.valueSize)
				} else {
					insert()
				}
			case "ycsb-f":
				i := pick(r)
				ok = get(recordKey(&k, i))
				if u >= 0.5 {
					update(i)
				}
			}
			lats[g] = append(lats[g], since(t))
			if !ok {
				missing[g]++
			}
			ops[g]++
		}
	})
	must(db.Close())
	res := result{ops: sum(ops), secs: secs, missing: u64(sum(missing)), latencies: lats}
	if p.workload == "ycsb-d" || p.workload == "ycsb-e" {
		res.inserts = u64(sum(inserts))
	}
	return res
}
