#!/bin/sh
# Builds the RocksDB benchmark driver (bench/rocksdb-peer/main.cc) against Debian's librocksdb
# (apt-get install librocksdb-dev). Usage: bench/rocksdb-peer/build.sh OUTPUT
set -eu
out=${1:?usage: $0 OUTPUT}
exec g++ -O2 -std=c++17 -Wall -Wextra -o "$out" "$(dirname "$0")/main.cc" -lrocksdb -lpthread
