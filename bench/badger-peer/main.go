// badger-peer: drives Go Badger (Debian's v2.2007 library, built in GOPATH mode against
// Debian's packaged Go sources: GOPATH=/usr/share/gocode GO111MODULE=off, see scripts/peers.sh).
// It has two interfaces:
//
//   - `--workload W --dir D --records N --value-size V [--threads T] [--secs S] ...`: the
//     benchmark driver protocol of docs/bench/protocol.md (protocol.go), spoken by every store's
//     driver for `settdb-bench compare`: keys be64(splitmix64(i)) ++ be64(i), uniform or
//     scrambled-Zipfian picks, the workloads load, read, scan, scan-short, ycsb-a..ycsb-f,
//     overwrite and read-while-writing, and one `RESULT ops=... secs=...` line on stdout. Badger
//     is opened with DefaultOptions(dir).WithLogger(nil).WithSyncWrites(false).
//   - `-mode M` (the older interface of scripts/*.sh, unchanged): the same work as settdb-bench's
//     own modes: uncontended db.Update with one Set, a full iteration with values, a batched load
//     to iterate over, point reads, and the value-log GC workload (load every key, overwrite it
//     rounds-1 times, then RunValueLogGC(0.5) in a loop until ErrNoRewrite, as Badger's docs
//     advise; prints the value-log bytes on disk after Close over the live value bytes).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	// Debian installs Badger v2 without the /v2 suffix in GOPATH.
	badger "github.com/dgraph-io/badger"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "badger-peer:", err)
		os.Exit(1)
	}
}

func key(i uint64, size int) []byte {
	k := make([]byte, size)
	r := rand.New(rand.NewSource(int64(i)*0x9e3779b9 + 1))
	r.Read(k)
	binary.BigEndian.PutUint64(k, i) // unique
	return k
}

// open uses Badger's defaults but for SyncWrites, which is set like SettDB's run (v2 defaults
// to true, SettDB and Badger v4 to false).
func open(dir string, sync bool) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(sync))
	must(err)
	return db
}

func main() {
	if wantsWorkload(os.Args[1:]) {
		runProtocol(os.Args[1:])
		return
	}
	mode := flag.String("mode", "", "update | load | iterate | gc | read")
	rounds := flag.Uint64("rounds", 5, "gc: times every key is written")
	flatten := flag.Bool("flatten", false, "gc: Flatten before the GC loop (so compaction counts discards)")
	quiet := flag.Int("quiet-secs", 10, "gc: the GC loop ends after this long without a rewrite")
	dir := flag.String("dir", "", "database directory")
	n := flag.Uint64("n", 100000, "operations or keys")
	valueSize := flag.Int("value-size", 128, "value size in bytes")
	keySize := flag.Int("key-size", 16, "key size in bytes")
	sync := flag.Bool("sync", false, "sync every write")
	blockCacheMB := flag.Int64("block-cache-mb", 0, "read: block cache in MiB (Badger's default is 0)")
	threads := flag.Int("threads", 2, "read: goroutines doing point reads")
	readSecs := flag.Float64("secs", 10, "read: how long to read")
	flag.Parse()
	value := make([]byte, *valueSize)
	rand.Read(value)
	if *mode == "read" {
		readWorkload(*dir, *blockCacheMB, *threads, *readSecs)
		return
	}
	db := open(*dir, *sync)
	start := time.Now()
	switch *mode {
	case "update":
		for i := uint64(0); i < *n; i++ {
			must(db.Update(func(txn *badger.Txn) error { return txn.Set(key(i, *keySize), value) }))
		}
	case "load":
		wb := db.NewWriteBatch()
		for i := uint64(0); i < *n; i++ {
			must(wb.Set(key(i, *keySize), value))
		}
		must(wb.Flush())
	case "iterate":
		count := uint64(0)
		must(db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.DefaultIteratorOptions)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if err := it.Item().Value(func(v []byte) error { _ = v; return nil }); err != nil {
					return err
				}
				count++
			}
			return nil
		}))
		*n = count
	case "gc":
		gcWorkload(db, *dir, *n, *keySize, *valueSize, *rounds, *flatten, *quiet)
		return
	default:
		must(fmt.Errorf("unknown mode %q", *mode))
	}
	secs := time.Since(start).Seconds()
	must(db.Close())
	fmt.Printf("badger %s: n=%d per_s=%.0f elapsed_s=%.2f\n", *mode, *n, float64(*n)/secs, secs)
}

// gcWorkload loads n keys rounds times over (one WriteBatch per round), optionally flattens,
// then calls RunValueLogGC(0.5) again at once after a rewrite and every second after
// ErrNoRewrite (Badger's docs: call it periodically), until quiet seconds pass without one.
func gcWorkload(db *badger.DB, dir string, n uint64, keySize, valueSize int, rounds uint64, flatten bool, quiet int) {
	pool := make([]byte, 8<<20)
	rand.Read(pool)
	start := time.Now()
	for r := uint64(0); r < rounds; r++ {
		wb := db.NewWriteBatch()
		for i := uint64(0); i < n; i++ {
			off := rand.Intn(len(pool) - valueSize)
			must(wb.Set(key(i, keySize), pool[off:off+valueSize]))
		}
		must(wb.Flush())
	}
	loadSecs := time.Since(start).Seconds()
	gcStart := time.Now()
	if flatten {
		must(db.Flatten(2))
	}
	runs := 0
	last := time.Now()
	for time.Since(last) < time.Duration(quiet)*time.Second {
		err := db.RunValueLogGC(0.5)
		if err == badger.ErrNoRewrite {
			time.Sleep(time.Second)
			continue
		}
		must(err)
		runs++
		last = time.Now()
	}
	// The quiet period at the end is waiting, not work.
	gcSecs := last.Sub(gcStart).Seconds()
	must(db.Close())
	vlog := int64(0)
	matches, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil {
			vlog += st.Size()
		}
	}
	live := float64(n) * float64(valueSize)
	written := float64(n*rounds) * float64(keySize+valueSize)
	fmt.Printf("badger gc: keys=%d value_size=%d rounds=%d load_mb_per_s=%.1f load_s=%.2f flatten=%v gc_runs=%d settle_s=%.2f vlog_mb=%.1f live_mb=%.1f space_amp=%.2f\n",
		n, valueSize, rounds, written/loadSecs/1e6, loadSecs, flatten, runs, gcSecs, float64(vlog)/1e6, live/1e6, float64(vlog)/live)
}

// readWorkload samples every key with a key-only iteration, then reads random keys with their
// values (one View each, as `badger benchmark read` does) from `threads` goroutines for `secs`
// seconds, with a block cache of blockCacheMB MiB; prints reads/s and the cache hit ratio.
func readWorkload(dir string, blockCacheMB int64, threads int, secs float64) {
	opts := badger.DefaultOptions(dir).WithLogger(nil).WithReadOnly(true).
		WithBlockCacheSize(blockCacheMB << 20)
	db, err := badger.Open(opts)
	must(err)
	var keys [][]byte
	must(db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	}))
	if len(keys) == 0 {
		must(fmt.Errorf("no keys in %s", dir))
	}
	counts := make(chan uint64, threads)
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	start := time.Now()
	for t := 0; t < threads; t++ {
		go func(seed int64) {
			r := rand.New(rand.NewSource(seed))
			n := uint64(0)
			for time.Now().Before(deadline) {
				k := keys[r.Intn(len(keys))]
				must(db.View(func(txn *badger.Txn) error {
					item, err := txn.Get(k)
					if err != nil {
						return err
					}
					return item.Value(func(v []byte) error { _ = v; return nil })
				}))
				n++
			}
			counts <- n
		}(int64(t) + 1)
	}
	total := uint64(0)
	for t := 0; t < threads; t++ {
		total += <-counts
	}
	elapsed := time.Since(start).Seconds()
	ratio := 0.0
	if m := db.BlockCacheMetrics(); m != nil {
		ratio = m.Ratio()
	}
	must(db.Close())
	fmt.Printf("badger read: n=%d per_s=%.0f elapsed_s=%.2f block_cache_mb=%d hit_ratio=%.3f\n",
		total, float64(total)/elapsed, elapsed, blockCacheMB, ratio)
}
