//! kube-bootstrap: parse flags and the cluster config, write the PKI, print
//! one line per file.

use bootstrap::{ClusterConfig, Options};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "kube-bootstrap",
    version,
    about = "The cluster's PKI and kubeconfigs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Writes (or completes, or renews) the CAs, certificates, kubeconfigs,
    /// service-account key and encryption config of a cluster into --out.
    Pki(PkiArgs),
}

#[derive(Debug, clap::Args)]
struct PkiArgs {
    /// The cluster description (see the crate documentation).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The directory to write into; what it holds is kept where it fits.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Renew a leaf certificate expiring within this.
    #[arg(long, default_value = "720h", value_parser = common::cli::parse_duration)]
    renew_before: Duration,
    /// The validity of a new or renewed leaf certificate.
    #[arg(long, default_value = "8760h", value_parser = common::cli::parse_duration)]
    validity: Duration,
    /// The validity of a new CA.
    #[arg(long, default_value = "87600h", value_parser = common::cli::parse_duration)]
    ca_validity: Duration,
}

fn main() {
    let cli: Cli = common::cli::parse_or_exit();
    let Command::Pki(args) = cli.command;
    let options = Options {
        out_dir: args.out,
        renew_before: args.renew_before,
        validity: args.validity,
        ca_validity: args.ca_validity,
    };
    common::cli::settings_or_exit("kube-bootstrap", options.validate());
    let config = common::cli::settings_or_exit("kube-bootstrap", ClusterConfig::load(&args.config));
    match bootstrap::run(&config, &options, time::OffsetDateTime::now_utc()) {
        Ok(report) => {
            for file in &report.files {
                println!("{file}");
            }
            for warning in &report.warnings {
                eprintln!("kube-bootstrap: warning: {warning}");
            }
        }
        Err(e) => {
            eprintln!("kube-bootstrap: {e}");
            std::process::exit(1);
        }
    }
}
