//! [`CompressionArg`]: the `--compression` flag's values.

use settdb::Compression;

/// Block compression of tables, as spelled on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    /// No compression.
    None,
    /// Snappy (the default, as in Badger).
    Snappy,
    /// Zstandard at the library's default level (1).
    Zstd,
    /// LZ4.
    Lz4,
}

impl CompressionArg {
    /// The library's value; `zstd_level` is the level chosen for Zstandard.
    pub fn to_compression(self, zstd_level: i32) -> Compression {
        match self {
            CompressionArg::None => Compression::None,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Zstd => Compression::Zstd(zstd_level),
            CompressionArg::Lz4 => Compression::Lz4,
        }
    }
}
