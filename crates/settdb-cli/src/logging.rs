//! `-v` / `-vv`: the engine's `tracing` events to stderr (the library never installs a
//! subscriber; the tool does, only when asked, so without `-v` it prints what it always did).

use tracing_subscriber::EnvFilter;

/// Installs a stderr subscriber at info (`verbose` 1) or debug (2 or more); nothing at 0.
/// `RUST_LOG`, when set, replaces the level filter.
pub fn install(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // A second install cannot happen (one call from main); ignore it rather than panic.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
