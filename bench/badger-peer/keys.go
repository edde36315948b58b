package main

// Keys, distributions and latency percentiles of docs/bench/protocol.md, shared by the workloads
// of protocol.go (and tested by keys_test.go).

import (
	"encoding/binary"
	"math"
	"math/rand"
	"sort"
	"sync/atomic"
	"time"
)

// splitmix64 is the finalizer of the spec: the input is the record index itself, the golden
// gamma is added inside.
func splitmix64(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// recordKey writes record i's 16-byte key, be64(splitmix64(i)) ++ be64(i), into k.
func recordKey(k *[16]byte, i uint64) []byte {
	binary.BigEndian.PutUint64(k[:8], splitmix64(i))
	binary.BigEndian.PutUint64(k[8:], i)
	return k[:]
}

// newRecordKey is recordKey in a fresh allocation, for writes (Badger keeps the key slice of a
// Set until the write commits).
func newRecordKey(i uint64) []byte {
	var k [16]byte
	return recordKey(&k, i)
}

// fnv64 is YCSB's FNV-1a over the 8 little-endian bytes of r, with the top bit cleared.
func fnv64(r uint64) uint64 {
	h := uint64(0xCBF29CE484222325)
	for b := 0; b < 8; b++ {
		h = (h ^ (r & 0xff)) * 0x100000001B3
		r >>= 8
	}
	return h &^ (1 << 63)
}

const (
	zipfTheta = 0.99
	// zipfItems is the item count of the scrambled Zipfian and zipfZetaItems its precomputed
	// zeta(10^10, 0.99), both from the spec (as YCSB's ScrambledZipfianGenerator).
	zipfItems     = 1e10
	zipfZetaItems = 26.46902820178302
)

// zeta is sum over i in 1..=n of 1 / i^theta.
func zeta(n uint64, theta float64) float64 {
	sum := 0.0
	for i := uint64(1); i <= n; i++ {
		sum += 1 / math.Pow(float64(i), theta)
	}
	return sum
}

// zipfian draws Zipfian ranks in [0, n) (YCSB's ZipfianGenerator) from uniform u in [0, 1).
type zipfian struct {
	n, theta, zetan, alpha, eta float64
}

func newZipfian(n, theta, zetan float64) zipfian {
	zeta2 := 1 + math.Pow(0.5, theta)
	return zipfian{
		n:     n,
		theta: theta,
		zetan: zetan,
		alpha: 1 / (1 - theta),
		eta:   (1 - math.Pow(2/n, 1-theta)) / (1 - zeta2/zetan),
	}
}

func (z zipfian) rank(u float64) uint64 {
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return 1
	}
	return uint64(z.n * math.Pow(z.eta*u-z.eta+1, z.alpha))
}

// scrambled is the spec's `zipf` distribution over n records: a rank over 10^10 items, hashed.
type scrambled struct {
	z zipfian
	n uint64
}

func newScrambled(n uint64) scrambled {
	return scrambled{z: newZipfian(zipfItems, zipfTheta, zipfZetaItems), n: n}
}

func (s scrambled) index(u float64) uint64 { return fnv64(s.z.rank(u)) % s.n }

// chooser picks a record index by --dist.
type chooser func(r *rand.Rand) uint64

func makeChooser(dist string, n uint64) chooser {
	if dist == "zipf" {
		s := newScrambled(n)
		return func(r *rand.Rand) uint64 { return s.index(r.Float64()) }
	}
	return func(r *rand.Rand) uint64 { return uint64(r.Int63n(int64(n))) }
}

// latencies of one goroutine's operations in microseconds.
type latencies []float64

func since(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1e3 }

// percentiles merges the goroutines' latencies and gives p50, p99 and p999 by nearest rank.
func percentiles(all []latencies) (p50, p99, p999 float64) {
	var merged []float64
	for _, l := range all {
		merged = append(merged, l...)
	}
	if len(merged) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(merged)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(merged)))) - 1
		if i < 0 {
			i = 0
		}
		return merged[i]
	}
	return at(0.50), at(0.99), at(0.999)
}

// latestList is YCSB D's `latest`: records 0..N followed by the inserts finished so far, where
// goroutine t's k-th insert is index M + t + k*T and published[t] counts its finished inserts.
type latestList struct {
	n, m      uint64
	published []uint64 // atomic
	z         zipfian
}

// index picks the item zipf(N) places back from the newest end of the list (clamped to it).
func (l *latestList) index(u float64) uint64 {
	least := uint64(math.MaxUint64)
	for t := range l.published {
		if c := atomic.LoadUint64(&l.published[t]); c < least {
			least = c
		}
	}
	length := l.n + least*uint64(len(l.published))
	back := l.z.rank(u)
	if back >= length {
		back = length - 1
	}
	pos := length - 1 - back
	if pos < l.n {
		return pos
	}
	return l.m + (pos - l.n)
}
