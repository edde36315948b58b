//! The subcommands, one per file; each has its flags (`*Args`, clap derive) and a `run`.
//!
//! To add one: a file here with its `Args` and `run`, a `pub mod` line below, and a variant
//! and a match arm in `main.rs`.

pub mod backup;
pub mod bank;
pub mod bank_disect;
pub mod bank_test;
pub mod bench;
pub mod bench_read;
pub mod bench_write;
pub mod delete;
pub mod drop;
pub mod dump;
pub mod flatten;
pub mod gc;
pub mod get;
pub mod info;
pub mod repair;
pub mod restore;
pub mod rotate;
pub mod scan;
pub mod set;
pub mod stream;
pub mod verify;
