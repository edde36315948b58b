#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while (opt-in; CI only checks that the targets compile).
# Usage: scripts/fuzz.sh <block_decode|table_open|log_replay|manifest_replay> [seconds]
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets the stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh <target> [seconds]}
secs=${2:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$secs"
