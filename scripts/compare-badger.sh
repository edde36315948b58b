#!/usr/bin/env bash
# Runs the same workloads on SettDB (`settdb bench`), Go Badger (Debian's v2.2007: its
# `badger benchmark` tool, and bench/badger-peer for a full scan) and RocksDB (Debian's
# `db_bench`) in one session, and prints a table of throughputs with the ratios settdb/badger
# and settdb/rocksdb:
#   - loads of N random 16-byte keys with 128 B, 1 KiB and 16 KiB values (wall time of the
#     whole process: open, write, flush/close; entries/s);
#   - random point reads from 2 threads on the 128 B database (reads/s, each tool's own count);
#   - a full scan with values of the 128 B database (keys/s).
# Each engine runs with its defaults except where noted below, on a fresh directory, sync off.
#   SettDB  `settdb bench write -k 16` (snappy), `bench read -g 2`, `bench read --full-scan`.
#   Badger  `badger benchmark write -k 16` (v2 defaults: no compression, L0 compacted on
#           close), `badger benchmark read -g 2`, `badger-peer -mode iterate`.
#   RocksDB `db_bench --benchmarks=filluniquerandom,flush` (snappy, WAL on, incompressible
#           values: --compression_ratio=1, --bloom_bits=10 like the others' 1% bloom filters),
#           then `readrandom --threads 2 --duration S` and `readseq`. filluniquerandom is
#           fillrandom writing each of the --num keys once (fillrandom draws with repetition:
#           only ~63% distinct keys, so readrandom would miss 37% of its lookups cheaply on the
#           bloom filter and readseq would scan 63% of the keys; the others' keys are all
#           distinct).
# Usage: [KEEP_DBS=1] scripts/compare-badger.sh [work-dir] [read-seconds] [scale]
#   scale multiplies every key count (default 1: 1M x 128 B, 1M x 1 KiB, 100K x 16 KiB, i.e.
#   144 MB, 1.0 GB and 1.6 GB of keys and values per engine; the disk needs about 10 GB free
#   while it runs; the databases are removed at the end unless KEEP_DBS=1, the logs stay);
#   the defaults take about 2 minutes on 2 cores after the builds (2 more for a cold build).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/settdb-compare.XXXXXX)}
read_secs=${2:-10}
scale=${3:-1}
mkdir -p "$work"
work=$(cd "$work" && pwd)

# shellcheck source=scripts/peers.sh
. scripts/peers.sh
fmt='%-30s %12s %12s %12s %8s %8s\n'
rows=()
row() { # name settdb badger rocksdb
  rows+=("$(printf "$fmt" "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")")")
}
rss_rows=()

n128=$(awk -v s="$scale" 'BEGIN{printf "%d", 1000000*s}')
n16k=$(awk -v s="$scale" 'BEGIN{printf "%d", 100000*s}')
sizes="sizes: loads of $n128 x 128 B, $n128 x 1 KiB, $n16k x 16 KiB (16-byte keys); reads for"
sizes+=" ${read_secs}s from 2 threads and a full scan on the 128 B databases"
echo "$sizes; work dir $work" >&2

for spec in "1000000 128" "1000000 1024" "100000 16384"; do
  set -- $spec
  n=$(awk -v n="$1" -v s="$scale" 'BEGIN{printf "%d", n*s}')
  v=$2
  m=$(awk -v n="$n" 'BEGIN{print n/1e6}')
  rm -rf "$work/s-$v" "$work/b-$v" "$work/r-$v"
  echo "load $n x $v B: settdb..." >&2
  read -r s_wall s_rss < <(timed "$work/s-$v.log" "$settdb" bench write --dir "$work/s-$v" -k 16 -v "$v" -m "$m")
  echo "load $n x $v B: badger..." >&2
  read -r b_wall b_rss < <(timed "$work/b-$v.log" badger benchmark write --dir "$work/b-$v" -k 16 -v "$v" -m "$m")
  echo "load $n x $v B: rocksdb..." >&2
  read -r r_wall r_rss < <(timed "$work/r-$v.log" db_bench --benchmarks=filluniquerandom,flush --db="$work/r-$v" \
    --num="$n" --key_size=16 --value_size="$v" --threads=1 --sync=0 --compression_type=snappy \
    --compression_ratio=1 --bloom_bits=10)
  row "load ${n} x ${v} B (entries/s)" "$(rate "$n" "$s_wall")" "$(rate "$n" "$b_wall")" "$(rate "$n" "$r_wall")"
  rss_rows+=("$(printf '%-30s %12s %12s %12s\n' "load ${n} x ${v} B" "$s_rss" "$b_rss" "$r_rss")")
done

echo "random reads, 2 threads, ${read_secs}s each..." >&2
s_reads=$("$settdb" bench read --dir "$work/s-128" -g 2 -d "${read_secs}s" 2>/dev/null \
  | sed -n 's/^  throughput  \([0-9,]*\) reads\/s.*/\1/p' | tr -d ,)
b_reads=$(badger benchmark read --dir "$work/b-128" -g 2 -d "${read_secs}s" 2>&1 \
  | sed -n 's/.*entries read: [0-9]*, speed: \([0-9]*\)\/sec.*/\1/p' | tail -1)
db_bench --benchmarks=readrandom --use_existing_db=1 --db="$work/r-128" --num="$n128" --key_size=16 \
  --value_size=128 --threads=2 --duration="$read_secs" --bloom_bits=10 --compression_ratio=1 \
  >"$work/r-read.log" 2>&1
r_reads=$(awk '/^readrandom/ {for (i=1;i<=NF;i++) if ($i=="ops/sec;" || $i=="ops/sec") print $(i-1)}' "$work/r-read.log" | head -1)
r_found=$(grep -o '([0-9]* of [0-9]* found)' "$work/r-read.log" | head -1 || true)
row "random reads, 2 threads (/s)" "${s_reads:-0}" "${b_reads:-0}" "${r_reads:-0}"

echo "full scans..." >&2
s_scan=$("$settdb" bench read --dir "$work/s-128" --full-scan 2>/dev/null \
  | sed -n 's/^  throughput  \([0-9,]*\) keys\/s.*/\1/p' | tr -d ,)
b_scan=$("$peer" -mode iterate -dir "$work/b-128" | sed -n 's/.*per_s=\([0-9]*\).*/\1/p')
db_bench --benchmarks=readseq --use_existing_db=1 --db="$work/r-128" --num="$n128" --key_size=16 \
  --value_size=128 --threads=1 --bloom_bits=10 --compression_ratio=1 >"$work/r-scan.log" 2>&1
r_scan=$(awk '/^readseq/ {for (i=1;i<=NF;i++) if ($i=="ops/sec;" || $i=="ops/sec") print $(i-1)}' "$work/r-scan.log" | head -1)
row "full scan, 128 B (keys/s)" "${s_scan:-0}" "${b_scan:-0}" "${r_scan:-0}"

echo
echo "$sizes"
printf "$fmt" workload settdb badger rocksdb s/badger s/rocksdb
printf '%s\n' "${rows[@]}"
echo
printf '%-30s %12s %12s %12s\n' "peak RSS (MB)" settdb badger rocksdb
printf '%s\n' "${rss_rows[@]}"
echo
echo "rocksdb readrandom: ${r_found:-?}; logs in $work"
if [ "${KEEP_DBS:-0}" != 1 ]; then
  rm -rf "$work"/[sbr]-128 "$work"/[sbr]-1024 "$work"/[sbr]-16384
  echo "databases removed (KEEP_DBS=1 keeps them)"
fi
