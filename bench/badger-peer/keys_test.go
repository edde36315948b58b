package main

import (
	"encoding/hex"
	"math"
	"math/rand"
	"testing"
)

// The expected keys are the spec's splitmix64 worked out independently of this code (a
// Python transcription of docs/bench/protocol.md's formula); key(0) and key(1) are also the
// spec's test vectors.
func TestRecordKey(t *testing.T) {
	for _, c := range []struct {
		i    uint64
		want string
	}{
		{0, "e220a8397b1dcdaf0000000000000000"},
		{1, "910a2dec89025cc10000000000000001"},
		{12345, "22118258a9d111a00000000000003039"},
	} {
		var k [16]byte
		if got := hex.EncodeToString(recordKey(&k, c.i)); got != c.want {
			t.Errorf("key(%d) = %s, want %s", c.i, got, c.want)
		}
		if got := hex.EncodeToString(newRecordKey(c.i)); got != c.want {
			t.Errorf("newRecordKey(%d) = %s, want %s", c.i, got, c.want)
		}
	}
}

// FNV-1a over the 8 little-endian bytes, top bit cleared (worked out independently as above).
func TestFnv64(t *testing.T) {
	for _, c := range []struct{ r, want uint64 }{
		{0, 0x28c7f832281a39c5},
		{1, 0x09cd31291d2aefa4},
		{2, 0x66bd86443df8ce07},
		{12345, 0x671eb185e2edcc4c},
	} {
		if got := fnv64(c.r); got != c.want {
			t.Errorf("fnv64(%d) = %#x, want %#x", c.r, got, c.want)
		}
	}
}

func TestZipfianRanks(t *testing.T) {
	const n = 1000
	z := newZipfian(n, zipfTheta, zeta(n, zipfTheta))
	if z.rank(0) != 0 {
		t.Errorf("rank(0) = %d, want 0", z.rank(0))
	}
	// uz in [1, 1 + 0.5^theta) is rank 1.
	if got := z.rank(1.2 / z.zetan); got != 1 {
		t.Errorf("rank(1.2/zetan) = %d, want 1", got)
	}
	r := rand.New(rand.NewSource(42))
	counts := make([]int, n)
	for i := 0; i < 200000; i++ {
		k := z.rank(r.Float64())
		if k >= n {
			t.Fatalf("rank %d out of [0, %d)", k, n)
		}
		counts[k]++
	}
	for k := 1; k < n; k++ {
		if counts[k] >= counts[0] {
			t.Fatalf("rank %d drawn %d times, rank 0 only %d", k, counts[k], counts[0])
		}
	}
	if counts[1] <= counts[10] || counts[10] <= counts[500] {
		t.Errorf("counts not falling with rank: %d %d %d", counts[1], counts[10], counts[500])
	}
}

func TestZeta(t *testing.T) {
	// The spec's precomputed zeta(10^10) is the same sum as zeta(n); check the small end.
	if got, want := zeta(2, zipfTheta), 1+math.Pow(0.5, zipfTheta); math.Abs(got-want) > 1e-12 {
		t.Errorf("zeta(2) = %v, want %v", got, want)
	}
}

func TestScrambledInRangeAndSkewed(t *testing.T) {
	const n = 1000000
	s := newScrambled(n)
	r := rand.New(rand.NewSource(7))
	counts := map[uint64]int{}
	for i := 0; i < 100000; i++ {
		idx := s.index(r.Float64())
		if idx >= n {
			t.Fatalf("index %d out of [0, %d)", idx, n)
		}
		counts[idx]++
	}
	// Rank 0 over 10^10 items has probability 1/zeta(10^10) ~ 3.8%: its index fnv64(0) mod n
	// is the most drawn.
	top := fnv64(0) % n
	for idx, c := range counts {
		if idx != top && c >= counts[top] {
			t.Fatalf("index %d drawn %d times, rank 0's index %d only %d", idx, c, top, counts[top])
		}
	}
}

func TestLatestStaysInTheList(t *testing.T) {
	const n, m, threads = 1000, 5000, 3
	l := &latestList{n: n, m: m, published: make([]uint64, threads),
		z: newZipfian(n, zipfTheta, zeta(n, zipfTheta))}
	// Before every thread has finished an insert, only records 0..N are in the list.
	l.published[0] = 4
	if got := l.index(0); got != n-1 {
		t.Errorf("newest = %d, want %d", got, n-1)
	}
	l.published = []uint64{4, 2, 3} // inserts m+0 .. m+5 finished
	if got := l.index(0); got != m+5 {
		t.Errorf("newest = %d, want %d", got, m+5)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 10000; i++ {
		idx := l.index(r.Float64())
		if !(idx < n || (idx >= m && idx < m+6)) {
			t.Fatalf("index %d is not in the list", idx)
		}
	}
}

func TestPercentilesByRank(t *testing.T) {
	var a, b latencies
	for i := 1; i <= 1000; i++ {
		if i%2 == 0 {
			a = append(a, float64(i))
		} else {
			b = append(b, float64(i))
		}
	}
	p50, p99, p999 := percentiles([]latencies{a, b})
	if p50 != 500 || p99 != 990 || p999 != 999 {
		t.Errorf("percentiles = %v %v %v, want 500 990 999", p50, p99, p999)
	}
}
