// badger-history: drives Go Badger (Debian's v2.2007 library) for SettDB's interop test
// (tests/badger_interop.rs). Every mode opens Badger with NumVersionsToKeep = MaxInt32, so
// no version the test compares is compacted away.
//
//	write   -dir D -n N -seed S   writes a history of N transactions over 300 keys: sets with
//	                              user meta (values of 12 B inline, 2,000 B in Badger's value
//	                              log), deletes, sets that discard earlier versions, sets that
//	                              expired long ago or expire far ahead
//	backup  -dir D -file F        DB.Backup(F, 0)
//	load    -dir D -file F        DB.Load(F, 256) into D
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"

	// Debian installs Badger v2 without the /v2 suffix in GOPATH.
	badger "github.com/dgraph-io/badger"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "badger-history:", err)
		os.Exit(1)
	}
}

func main() {
	mode := flag.String("mode", "", "write | backup | load")
	dir := flag.String("dir", "", "database directory")
	file := flag.String("file", "", "backup file")
	n := flag.Int("n", 2000, "write: transactions")
	seed := flag.Int64("seed", 1, "write: random seed")
	flag.Parse()
	db, err := badger.Open(badger.DefaultOptions(*dir).WithLogger(nil).
		WithNumVersionsToKeep(math.MaxInt32))
	must(err)
	switch *mode {
	case "write":
		write(db, *n, *seed)
	case "backup":
		f, err := os.Create(*file)
		must(err)
		_, err = db.Backup(f, 0)
		must(err)
		must(f.Sync())
		must(f.Close())
	case "load":
		f, err := os.Open(*file)
		must(err)
		must(db.Load(f, 256))
		must(f.Close())
	default:
		must(fmt.Errorf("unknown mode %q", *mode))
	}
	must(db.Close())
}

func write(db *badger.DB, n int, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < n; i++ {
		k := []byte(fmt.Sprintf("key%04d", rng.Intn(300)))
		size := 12
		if rng.Intn(10) < 3 {
			size = 2000
		}
		v := make([]byte, size)
		rng.Read(v)
		must(db.Update(func(txn *badger.Txn) error {
			switch rng.Intn(10) {
			case 0:
				return txn.Delete(k)
			case 1:
				return txn.SetEntry(badger.NewEntry(k, v).WithDiscard())
			case 2:
				e := badger.NewEntry(k, v).WithMeta(byte(rng.Intn(256)))
				e.ExpiresAt = 1 // long expired
				if rng.Intn(2) == 0 {
					e.ExpiresAt = math.MaxUint32 * 4 // far ahead
				}
				return txn.SetEntry(e)
			default:
				return txn.SetEntry(badger.NewEntry(k, v).WithMeta(byte(rng.Intn(256))))
			}
		}))
	}
}
