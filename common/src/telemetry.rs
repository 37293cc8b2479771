//! Logging with `tracing`: RUST_LOG wins, else upstream's `-v` level maps to
//! info (0-1), debug (2-4) or trace (5+).

pub fn init(verbosity: u8) {
    let default = match verbosity {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
