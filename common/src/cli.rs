//! Flag parsing as every daemon does it: a bad flag exits with 64
//! (EX_USAGE) before anything is bound; --help and --version exit 0.

/// The parsed flags of this process, or exit.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(o) => o,
        Err(e) => {
            let code = if e.use_stderr() { 64 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}
