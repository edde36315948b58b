#!/usr/bin/env bash
# Runs the same workloads on SettDB and Go Badger (Debian's badger, v2.2007) in one session and
# prints throughputs, peak RSS and ratios:
#   loads of 1M x 128 B, 300K x 1 KiB and 30K x 16 KiB random 16-byte keys (batched writes,
#   close included), random point reads from 2 threads, and the disk's sequential write
#   bandwidth measured with dd; uncontended update transactions with one set, and a full
#   iteration with values over the 1M-key load (Badger through bench/badger-peer, a small Go
#   driver built here against Debian's packaged Badger sources).
# Usage: scripts/bench-vs-badger.sh [work-dir] [read-seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/settdb-bench.XXXXXX)}
read_secs=${2:-10}
mkdir -p "$work"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need badger || ! need go || [ ! -x /usr/bin/time ] || [ ! -d /usr/share/gocode/src/github.com/dgraph-io/badger ]; then
  echo "installing badger, Go, Badger's Go sources and time from Debian..." >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq badger time golang-go golang-github-dgraph-io-badger-dev >/dev/null
fi
# Build the Go peer in a private GOPATH (Debian's Go sources are GOPATH-style, no modules).
gopath="$work/gopath"
mkdir -p "$gopath/src/badgerpeer"
# Every source file of the peer (it is more than main.go), not its tests.
find bench/badger-peer -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$gopath/src/badgerpeer/" \;
(cd "$gopath/src/badgerpeer" && GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" go build -o "$work/badger-peer" . 2>/dev/null)
peer="$work/badger-peer"
cargo build --release -q -p settdb-bench
bench=target/release/settdb-bench

# Runs a command under /usr/bin/time; prints "<wall seconds> <peak RSS MB>".
timed() {
  /usr/bin/time -f "TIME %e %M" "$@" 2>&1 >/dev/null | awk '/^TIME/ {printf "%s %.0f\n", $2, $3/1024}'
}

printf '%-28s %14s %14s %8s %10s %10s\n' workload settdb badger ratio rss_settdb rss_badger
row() { # name unit settdb badger rss_s rss_b
  printf '%-28s %14s %14s %8s %10s %10s\n' "$1" "$3" "$4" "$(awk -v a="$3" -v b="$4" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')" "$5" "$6"
}

for spec in "1000000 128" "300000 1024" "30000 16384"; do
  set -- $spec
  n=$1; v=$2
  rm -rf "$work/s-$v" "$work/b-$v"
  read -r s_wall s_rss < <(timed "$bench" load --dir "$work/s-$v" --keys "$n" --value-size "$v")
  read -r b_wall b_rss < <(timed badger benchmark write --dir "$work/b-$v" -k 16 -v "$v" -m "$(awk -v n="$n" 'BEGIN{print n/1e6}')")
  s_rate=$(awk -v n="$n" -v t="$s_wall" 'BEGIN{printf "%.0f", n/t}')
  b_rate=$(awk -v n="$n" -v t="$b_wall" 'BEGIN{printf "%.0f", n/t}')
  row "load ${n} x ${v} B (entries/s)" x "$s_rate" "$b_rate" "$s_rss" "$b_rss"
  if [ "$v" = 16384 ]; then
    s_mbs=$(awk -v n="$n" -v v="$v" -v t="$s_wall" 'BEGIN{printf "%.0f", n*(v+16)/t/1e6}')
    dd_mbs=$(dd if=/dev/zero of="$work/dd.test" bs=1M count=1024 conv=fdatasync 2>&1 | awk '/copied/ {for (i=1;i<=NF;i++) if ($i ~ /MB\/s|GB\/s/) { v=$(i-1); if ($i ~ /GB/) v*=1000; print v }}')
    rm -f "$work/dd.test"
    row "16 KiB load vs dd (MB/s)" x "$s_mbs" "$dd_mbs" - -
  fi
done

s_reads=$("$bench" read --dir "$work/s-128" --keys 1000000 --threads 2 --seconds "$read_secs" | sed -n 's/.*reads_per_s=\([0-9]*\).*/\1/p')
b_reads=$(badger benchmark read --dir "$work/b-128" -g 2 -d "${read_secs}s" 2>&1 | grep -o 'speed: [0-9]*/sec' | tail -1 | grep -o '[0-9]*' || echo 0)
row "random reads, 2 threads (/s)" x "$s_reads" "$b_reads" - -
rm -rf "$work/s-upd" "$work/b-upd"
s_upd=$("$bench" update --dir "$work/s-upd" --n 100000 | sed -n 's/.*per_s=\([0-9]*\).*/\1/p')
b_upd=$("$peer" -mode update -dir "$work/b-upd" -n 100000 | sed -n 's/.*per_s=\([0-9]*\).*/\1/p')
row "update, 1 set per txn (/s)" x "$s_upd" "$b_upd" - -
s_it=$("$bench" iterate --dir "$work/s-128" | sed -n 's/.* per_s=\([0-9]*\).*/\1/p')
b_it=$("$peer" -mode iterate -dir "$work/b-128" | sed -n 's/.*per_s=\([0-9]*\).*/\1/p')
row "iterate 1M with values (/s)" x "$s_it" "$b_it" - -
echo "work dir: $work"
