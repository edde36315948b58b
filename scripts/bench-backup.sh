#!/usr/bin/env bash
# Issue 11's benchmark: backup and restore against Go Badger v2.2007 in one session.
#   - N x 1 KiB (default 1M): SettDB's database from `settdb bench write -k 16 -v 1024`, Badger's
#     from `badger benchmark write -k 16 -v 1024` (both: random 16-byte keys, one version each,
#     defaults otherwise: SettDB snappy, 1 KiB value threshold, so the values live in the value
#     log; Badger v2 defaults, 1 KiB threshold too);
#   - `settdb backup` vs `badger backup` of those (to a file on the same disk, synced by
#     SettDB; Badger's tool does not sync);
#   - `settdb restore` of SettDB's backup into an empty directory (bulk load into tables), the
#     same with --load (the write path), and `badger restore` of Badger's backup (its default
#     --max-pending-writes 256);
#   - M x 16 KiB (default 100K): `settdb restore` into an empty directory against the disk's
#     sequential write bandwidth measured by dd with fdatasync in the same run.
# Each timing is the whole process (open, work, close) by /usr/bin/time, after `sync` and a
# 2 s pause (this VM's first writes after a large delete are sometimes 10x slower: one run
# of dd measured 179 MB/s, the next 3.3 GB/s); with REPS=n every run is repeated n times, the
# engines taking turns, and the median is reported with every run listed. Rates are keys/s
# and MB/s of backup file bytes.
# Usage: [REPS=n] scripts/bench-backup.sh [work-dir] [millions of 1 KiB keys] [thousands of 16 KiB keys]
# A work dir on tmpfs (/dev/shm/...) takes the disk out of the 1 KiB comparison (this VM's
# disk writes vary 5x from run to run); the 16 KiB row is then against tmpfs's dd rate.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/settdb-backup.XXXXXX)}
m=${2:-1}
k16=${3:-100}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# shellcheck source=scripts/peers.sh
. scripts/peers.sh
n=$(awk -v m="$m" 'BEGIN{printf "%d", m*1000000}')
mb() { awk -v b="$1" -v t="$2" 'BEGIN{ if (t > 0) printf "%.0f", b/1e6/t; else print 0 }'; }
size() { stat -c %s "$1"; }
fmt='%-42s %12s %10s %10s\n'
rows=()
row() { rows+=("$(printf "$fmt" "$1" "$2" "$3" "$4")"); }
reps=${REPS:-1}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Median wall seconds of REPS runs of a command (a fresh output path each run: $out is removed
# before it); every run's time goes to $runs.
quiet() { sync; sleep 2; }
timed_reps() { # label out-path command...
  local label=$1 out=$2; shift 2
  local all=
  for _ in $(seq "$reps"); do
    rm -rf "$out"; quiet
    read -r w _ < <(timed "$work/$label.log" "$@")
    all+=" $w"
  done
  echo "$label:$all" >>"$work/runs.txt"
  echo "$all" | median
}

rm -rf "$work"/s-* "$work"/b-* "$work"/*.bak "$work/runs.txt"
echo "loading $n x 1 KiB into settdb and badger..." >&2
timed "$work/s-load.log" "$settdb" bench write --dir "$work/s-src" -k 16 -v 1024 -m "$m" >/dev/null
timed "$work/b-load.log" badger benchmark write --dir "$work/b-src" -k 16 -v 1024 -m "$m" >/dev/null
sync

echo "backups..." >&2
s_bw=$(timed_reps s-backup "$work/s.bak" "$settdb" backup --dir "$work/s-src" -f "$work/s.bak")
m_bw=$(timed_reps s-backup-mmap "$work/m.bak" "$settdb" backup --value-log-mmap false --dir "$work/s-src" -f "$work/m.bak")
b_bw=$(timed_reps b-backup "$work/b.bak" badger backup --dir "$work/b-src" -f "$work/b.bak")
s_bytes=$(size "$work/s.bak"); b_bytes=$(size "$work/b.bak")
rm -f "$work/m.bak"
row "backup 1 KiB: settdb" "$(rate "$n" "$s_bw")" "$(mb "$s_bytes" "$s_bw")" "${s_bw}s"
row "backup 1 KiB: settdb --value-log-mmap false" "$(rate "$n" "$m_bw")" "$(mb "$s_bytes" "$m_bw")" "${m_bw}s"
row "backup 1 KiB: badger" "$(rate "$n" "$b_bw")" "$(mb "$b_bytes" "$b_bw")" "${b_bw}s"
row "  settdb / badger (pread / badger)" "$(ratio "$b_bw" "$s_bw")" "($(ratio "$b_bw" "$m_bw"))" ""

echo "restores..." >&2
s_rw=$(timed_reps s-restore "$work/s-dst" "$settdb" restore --dir "$work/s-dst" -f "$work/s.bak")
l_rw=$(timed_reps l-restore "$work/s-dst-load" "$settdb" restore --load --dir "$work/s-dst-load" -f "$work/s.bak")
b_rw=$(timed_reps b-restore "$work/b-dst" badger restore --dir "$work/b-dst" -f "$work/b.bak")
row "restore 1 KiB: settdb bulk load" "$(rate "$n" "$s_rw")" "$(mb "$s_bytes" "$s_rw")" "${s_rw}s"
row "restore 1 KiB: settdb --load (write path)" "$(rate "$n" "$l_rw")" "$(mb "$s_bytes" "$l_rw")" "${l_rw}s"
row "restore 1 KiB: badger" "$(rate "$n" "$b_rw")" "$(mb "$b_bytes" "$b_rw")" "${b_rw}s"
row "  settdb bulk / badger" "$(ratio "$b_rw" "$s_rw")" "" ""
rm -rf "$work"/s-dst* "$work"/b-dst "$work"/b-src "$work/b.bak"

n16=$(awk -v k="$k16" 'BEGIN{printf "%d", k*1000}')
m16=$(awk -v n="$n16" 'BEGIN{print n/1e6}')
echo "loading $n16 x 16 KiB into settdb..." >&2
rm -rf "$work/s-src"
timed "$work/s16-load.log" "$settdb" bench write --dir "$work/s16-src" -k 16 -v 16384 -m "$m16" >/dev/null
"$settdb" backup --dir "$work/s16-src" -f "$work/s16.bak" >/dev/null
rm -rf "$work/s16-src"
sync
echo "disk bandwidth (dd, 2 GiB, fdatasync) and 16 KiB restores, taking turns..." >&2
dd_all=; r16_all=
for _ in $(seq "$reps"); do
  rm -f "$work/dd.tmp"; quiet
  dd_out=$(dd if=/dev/zero of="$work/dd.tmp" bs=1M count=2048 conv=fdatasync 2>&1 | tail -1)
  rm -f "$work/dd.tmp"
  dd_all+=" $(echo "$dd_out" | awk '{for (i=1;i<=NF;i++) if ($i ~ /^(MB|GB)\/s/) { v=$(i-1); if ($i ~ /^GB/) v*=1000; print v }}' | tr ',' '.')"
  rm -rf "$work/s16-dst"; quiet
  read -r w _ < <(timed "$work/s16-restore.log" "$settdb" restore --dir "$work/s16-dst" -f "$work/s16.bak")
  r16_all+=" $w"
done
echo "dd MB/s:$dd_all" >>"$work/runs.txt"
echo "s16-restore:$r16_all" >>"$work/runs.txt"
disk_mb=$(echo "$dd_all" | median)
s16_rw=$(echo "$r16_all" | median)
s16_bytes=$(size "$work/s16.bak")
row "restore 16 KiB: settdb bulk load" "$(rate "$n16" "$s16_rw")" "$(mb "$s16_bytes" "$s16_rw")" "${s16_rw}s"
row "disk write bandwidth (dd fdatasync, MB/s)" "" "$disk_mb" ""
row "  restore / disk" "" "$(awk -v a="$(mb "$s16_bytes" "$s16_rw")" -v b="$disk_mb" 'BEGIN{ if (b>0) printf "%.2f", a/b }')" ""

echo
echo "$n x 1 KiB and $n16 x 16 KiB, 16-byte keys; whole processes timed"
printf "$fmt" workload keys/s MB/s wall
printf '%s\n' "${rows[@]}"
echo "every run (wall seconds; dd in MB/s):"
sed 's/^/  /' "$work/runs.txt"
echo "logs in $work"
rm -rf "$work"/s-src "$work"/s16-dst "$work"/*.bak
