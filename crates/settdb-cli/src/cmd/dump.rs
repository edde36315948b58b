//! `settdb dump`: prints a backup file's frames and their KVs, for inspection (no database
//! is opened). One line per frame (offset, KVs, bytes) and, unless `--frames-only`, one per
//! KV: key, version, meta and user meta bytes, expiry, value length and its first bytes.
//! Stops with an error naming the frame's offset at the first damage.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use settdb::backup::FrameReader;

use crate::cli_error::{CliError, CliResult};
use crate::encoding::display_key;

/// Flags of `dump`.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// The backup file (`-`: standard input).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Print only one line per frame.
    #[arg(long)]
    pub frames_only: bool,
}

/// Runs `dump`.
pub fn run(args: DumpArgs) -> CliResult {
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).map_err(|e| {
            CliError::new(format!("cannot open backup {}: {e}", args.file.display()))
        })?)
    };
    let mut frames = FrameReader::new(BufReader::with_capacity(1 << 20, input));
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut n_frames, mut n_kvs) = (0u64, 0u64);
    let write_err = |e: std::io::Error| CliError::new(format!("cannot write to stdout: {e}"));
    loop {
        let next = frames
            .next_frame()
            .map_err(|e| CliError::new(format!("{}: {e}", args.file.display())))?;
        let Some((offset, list)) = next else { break };
        let bytes = frames.offset() - offset;
        writeln!(
            out,
            "frame {n_frames} at offset {offset}: {} KVs, {bytes} bytes",
            list.kv.len()
        )
        .map_err(write_err)?;
        n_frames += 1;
        n_kvs += list.kv.len() as u64;
        if args.frames_only {
            continue;
        }
        for kv in &list.kv {
            writeln!(
                out,
                "  {} @{} meta={} user_meta={} expires_at={} stream={}{} value={}B {}",
                display_key(&kv.key, 64),
                kv.version,
                hex_bytes(&kv.meta),
                hex_bytes(&kv.user_meta),
                kv.expires_at,
                kv.stream_id,
                if kv.stream_done { " stream_done" } else { "" },
                kv.value.len(),
                display_key(&kv.value[..kv.value.len().min(32)], 32),
            )
            .map_err(write_err)?;
        }
    }
    writeln!(
        out,
        "{n_frames} frames, {n_kvs} KVs, {} bytes",
        frames.offset()
    )
    .map_err(write_err)?;
    out.flush().map_err(write_err)
}

fn hex_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        "-".to_string()
    } else {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
