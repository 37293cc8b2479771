//! Why a run stopped. Nothing is written unless every existing file was
//! understood and everything new could be made; only [`Error::Read`] and
//! [`Error::Write`] (the disk) are worth retrying as they are.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An existing file that is not what its name says: it is left alone.
    #[error("{}: {reason}; refusing to overwrite it: fix or remove it", path.display())]
    Unusable { path: PathBuf, reason: String },
    /// Half of a CA or of the service-account key pair, which are never
    /// made again over what exists.
    #[error(
        "{} exists without {missing}, and {what} is never regenerated: restore {missing}, \
         or remove {} as well to make a new one",
        path.display(), path.display()
    )]
    Incomplete {
        path: PathBuf,
        missing: String,
        what: &'static str,
    },
    #[error("signing {}: {source}", path.display())]
    Sign {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
