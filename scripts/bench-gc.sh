#!/usr/bin/env bash
# Value-log GC benchmark (issue 9), SettDB and Go Badger in one session: load 50K random
# 16-byte keys x 16 KiB values, overwrite every key 4 times (5 rounds, 4.1 GB written), let GC
# settle, close; report value-log bytes on disk / live value bytes (space amplification), GC
# throughput and load throughput.
#   settdb off:    no GC (the baseline for load throughput)
#   settdb auto:   automatic GC (default options: target 1.5, 256 MiB/s), settled when the log
#                  has not shrunk for 10 s
#   settdb manual: no automatic GC; Db::run_value_log_gc(0.5) until nothing to rewrite
#   badger:        Debian's Badger v2.2007 with default options; RunValueLogGC(0.5) at once
#                  after a rewrite and every second after ErrNoRewrite until 10 s pass without
#                  one (its docs: call it periodically); once as loaded and once after
#                  Flatten(2)
# SettDB modes run interleaved, REPS times each (default 3); the medians are printed.
# Usage: scripts/bench-gc.sh [work-dir] [reps]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/settdb-gc-bench.XXXXXX)}
reps=${2:-3}
mkdir -p "$work"
need() { command -v "$1" >/dev/null 2>&1; }
if ! need go || [ ! -d /usr/share/gocode/src/github.com/dgraph-io/badger ]; then
  echo "installing Go and Badger's Go sources from Debian..." >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-dgraph-io-badger-dev >/dev/null
fi
gopath="$work/gopath"
mkdir -p "$gopath/src/badgerpeer"
# Every source file of the peer (it is more than main.go), not its tests.
find bench/badger-peer -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$gopath/src/badgerpeer/" \;
(cd "$gopath/src/badgerpeer" && GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" go build -o "$work/badger-peer" . 2>/dev/null)
cargo build --release -q -p settdb-bench
bench=target/release/settdb-bench
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
results="$work/results.txt"
: >"$results"
for r in $(seq "$reps"); do
  for mode in off auto manual; do
    rm -rf "$work/s"
    sync
    "$bench" gc --dir "$work/s" --mode "$mode" | tee -a "$results"
  done
done
rm -rf "$work/s"
for flatten in false true; do
  rm -rf "$work/b"
  sync
  "$work/badger-peer" -mode gc -dir "$work/b" -n 50000 -value-size 16384 -rounds 5 -flatten="$flatten" | tee -a "$results"
done
rm -rf "$work/b"
echo
printf '%-22s %12s %10s %12s %10s\n' run load_MB/s space_amp gc_MB/s settle_s
for mode in Off Auto Manual; do
  rows=$(grep "settdb gc: mode=$mode " "$results")
  printf '%-22s %12s %10s %12s %10s\n' "settdb $mode (median)" \
    "$(echo "$rows" | field load_mb_per_s | median)" "$(echo "$rows" | field space_amp | median)" \
    "$(echo "$rows" | field gc_mb_per_s | median)" "$(echo "$rows" | field settle_s | median)"
done
for flatten in false true; do
  row=$(grep "badger gc: .*flatten=$flatten " "$results")
  printf '%-22s %12s %10s %12s %10s\n' "badger flatten=$flatten" \
    "$(echo "$row" | field load_mb_per_s)" "$(echo "$row" | field space_amp)" - "$(echo "$row" | field settle_s)"
done
off=$(grep "settdb gc: mode=Off " "$results" | field load_mb_per_s | median)
auto=$(grep "settdb gc: mode=Auto " "$results" | field load_mb_per_s | median)
echo "load with automatic GC / without: $(awk -v a="$auto" -v o="$off" 'BEGIN{printf "%.2f", a/o}')"
echo "work dir: $work"
