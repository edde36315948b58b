#!/usr/bin/env bash
# Issue 10's benchmark: point reads with block caches of the same size, and what encryption
# costs. In one session, for N random 16-byte keys with 128 B and with 1 KiB values:
#   - loads (entries/s, wall time of the whole process, peak RSS) of SettDB plaintext, SettDB
#     encrypted (AES-256-GCM), Go Badger v2.2007 and RocksDB 7.8;
#   - random point reads with values from 2 threads for S seconds, every engine with a 256 MiB
#     block cache, and each run's cache hit ratio.
# Engines and settings:
#   SettDB  `settdb bench write -k 16 -v V` (defaults: snappy, 256 MiB block cache, 1 KiB value
#           threshold, so 1 KiB values live in the value log, sealed value-log files read through
#           mmap); encrypted: the same with
#           --encryption-key-file; reads `settdb bench read -g 2 --block-cache-mb 256` (keys
#           sampled by a key-only pass, one `view` per read). For 1 KiB values a second row
#           reads with `--value-log-mmap false` (a pread per value; the default mapping is how
#           Badger reads its value log too: v2's default ValueLogLoadingMode = MemoryMap).
#   Badger  `badger benchmark write -k 16 -v V` (v2 defaults); reads bench/badger-peer
#           `-mode read -threads 2 -block-cache-mb 256` (v2 defaults to no block cache; this sets
#           256 MiB; keys sampled by a key-only iteration, one View per read, as `badger
#           benchmark read` does).
#   RocksDB `db_bench --benchmarks=filluniquerandom,flush` (snappy, bloom 10 bits, incompressible
#           values), then `readrandom --threads 2 --duration S --cache_size 256 MiB --statistics`
#           (its block cache hit ratio from rocksdb.block.cache.hit / miss).
# Usage: [REPS=n] scripts/bench-caches.sh [work-dir] [read-seconds] [scale]
#   REPS (default 1) repeats every read run, the engines taking turns, and SettDB's plaintext
#   and encrypted loads in pairs (alternating which goes first), and reports medians (this
#   machine's throughput varies by up to 1.6x from run to run);
#   scale multiplies the key count (default 1: 1M keys per load); about 6 minutes at the
#   defaults on 2 cores after the builds. The databases are removed at the end unless
#   KEEP_DBS=1; the logs stay in the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/settdb-caches.XXXXXX)}
read_secs=${2:-10}
scale=${3:-1}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cache_mb=256
reps=${REPS:-1}
# Before each timed load: write back what earlier runs left dirty, so no load pays for the
# previous one's writeback (the first encrypted load of a run used to come in at half speed).
settle() { sync; sleep 1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# shellcheck source=scripts/peers.sh
. scripts/peers.sh
key=$work/master.key
head -c 32 /dev/urandom >"$key"
fmt='%-28s %10s %10s %10s %10s %8s %8s %8s\n'
rows=()
row() { # name settdb settdb-enc badger rocksdb
  rows+=("$(printf "$fmt" "$1" "$2" "$3" "$4" "$5" "$(ratio "$2" "$4")" "$(ratio "$2" "$5")" "$(ratio "$3" "$2")")")
}
hits=()
rss=()
runs=()

n=$(awk -v s="$scale" 'BEGIN{printf "%d", 1000000*s}')
m=$(awk -v n="$n" 'BEGIN{print n/1e6}')
echo "loads of $n x 128 B and $n x 1 KiB; reads ${read_secs}s from 2 threads, ${cache_mb} MiB block caches; work dir $work" >&2
for v in 128 1024; do
  rm -rf "$work/s-$v" "$work/e-$v" "$work/b-$v" "$work/r-$v"
  echo "load $n x $v B: settdb, settdb encrypted, badger, rocksdb..." >&2
  # SettDB's plaintext and encrypted loads REPS times, taking turns (the order alternating),
  # for the median of each and of their ratio per pair; the last of each is kept for reads.
  s_loads=; e_loads=; pair_ratios=
  for rep in $(seq "$reps"); do
    for which in $( [ $((rep % 2)) = 1 ] && echo "s e" || echo "e s"); do
      rm -rf "${work:?}/$which-$v"
      keyarg=(); [ "$which" = e ] && keyarg=(--encryption-key-file "$key")
      settle
      read -r wall rss_mb < <(timed "$work/$which-$v.log" "$settdb" bench write --dir "$work/$which-$v" \
        -k 16 -v "$v" -m "$m" "${keyarg[@]}")
      if [ "$which" = s ]; then s_wall=$wall; s_rss=$rss_mb; else e_wall=$wall; e_rss=$rss_mb; fi
    done
    s_loads+=" $(rate "$n" "$s_wall")"; e_loads+=" $(rate "$n" "$e_wall")"
    pair_ratios+=" $(ratio "$(rate "$n" "$e_wall")" "$(rate "$n" "$s_wall")")"
  done
  runs+=("load $v B, each pair: settdb$s_loads | settdb-enc$e_loads | enc/plain$pair_ratios")
  settle
  read -r b_wall b_rss < <(timed "$work/b-$v.log" badger benchmark write --dir "$work/b-$v" -k 16 -v "$v" -m "$m")
  settle
  read -r r_wall r_rss < <(timed "$work/r-$v.log" db_bench --benchmarks=filluniquerandom,flush --db="$work/r-$v" \
    --num="$n" --key_size=16 --value_size="$v" --threads=1 --sync=0 --compression_type=snappy \
    --compression_ratio=1 --bloom_bits=10 --cache_size=$((cache_mb << 20)))
  load_label="load $v B (entries/s)"
  [ "$reps" -gt 1 ] && load_label="load $v B (median of $reps)"
  row "$load_label" "$(echo "$s_loads" | median)" "$(echo "$e_loads" | median)" "$(rate "$n" "$b_wall")" "$(rate "$n" "$r_wall")"
  runs+=("load $v B, median enc/plain of the pairs: $(echo "$pair_ratios" | median)")
  rss+=("$(printf '%-28s %10s %10s %10s %10s\n' "load $v B peak RSS (MB)" "$s_rss" "$e_rss" "$b_rss" "$r_rss")")

  s_all=; e_all=; b_all=; r_all=; sm_all=; em_all=
  for rep in $(seq "$reps"); do
    echo "reads $v B (run $rep of $reps): settdb, settdb encrypted, badger, rocksdb..." >&2
    "$settdb" bench read --dir "$work/s-$v" -g 2 -d "${read_secs}s" --block-cache-mb $cache_mb >"$work/s-read-$v.log" 2>&1
    "$settdb" bench read --dir "$work/e-$v" -g 2 -d "${read_secs}s" --block-cache-mb $cache_mb \
      --encryption-key-file "$key" >"$work/e-read-$v.log" 2>&1
    if [ "$v" = 1024 ]; then
      "$settdb" bench read --dir "$work/s-$v" -g 2 -d "${read_secs}s" --block-cache-mb $cache_mb \
        --value-log-mmap false >"$work/sm-read-$v.log" 2>&1
      "$settdb" bench read --dir "$work/e-$v" -g 2 -d "${read_secs}s" --block-cache-mb $cache_mb \
        --value-log-mmap false --encryption-key-file "$key" >"$work/em-read-$v.log" 2>&1
      sm_all+=" $(sed -n 's/^  throughput  \([0-9,]*\) reads\/s.*/\1/p' "$work/sm-read-$v.log" | tr -d ,)"
      em_all+=" $(sed -n 's/^  throughput  \([0-9,]*\) reads\/s.*/\1/p' "$work/em-read-$v.log" | tr -d ,)"
    fi
    "$peer" -mode read -dir "$work/b-$v" -threads 2 -secs "$read_secs" -block-cache-mb $cache_mb >"$work/b-read-$v.log" 2>&1
    db_bench --benchmarks=readrandom --use_existing_db=1 --db="$work/r-$v" --num="$n" --key_size=16 \
      --value_size="$v" --threads=2 --duration="$read_secs" --bloom_bits=10 --compression_ratio=1 \
      --cache_size=$((cache_mb << 20)) --statistics >"$work/r-read-$v.log" 2>&1
    s_all+=" $(sed -n 's/^  throughput  \([0-9,]*\) reads\/s.*/\1/p' "$work/s-read-$v.log" | tr -d ,)"
    e_all+=" $(sed -n 's/^  throughput  \([0-9,]*\) reads\/s.*/\1/p' "$work/e-read-$v.log" | tr -d ,)"
    b_all+=" $(sed -n 's/.*per_s=\([0-9]*\).*/\1/p' "$work/b-read-$v.log")"
    r_all+=" $(awk '/^readrandom/ {for (i=1;i<=NF;i++) if ($i=="ops/sec;" || $i=="ops/sec") print $(i-1)}' "$work/r-read-$v.log" | head -1)"
  done
  echo "reads $v B per run: settdb$s_all; encrypted$e_all; badger$b_all; rocksdb$r_all" >&2
  runs+=("reads $v B, each run: settdb$s_all | settdb-enc$e_all | badger$b_all | rocksdb$r_all")
  s_r=$(echo "$s_all" | median); e_r=$(echo "$e_all" | median)
  b_r=$(echo "$b_all" | median); r_r=$(echo "$r_all" | median)
  label="reads $v B, 2 threads (/s)"
  [ "$reps" -gt 1 ] && label="reads $v B (median of $reps)"
  row "$label" "${s_r:-0}" "${e_r:-0}" "${b_r:-0}" "${r_r:-0}"
  if [ "$v" = 1024 ]; then
    sm_r=$(echo "$sm_all" | median); em_r=$(echo "$em_all" | median)
    row "  same, pread (value_log_mmap off)" "${sm_r:-0}" "${em_r:-0}" "${b_r:-0}" "${r_r:-0}"
    runs+=("reads $v B with pread, each run: settdb$sm_all | settdb-enc$em_all")
  fi
  s_h=$(sed -n 's/^  block cache hit ratio \([0-9.]*%\).*/\1/p' "$work/s-read-$v.log")
  e_h=$(sed -n 's/^  block cache hit ratio \([0-9.]*%\).*/\1/p' "$work/e-read-$v.log")
  b_h=$(sed -n 's/.*hit_ratio=\([0-9.]*\).*/\1/p' "$work/b-read-$v.log" | awk '{printf "%.1f%%", $1*100}')
  r_h=$(awk '/rocksdb.block.cache.hit COUNT/ {h=$4} /rocksdb.block.cache.miss COUNT/ {m=$4}
        END { if (h+m > 0) printf "%.1f%%", 100*h/(h+m); else print "-" }' "$work/r-read-$v.log")
  hits+=("$(printf '%-28s %10s %10s %10s %10s\n' "reads $v B cache hit ratio" "$s_h" "$e_h" "$b_h" "$r_h")")
  r_found=$(grep -o '([0-9]* of [0-9]* found)' "$work/r-read-$v.log" | head -1 || true)
  echo "rocksdb readrandom $v B: ${r_found:-?}" >&2
done

echo
echo "$n keys per load, 16-byte keys; reads ${read_secs}s from 2 threads; ${cache_mb} MiB block caches"
printf "$fmt" workload settdb "settdb-enc" badger rocksdb s/badger s/rocksdb enc/plain
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${hits[@]}"
echo
printf '%s\n' "${rss[@]}"
echo
printf '%s\n' "${runs[@]}"
echo "logs in $work"
if [ "${KEEP_DBS:-0}" != 1 ]; then
  rm -rf "$work"/[sebr]-128 "$work"/[sebr]-1024
  echo "databases removed (KEEP_DBS=1 keeps them)"
fi
