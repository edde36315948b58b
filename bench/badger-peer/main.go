// badger-peer: drives Go Badger (Debian's v2.2007 library) through the same workloads as
// settdb-bench, so both are measured in one session: uncontended db.Update with one Set, a full
// iteration with values, and a batched load to iterate over. Built by
// scripts/bench-vs-badger.sh with GOPATH=/usr/share/gocode (Debian's packaged Go sources).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand"
	"os"
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
	mode := flag.String("mode", "", "update | load | iterate")
	dir := flag.String("dir", "", "database directory")
	n := flag.Uint64("n", 100000, "operations or keys")
	valueSize := flag.Int("value-size", 128, "value size in bytes")
	keySize := flag.Int("key-size", 16, "key size in bytes")
	sync := flag.Bool("sync", false, "sync every write")
	flag.Parse()
	value := make([]byte, *valueSize)
	rand.Read(value)
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
	default:
		must(fmt.Errorf("unknown mode %q", *mode))
	}
	secs := time.Since(start).Seconds()
	must(db.Close())
	fmt.Printf("badger %s: n=%d per_s=%.0f elapsed_s=%.2f\n", *mode, *n, float64(*n)/secs, secs)
}
