# Sourced by the comparison scripts (compare-badger.sh, bench-caches.sh), from the repository
# root with $work set: installs the peers from Debian if missing (Go Badger v2.2007's `badger`
# tool and sources, RocksDB's `db_bench`, Go, GNU time), builds `settdb` (release) and
# bench/badger-peer, and defines the helpers the scripts share. Sets $settdb and $peer.

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need badger || missing+=(badger)
need db_bench || missing+=(rocksdb-tools)
need go || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/dgraph-io/badger ] || missing+=(golang-github-dgraph-io-badger-dev)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "building settdb (release) and badger-peer..." >&2
cargo build --release -q -p settdb-cli
settdb=$PWD/target/release/settdb
# GOPATH mode against Debian's packaged Go sources (Badger v2 without the /v2 suffix).
GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$work/gocache" \
  go build -o "$work/badger-peer" ./bench/badger-peer 2>"$work/go-build.log" || {
  cat "$work/go-build.log" >&2
  exit 1
}
peer=$work/badger-peer

# Runs a command under /usr/bin/time, its output to log file $1; prints "<wall s> <peak RSS MB>".
timed() {
  local log=$1
  shift
  /usr/bin/time -f "TIME %e %M" -o "$log.time" "$@" >"$log" 2>&1
  awk '/^TIME/ {printf "%s %.0f\n", $2, $3/1024}' "$log.time"
}
rate() { awk -v n="$1" -v t="$2" 'BEGIN{ if (t > 0) printf "%.0f", n/t; else print 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "-" }'; }
