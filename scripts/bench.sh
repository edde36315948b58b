#!/usr/bin/env bash
# The benchmark harness in one command: installs the peers from Debian if missing (Go Badger
# v2.2007's sources and Go for bench/badger-peer, RocksDB's librocksdb-dev and g++ for
# bench/rocksdb-peer, rocksdb-tools for db_bench, GNU time), builds settdb-bench (release) and
# runs `settdb-bench compare`: SettDB beside Go Badger, RocksDB (its C++ driver and db_bench),
# fjall, redb and sled, one process per step, then results.md, results.csv and SVG plots.
# Usage: scripts/bench.sh [out-dir] [extra compare flags...]
#   e.g. scripts/bench.sh /tmp/bench --records 1000000 --secs 5
#        scripts/bench.sh /tmp/bench-big --only scale --big-records 10000000
# The databases go to $BENCH_WORK (default: <out-dir>/work; about 15 GB free at 1M records).
# At the defaults (1M records, 5 s per timed step) a run takes about 40 minutes on 2 cores.
# Keep the machine otherwise idle while it runs: every figure is a ratio within the run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/settdb-bench}
shift || true
work=${BENCH_WORK:-$out/work}
need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need go || missing+=(golang-go)
[ -d /usr/share/gocode/src/github.com/dgraph-io/badger ] || missing+=(golang-github-dgraph-io-badger-dev)
need db_bench || missing+=(rocksdb-tools)
[ -f /usr/include/rocksdb/db.h ] || missing+=(librocksdb-dev)
need g++ || missing+=(g++)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from Debian: ${missing[*]}" >&2
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release -q -p settdb-bench
exec target/release/settdb-bench compare --work "$work" --out "$out" "$@"
