// rocksdb-peer: drives RocksDB (Debian's librocksdb 7.8) through the benchmark driver protocol
// of docs/bench/protocol.md, for the workloads RocksDB's own db_bench lacks (YCSB mixes,
// scrambled-Zipfian and "latest" reads, with the protocol's key format). Build with build.sh.
//
// RocksDB is configured as its wiki page "Setup Options and Basic Tuning" advises:
//   - options.IncreaseParallelism(2): 2 background threads (this machine has 2 cores;
//     the header's advice is "the number of cores"), and
//     options.OptimizeLevelStyleCompaction() with its default 512 MiB memtable budget
//     (write_buffer_size 128 MiB, up to 6 write buffers, L0 trigger 2, L1 512 MiB).
//   - max_background_jobs = 2: the guide's sample sets 6 for a many-core server; it sizes this
//     to the cores, and IncreaseParallelism(2) sets the same value. Written out so it is seen.
//   - level_compaction_dynamic_level_bytes = true, bytes_per_sync = 1 MiB,
//     compaction_pri = kMinOverlappingRatio (the guide's sample; 7.8's default anyway).
//   - compression = kLZ4Compression, bottommost_compression = kZSTD (the guide's advice).
//     OptimizeLevelStyleCompaction() fills compression_per_level (no compression on L0/L1,
//     LZ4 below), which would override `compression`; it is cleared so every level but the
//     last uses LZ4 as the guide says. Debian's library links liblz4 and libzstd; if a
//     build lacks them (checked at run time), snappy is used instead and stderr says so.
//   - block-based table: format_version = 5, NewBloomFilterPolicy(10, false), LRU block cache
//     of 256 MiB (SettDB's and Badger's default), block_size = 16 KiB,
//     cache_index_and_filter_blocks = true, pin_l0_filter_and_index_blocks_in_cache = true.
//   - WriteOptions: sync = false, WAL on (every store in the comparison runs with sync off and
//     its log on). ReadOptions: defaults.
//   - create_if_missing for `load` (which also sets error_if_exists: it opens a *new*
//     database); the other workloads open an existing database and fail if there is none.
//
// load: 7.8 has no DB::WaitForCompact (it came in 8.x), so load ends with Flush (waiting) and
// Close. Close waits for the background jobs already running to end, but it first marks the
// database as shutting down, so a running compaction stops early and queued ones do not start:
// compaction work still owed at close is not in the load time (the next open resumes it).
//
// overwrite's reclamation ("wait for compactions"): poll every 100 ms until
// rocksdb.mem-table-flush-pending, rocksdb.num-running-flushes, rocksdb.compaction-pending and
// rocksdb.num-running-compactions are all 0 (the flush properties too, so a flush that is about
// to queue a compaction is not missed); that wait is gc_secs.
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "rocksdb-peer: %s\n", msg.c_str());
  std::fflush(stderr);
  std::_Exit(2);
}

[[noreturn]] void fail(const std::string& msg) {
  std::fprintf(stderr, "rocksdb-peer: %s\n", msg.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) fail(std::string(what) + ": " + s.ToString());
}

double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- keys, values, distributions (docs/bench/protocol.md) ----

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void put_be64(char* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (56 - 8 * i));
}

constexpr size_t kKeyLen = 16;

struct Key {
  char b[kKeyLen];
  explicit Key(uint64_t i) {
    put_be64(b, splitmix64(i));
    put_be64(b + 8, i);
  }
  rocksdb::Slice slice() const { return rocksdb::Slice(b, kKeyLen); }
};

uint64_t fnv64(uint64_t r) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (int i = 0; i < 8; i++) {
    h = (h ^ ((r >> (8 * i)) & 0xff)) * 0x100000001B3ULL;
  }
  return h & 0x7FFFFFFFFFFFFFFFULL;
}

constexpr double kTheta = 0.99;
constexpr double kZipfItems = 1e10;
constexpr double kZetaZipfItems = 26.46902820178302;  // zeta(10^10, 0.99)

double zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; i++) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

// YCSB's Zipfian rank generator over n items (rank 0 the most popular).
struct Zipf {
  double n, theta, zetan, alpha, zeta2, eta;
  Zipf(double n_, double theta_, double zetan_) : n(n_), theta(theta_), zetan(zetan_) {
    alpha = 1.0 / (1.0 - theta);
    zeta2 = 1.0 + std::pow(0.5, theta);
    eta = (1.0 - std::pow(2.0 / n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
  }
  uint64_t rank(double u) const {
    double uz = u * zetan;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta)) return 1;
    double r = std::floor(n * std::pow(eta * u - eta + 1.0, alpha));
    double max = n - 1.0;
    return static_cast<uint64_t>(r < max ? r : max);
  }
};

const Zipf kScrambled(kZipfItems, kTheta, kZetaZipfItems);

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
}

// Scrambled Zipfian index in [0, n).
uint64_t zipf_index(std::mt19937_64& rng, uint64_t n) {
  return fnv64(kScrambled.rank(uniform01(rng))) % n;
}

std::mt19937_64 thread_rng(uint64_t seed, uint64_t thread) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(thread), static_cast<uint32_t>(thread >> 32)};
  return std::mt19937_64(seq);
}

constexpr size_t kPoolLen = 16 << 20;

struct ValuePool {
  std::vector<char> pool;
  size_t v;
  ValuePool(size_t value_size, uint64_t seed) : pool(kPoolLen), v(value_size) {
    // Its own stream: thread numbers are small, this one is not.
    std::mt19937_64 rng = thread_rng(seed, ~0ULL);
    for (size_t i = 0; i < kPoolLen; i += 8) {
      uint64_t w = rng();
      std::memcpy(&pool[i], &w, 8);
    }
  }
  rocksdb::Slice next(std::mt19937_64& rng) const {
    size_t off = uniform_below(rng, kPoolLen - v + 1);
    return rocksdb::Slice(pool.data() + off, v);
  }
};

// ---- latency ----

struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0;
};

// Nearest rank: the smallest sample with at least q of all samples at or below it.
Percentiles percentiles(std::vector<std::vector<double>>& per_thread) {
  std::vector<double> all;
  size_t total = 0;
  for (auto& v : per_thread) total += v.size();
  all.reserve(total);
  for (auto& v : per_thread) {
    all.insert(all.end(), v.begin(), v.end());
    std::vector<double>().swap(v);
  }
  Percentiles p;
  if (all.empty()) return p;
  std::sort(all.begin(), all.end());
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(all.size())));
    if (rank < 1) rank = 1;
    if (rank > all.size()) rank = all.size();
    return all[rank - 1];
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  return p;
}

double micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// ---- flags ----

struct Args {
  std::string workload, dir;
  uint64_t records = 0, value_size = 0, threads = 1, batch = 1000, scan_len = 50;
  uint64_t insert_start = 0, ops = 0, seed = 1;
  double secs = 10;
  double write_rate = 0;  // read-while-writing: records/s, 0 = as fast as it can
  bool zipf = false, long_txn = false;
  bool have_records = false, have_value_size = false, have_insert_start = false,
       have_ops = false;
};

uint64_t parse_u64(const std::string& name, const std::string& s) {
  if (s.empty() || s[0] == '-' || s[0] == '+') usage_error("bad value for --" + name + ": " + s);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') usage_error("bad value for --" + name + ": " + s);
  return v;
}

double parse_f64(const std::string& name, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || errno != 0 || *end != '\0' || !(v >= 0) || std::isinf(v))
    usage_error("bad value for --" + name + ": " + s);
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    // Go's flag package: -name or --name, with the value as the next argument or after '='.
    if (arg.size() < 2 || arg[0] != '-') usage_error("unexpected argument: " + arg);
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool have_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      have_value = true;
    }
    auto val = [&]() -> std::string {
      if (have_value) return value;
      if (i + 1 >= argc) usage_error("flag needs a value: --" + name);
      return argv[++i];
    };
    if (name == "workload") a.workload = val();
    else if (name == "dir") a.dir = val();
    else if (name == "records") a.records = parse_u64(name, val()), a.have_records = true;
    else if (name == "value-size") a.value_size = parse_u64(name, val()), a.have_value_size = true;
    else if (name == "threads") a.threads = parse_u64(name, val());
    else if (name == "secs") a.secs = parse_f64(name, val());
    else if (name == "dist") {
      std::string d = val();
      if (d == "uniform") a.zipf = false;
      else if (d == "zipf") a.zipf = true;
      else usage_error("bad value for --dist: " + d + " (uniform or zipf)");
    } else if (name == "txn") {
      std::string t = val();
      if (t == "view") a.long_txn = false;
      else if (t == "long") a.long_txn = true;
      else usage_error("bad value for --txn: " + t + " (view or long)");
    } else if (name == "batch") a.batch = parse_u64(name, val());
    else if (name == "scan-len") a.scan_len = parse_u64(name, val());
    else if (name == "insert-start") a.insert_start = parse_u64(name, val()), a.have_insert_start = true;
    else if (name == "ops") a.ops = parse_u64(name, val()), a.have_ops = true;
    else if (name == "seed") a.seed = parse_u64(name, val());
    else if (name == "write-rate") a.write_rate = parse_f64(name, val());
    else usage_error("unknown flag: " + arg);
  }
  static const char* known[] = {"load", "read", "scan", "scan-short", "ycsb-a", "ycsb-b",
                                "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f", "overwrite",
                                "read-while-writing"};
  if (a.workload.empty()) usage_error("--workload is required");
  if (std::find(std::begin(known), std::end(known), a.workload) == std::end(known))
    usage_error("unknown workload: " + a.workload);
  if (a.dir.empty()) usage_error("--dir is required");
  if (!a.have_records) usage_error("--records is required");
  if (!a.have_value_size) usage_error("--value-size is required");
  if (!a.have_insert_start) a.insert_start = a.records;
  if (!a.have_ops) a.ops = a.records;
  if (a.threads < 1) usage_error("--threads must be at least 1");
  if (a.batch < 1) usage_error("--batch must be at least 1");
  if (a.value_size > kPoolLen) usage_error("--value-size must be at most 16 MiB");
  if (a.records >= (1ULL << 63)) usage_error("--records must be below 2^63");
  return a;
}

// ---- RocksDB ----

bool supported(rocksdb::CompressionType t) {
  for (auto c : rocksdb::GetSupportedCompressions())
    if (c == t) return true;
  return false;
}

rocksdb::Options make_options(bool create) {
  rocksdb::Options o;
  o.IncreaseParallelism(2);
  o.OptimizeLevelStyleCompaction();
  o.max_background_jobs = 2;
  o.level_compaction_dynamic_level_bytes = true;
  o.bytes_per_sync = 1 << 20;
  o.compaction_pri = rocksdb::kMinOverlappingRatio;
  o.compression_per_level.clear();  // see the top comment
  if (supported(rocksdb::kLZ4Compression)) {
    o.compression = rocksdb::kLZ4Compression;
  } else {
    std::fprintf(stderr, "rocksdb-peer: LZ4 not in this librocksdb, using snappy\n");
    o.compression = rocksdb::kSnappyCompression;
  }
  if (supported(rocksdb::kZSTD)) {
    o.bottommost_compression = rocksdb::kZSTD;
  } else {
    std::fprintf(stderr, "rocksdb-peer: ZSTD not in this librocksdb, using snappy at the bottom\n");
    o.bottommost_compression = rocksdb::kSnappyCompression;
  }
  rocksdb::BlockBasedTableOptions t;
  t.format_version = 5;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  t.block_cache = rocksdb::NewLRUCache(256 << 20);
  t.block_size = 16 << 10;
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  o.create_if_missing = create;
  o.error_if_exists = create;
  return o;
}

rocksdb::WriteOptions write_options() {
  rocksdb::WriteOptions w;
  w.sync = false;
  w.disableWAL = false;
  return w;
}

std::unique_ptr<rocksdb::DB> open_db(const std::string& dir, bool create) {
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::Open(make_options(create), dir, &db), "open");
  return std::unique_ptr<rocksdb::DB>(db);
}

void close_db(std::unique_ptr<rocksdb::DB>& db) {
  check(db->Close(), "close");
  db.reset();
}

// Get key i; true if found with a value of v bytes. Not found is false; other errors exit.
bool get(rocksdb::DB* db, const rocksdb::ReadOptions& ro, uint64_t i, size_t v,
         rocksdb::PinnableSlice* buf) {
  Key k(i);
  buf->Reset();
  rocksdb::Status s = db->Get(ro, db->DefaultColumnFamily(), k.slice(), buf);
  if (s.IsNotFound()) return false;
  check(s, "get");
  return buf->size() == v;
}

void put(rocksdb::DB* db, uint64_t i, const rocksdb::Slice& value) {
  Key k(i);
  check(db->Put(write_options(), k.slice(), value), "put");
}

// Seek to key i and read up to len entries with their values; false if key i is not there or a
// value has the wrong length.
bool short_scan(rocksdb::DB* db, uint64_t i, uint64_t len, size_t v) {
  Key k(i);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->Seek(k.slice());
  bool ok = it->Valid() && it->key() == k.slice();
  for (uint64_t j = 0; j < len && it->Valid();) {
    if (it->key().size() != kKeyLen || it->value().size() != v) ok = false;
    if (++j < len) it->Next();  // L entries: Seek, then L-1 Nexts
  }
  check(it->status(), "iterator");
  return ok;
}

struct Result {
  uint64_t ops = 0;
  double secs = 0;
  bool has_missing = false;
  uint64_t missing = 0;
  bool has_inserts = false;
  uint64_t inserts = 0;
  bool has_bytes = false;
  uint64_t bytes = 0;
  bool has_writes = false;
  uint64_t writes = 0;
  bool has_lat = false;
  Percentiles lat;
  bool has_gc = false;
  double gc_secs = 0;
};

void print_result(const Result& r) {
  std::string line = "RESULT ops=" + std::to_string(r.ops);
  char buf[128];
  std::snprintf(buf, sizeof buf, " secs=%.6f", r.secs);
  line += buf;
  if (r.has_missing) line += " missing=" + std::to_string(r.missing);
  if (r.has_inserts) line += " inserts=" + std::to_string(r.inserts);
  if (r.has_bytes) line += " bytes=" + std::to_string(r.bytes);
  if (r.has_writes) line += " writes=" + std::to_string(r.writes);
  if (r.has_lat) {
    std::snprintf(buf, sizeof buf, " p50_us=%.3f p99_us=%.3f p999_us=%.3f", r.lat.p50,
                  r.lat.p99, r.lat.p999);
    line += buf;
  }
  if (r.has_gc) {
    std::snprintf(buf, sizeof buf, " gc_secs=%.6f", r.gc_secs);
    line += buf;
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Runs body(t) on T threads started together; returns the seconds from the start to the last
// thread's end. *start_out (if given) is the start, set before the threads are let go.
template <class F>
double run_threads(uint64_t threads, F body, Clock::time_point* start_out = nullptr) {
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (uint64_t t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      body(t);
    });
  }
  Clock::time_point start = Clock::now();
  if (start_out != nullptr) *start_out = start;
  go.store(true, std::memory_order_release);
  for (auto& th : ts) th.join();
  return secs_since(start);
}

Clock::duration secs_duration(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// ---- workloads ----

Result load(const Args& a, const ValuePool& pool) {
  std::mt19937_64 rng = thread_rng(a.seed, 0);
  rocksdb::WriteOptions wo = write_options();
  Clock::time_point start = Clock::now();
  auto db = open_db(a.dir, true);
  rocksdb::WriteBatch wb;
  for (uint64_t i = 0; i < a.records;) {
    wb.Clear();
    for (uint64_t j = 0; j < a.batch && i < a.records; j++, i++) {
      Key k(i);
      check(wb.Put(k.slice(), pool.next(rng)), "batch put");
    }
    check(db->Write(wo, &wb), "write");
  }
  check(db->Flush(rocksdb::FlushOptions()), "flush");
  close_db(db);
  Result r;
  r.ops = a.records;
  r.secs = secs_since(start);
  return r;
}

void need_records(const Args& a) {
  if (a.records == 0) usage_error("--records must be at least 1 for " + a.workload);
}

// The result of a timed run over threads: their operations and misses summed.
Result threads_result(const std::vector<uint64_t>& ops, const std::vector<uint64_t>& missing,
                      double secs) {
  Result r;
  for (size_t t = 0; t < ops.size(); t++) r.ops += ops[t], r.missing += missing[t];
  r.secs = secs;
  r.has_missing = true;
  return r;
}

Result read(const Args& a) {
  need_records(a);
  auto db = open_db(a.dir, false);
  std::vector<uint64_t> ops(a.threads), missing(a.threads);
  Clock::duration len = secs_duration(a.secs);
  double secs = run_threads(a.threads, [&](uint64_t t) {
    std::mt19937_64 rng = thread_rng(a.seed, t);
    rocksdb::ReadOptions ro;
    if (a.long_txn) ro.snapshot = db->GetSnapshot();
    rocksdb::PinnableSlice buf;
    uint64_t n = 0, miss = 0;
    Clock::time_point end = Clock::now() + len;
    while (Clock::now() < end) {
      uint64_t i = a.zipf ? zipf_index(rng, a.records) : uniform_below(rng, a.records);
      if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
      n++;
    }
    buf.Reset();
    if (ro.snapshot != nullptr) db->ReleaseSnapshot(ro.snapshot);
    ops[t] = n;
    missing[t] = miss;
  });
  close_db(db);
  return threads_result(ops, missing, secs);
}

Result scan(const Args& a) {
  auto db = open_db(a.dir, false);
  Clock::time_point start = Clock::now();
  uint64_t n = 0, bytes = 0, bad = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key(), v = it->value();
      bytes += k.size() + v.size();
      if (v.size() != a.value_size) bad++;
      n++;
    }
    check(it->status(), "iterator");
  }
  Result r;
  r.secs = secs_since(start);
  close_db(db);
  r.ops = n;
  r.bytes = bytes;
  r.has_bytes = true;
  // Records 0..N must all be there (inserts of YCSB D/E runs may add more).
  r.missing = bad + (n < a.records ? a.records - n : 0);
  r.has_missing = true;
  return r;
}

Result scan_short(const Args& a) {
  need_records(a);
  if (a.scan_len < 1) usage_error("--scan-len must be at least 1");
  auto db = open_db(a.dir, false);
  std::vector<uint64_t> ops(a.threads), missing(a.threads);
  Clock::duration len = secs_duration(a.secs);
  double secs = run_threads(a.threads, [&](uint64_t t) {
    std::mt19937_64 rng = thread_rng(a.seed, t);
    uint64_t n = 0, miss = 0;
    Clock::time_point end = Clock::now() + len;
    while (Clock::now() < end) {
      if (!short_scan(db.get(), uniform_below(rng, a.records), a.scan_len, a.value_size)) miss++;
      n++;
    }
    ops[t] = n;
    missing[t] = miss;
  });
  close_db(db);
  return threads_result(ops, missing, secs);
}

// One thread's published insert count, on its own cache line.
struct alignas(64) Published {
  std::atomic<uint64_t> k{0};
};

Result ycsb(const Args& a, char mix, const ValuePool& pool) {
  need_records(a);
  auto db = open_db(a.dir, false);
  const uint64_t T = a.threads, N = a.records, M = a.insert_start;
  // Insert indexes M + t + k*T must stay below 2^63 (checked per insert below).
  std::vector<Published> published(T);
  std::unique_ptr<Zipf> latest;
  if (mix == 'd') latest.reset(new Zipf(static_cast<double>(N), kTheta, zeta(N, kTheta)));
  std::vector<uint64_t> ops(T), missing(T), inserts(T);
  std::vector<std::vector<double>> lat(T);
  Clock::duration len = secs_duration(a.secs);
  double secs = run_threads(T, [&](uint64_t t) {
    std::mt19937_64 rng = thread_rng(a.seed, t);
    rocksdb::ReadOptions ro;
    rocksdb::PinnableSlice buf;
    std::vector<double>& l = lat[t];
    l.reserve(1 << 16);
    uint64_t n = 0, miss = 0, k = 0;
    auto insert = [&]() {
      uint64_t idx = M + t + k * T;
      if (idx >= (1ULL << 63)) fail("insert index passed 2^63");
      put(db.get(), idx, pool.next(rng));
      k++;
      published[t].k.store(k, std::memory_order_release);
    };
    Clock::time_point end = Clock::now() + len;
    for (;;) {
      Clock::time_point s = Clock::now();
      if (s >= end) break;
      double op = uniform01(rng);
      switch (mix) {
        case 'a':
        case 'b': {
          uint64_t i = zipf_index(rng, N);
          if (op < (mix == 'a' ? 0.5 : 0.95)) {
            if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
          } else {
            put(db.get(), i, pool.next(rng));
          }
          break;
        }
        case 'c':
          if (!get(db.get(), ro, zipf_index(rng, N), a.value_size, &buf)) miss++;
          break;
        case 'd':
          if (op < 0.95) {
            uint64_t fin = UINT64_MAX;
            for (uint64_t u = 0; u < T; u++)
              fin = std::min(fin, published[u].k.load(std::memory_order_acquire));
            uint64_t list = N + T * fin;  // records 0..N, then inserts M, M+1, ...
            uint64_t rank = std::min(latest->rank(uniform01(rng)), list - 1);
            uint64_t pos = list - 1 - rank;
            uint64_t i = pos < N ? pos : M + (pos - N);
            if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
          } else {
            insert();
          }
          break;
        case 'e':
          if (op < 0.95) {
            uint64_t i = zipf_index(rng, N);
            uint64_t scan_len = 1 + uniform_below(rng, 100);
            if (!short_scan(db.get(), i, scan_len, a.value_size)) miss++;
          } else {
            insert();
          }
          break;
        case 'f': {
          uint64_t i = zipf_index(rng, N);
          if (op < 0.5) {
            if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
          } else {
            if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
            put(db.get(), i, pool.next(rng));
          }
          break;
        }
      }
      l.push_back(micros(s, Clock::now()));
      n++;
    }
    buf.Reset();
    ops[t] = n;
    missing[t] = miss;
    inserts[t] = k;
  });
  close_db(db);
  Result r = threads_result(ops, missing, secs);
  for (uint64_t t = 0; t < T; t++) r.inserts += inserts[t];
  r.has_inserts = mix == 'd' || mix == 'e';
  r.lat = percentiles(lat);
  r.has_lat = true;
  return r;
}

bool int_property(rocksdb::DB* db, const std::string& name, uint64_t* v) {
  if (!db->GetIntProperty(name, v)) fail("no property " + name);
  return *v == 0;
}

Result overwrite(const Args& a, const ValuePool& pool) {
  need_records(a);
  auto db = open_db(a.dir, false);
  std::mt19937_64 rng = thread_rng(a.seed, 0);
  rocksdb::WriteOptions wo = write_options();
  rocksdb::WriteBatch wb;
  Clock::time_point start = Clock::now();
  for (uint64_t done = 0; done < a.ops;) {
    wb.Clear();
    for (uint64_t j = 0; j < a.batch && done < a.ops; j++, done++) {
      Key k(uniform_below(rng, a.records));
      check(wb.Put(k.slice(), pool.next(rng)), "batch put");
    }
    check(db->Write(wo, &wb), "write");
  }
  Result r;
  r.ops = a.ops;
  r.secs = secs_since(start);
  Clock::time_point gc = Clock::now();
  for (;;) {
    uint64_t v;
    bool idle = int_property(db.get(), rocksdb::DB::Properties::kMemTableFlushPending, &v);
    idle = int_property(db.get(), rocksdb::DB::Properties::kNumRunningFlushes, &v) && idle;
    idle = int_property(db.get(), rocksdb::DB::Properties::kCompactionPending, &v) && idle;
    idle = int_property(db.get(), rocksdb::DB::Properties::kNumRunningCompactions, &v) && idle;
    if (idle) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  r.gc_secs = secs_since(gc);
  r.has_gc = true;
  close_db(db);
  return r;
}

Result read_while_writing(const Args& a, const ValuePool& pool) {
  need_records(a);
  auto db = open_db(a.dir, false);
  const uint64_t T = a.threads;
  std::vector<uint64_t> ops(T), missing(T);
  std::vector<std::vector<double>> lat(T);
  std::vector<Clock::time_point> reader_end(T);
  Clock::time_point start;
  uint64_t writes = 0;
  Clock::duration len = secs_duration(a.secs);
  // Threads 0..T-1 read; thread T is the writer (so its random stream differs from theirs).
  // All start together and stop at the same deadline; the writer counts the batches it began
  // before it. Timed: the start to the last reader's end (the writer's last batch may end
  // later).
  run_threads(T + 1, [&](uint64_t t) {
    std::mt19937_64 rng = thread_rng(a.seed, t);
    Clock::time_point end = Clock::now() + len;
    if (t == T) {
      rocksdb::WriteOptions wo = write_options();
      rocksdb::WriteBatch wb;
      Clock::time_point began = Clock::now();
      while (Clock::now() < end) {
        if (a.write_rate > 0) {
          // At most R records per second: the next batch starts at writes / R.
          Clock::time_point due = began + secs_duration(writes / a.write_rate);
          while (Clock::now() < due && Clock::now() < end)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          if (Clock::now() >= end) break;
        }
        wb.Clear();
        for (uint64_t j = 0; j < a.batch; j++) {
          Key k(uniform_below(rng, a.records));
          check(wb.Put(k.slice(), pool.next(rng)), "batch put");
        }
        check(db->Write(wo, &wb), "write");
        writes += a.batch;
      }
      return;
    }
    rocksdb::ReadOptions ro;
    rocksdb::PinnableSlice buf;
    std::vector<double>& l = lat[t];
    l.reserve(1 << 16);
    uint64_t n = 0, miss = 0;
    for (;;) {
      Clock::time_point s = Clock::now();
      if (s >= end) break;
      uint64_t i = a.zipf ? zipf_index(rng, a.records) : uniform_below(rng, a.records);
      if (!get(db.get(), ro, i, a.value_size, &buf)) miss++;
      l.push_back(micros(s, Clock::now()));
      n++;
    }
    reader_end[t] = Clock::now();
    buf.Reset();
    ops[t] = n;
    missing[t] = miss;
  }, &start);
  double secs = std::chrono::duration<double>(
      *std::max_element(reader_end.begin(), reader_end.end()) - start).count();
  close_db(db);
  Result r = threads_result(ops, missing, secs);
  r.writes = writes;
  r.has_writes = true;
  r.lat = percentiles(lat);
  r.has_lat = true;
  return r;
}

// ---- selftest ----

int selftest() {
  int bad = 0;
  auto hex = [](const Key& k) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (char c : k.b) {
      unsigned char u = static_cast<unsigned char>(c);
      s += d[u >> 4];
      s += d[u & 15];
    }
    return s;
  };
  auto expect = [&](const char* what, const std::string& got, const std::string& want) {
    if (got != want) {
      std::fprintf(stderr, "selftest: %s = %s, want %s\n", what, got.c_str(), want.c_str());
      bad++;
    }
  };
  expect("key(0)", hex(Key(0)), "e220a8397b1dcdaf0000000000000000");
  expect("key(1)", hex(Key(1)), "910a2dec89025cc10000000000000001");
  // fnv64 per the spec (FNV-1a over the 8 bytes, least significant first, top bit cleared),
  // values computed independently in Python.
  expect("fnv64(0)", std::to_string(fnv64(0)), std::to_string(0x28C7F832281A39C5ULL));
  expect("fnv64(1)", std::to_string(fnv64(1)), std::to_string(0x09CD31291D2AEFA4ULL));
  expect("fnv64(2^63+1) top bit", std::to_string(fnv64((1ULL << 63) + 1) >> 63), "0");
  // Zipf: ranks in [0, 10^10), indexes in [0, n), rank 0 the most frequent of 100000 draws.
  std::mt19937_64 rng = thread_rng(1, 0);
  std::map<uint64_t, uint64_t> counts;
  const uint64_t n = 20000;
  for (int j = 0; j < 100000; j++) {
    uint64_t r = kScrambled.rank(uniform01(rng));
    if (r >= 10000000000ULL) {
      std::fprintf(stderr, "selftest: zipf rank %" PRIu64 " out of range\n", r);
      bad++;
      break;
    }
    counts[r]++;
    if (fnv64(r) % n >= n) bad++;
  }
  uint64_t top = 0, top_count = 0;
  for (auto& c : counts)
    if (c.second > top_count) top = c.first, top_count = c.second;
  if (top != 0) {
    std::fprintf(stderr, "selftest: most frequent zipf rank is %" PRIu64 ", want 0\n", top);
    bad++;
  }
  // The unscrambled generator of "latest" over n items stays below n.
  Zipf latest(static_cast<double>(n), kTheta, zeta(n, kTheta));
  for (int j = 0; j < 100000; j++)
    if (latest.rank(uniform01(rng)) >= n) {
      std::fprintf(stderr, "selftest: latest rank out of range\n");
      bad++;
      break;
    }
  if (bad == 0) std::fprintf(stderr, "selftest: ok (rank 0 drawn %" PRIu64 " of 100000)\n", top_count);
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--selftest" || std::string(argv[1]) == "-selftest"))
    return selftest();
  Args a = parse_args(argc, argv);
  ValuePool pool(a.value_size, a.seed);  // made once, not timed
  Result r;
  const std::string& w = a.workload;
  if (w == "load") r = load(a, pool);
  else if (w == "read") r = read(a);
  else if (w == "scan") r = scan(a);
  else if (w == "scan-short") r = scan_short(a);
  else if (w.rfind("ycsb-", 0) == 0) r = ycsb(a, w[5], pool);
  else if (w == "overwrite") r = overwrite(a, pool);
  else r = read_while_writing(a, pool);
  print_result(r);
  return 0;
}
