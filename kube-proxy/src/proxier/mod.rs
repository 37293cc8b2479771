//! Turning the Service ports into kernel rules: nftables (the default) or
//! iptables, the same behaviour in both. A proxier remembers what it last
//! applied and writes only the difference; after a failure (or at the
//! start) it writes everything.

pub mod chains;
pub mod conntrack;
pub mod iptables;
pub mod nftables;

use crate::state::ServicePort;
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Nftables,
    Iptables,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "" | "nftables" => Ok(Mode::Nftables),
            "iptables" => Ok(Mode::Iptables),
            "ipvs" => Err("proxy mode \"ipvs\" is not supported: this kernel has no IPVS, and this kube-proxy does not implement it; use nftables or iptables".into()),
            other => Err(format!("unknown proxy mode {other:?}: choose nftables or iptables")),
        }
    }
}

/// Which local addresses node ports answer on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePortAddresses {
    /// Every local address.
    All,
    /// Local addresses within these CIDRs.
    Cidrs(Vec<Ipv4Net>),
}

/// What the rules depend on besides the Services.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--cluster-cidr`: traffic to a ClusterIP from outside it is
    /// masqueraded, so replies come back through this node.
    pub cluster_cidr: Option<Ipv4Net>,
    pub masquerade_all: bool,
    /// The fwmark bit that asks for masquerading (upstream: 14).
    pub masquerade_bit: u8,
    pub nodeport_addresses: NodePortAddresses,
    /// iptables only: node ports also on 127.0.0.1 (sets route_localnet).
    pub localhost_nodeports: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_cidr: None,
            masquerade_all: false,
            masquerade_bit: 14,
            nodeport_addresses: NodePortAddresses::All,
            localhost_nodeports: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
}

/// Runs `program` with `stdin`, returning its stdout.
pub async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
    let spawn_err = |source| Error::Spawn {
        program: program.into(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.map_err(spawn_err)?;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        stderr.truncate(4096);
        return Err(Error::Failed {
            program: program.into(),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub struct Proxier {
    mode: Mode,
    cfg: Config,
    /// The rules in the kernel, per Service port id (nftables), so a sync
    /// renders and diffs only the ports that changed.
    nft: Option<BTreeMap<String, nftables::Rendered>>,
    ipt: Option<iptables::Rendered>,
    /// The ports the last successful sync programmed.
    last: Vec<ServicePort>,
}

impl Proxier {
    pub fn new(mode: Mode, cfg: Config) -> Self {
        Proxier {
            mode,
            cfg,
            nft: None,
            ipt: None,
            last: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Programs `ports`; true when the whole ruleset was written.
    pub async fn sync(&mut self, ports: &[ServicePort]) -> Result<bool, Error> {
        let full = match self.mode {
            Mode::Nftables => {
                let full = self.nft.is_none();
                let mut applied = self.nft.take().unwrap_or_default();
                let mut before = nftables::Rendered::default();
                let mut after = nftables::Rendered::default();
                let programmed: std::collections::HashMap<String, &ServicePort> =
                    self.last.iter().map(|p| (p.id(), p)).collect();
                let mut now = BTreeMap::new();
                for p in ports {
                    let id = p.id();
                    let rules = match applied.remove(&id) {
                        Some(rules) if programmed.get(&id) == Some(&p) => rules,
                        old => {
                            if let Some(rules) = old {
                                before.merge(&rules);
                            }
                            let rules = nftables::render_port(&self.cfg, p);
                            after.merge(&rules);
                            rules
                        }
                    };
                    now.insert(id, rules);
                }
                for rules in applied.values() {
                    before.merge(rules);
                }
                // The diff of the changed ports' rules is the diff of all.
                let script = nftables::script(&self.cfg, (!full).then_some(&before), &after);
                if !script.is_empty() {
                    run("nft", &["-f", "-"], Some(&script)).await?;
                }
                self.nft = Some(now);
                full
            }
            Mode::Iptables => {
                let full = self.ipt.is_none();
                let new = iptables::render(&self.cfg, ports);
                let (stale, missing) = if full {
                    if self.cfg.localhost_nodeports {
                        set_sysctl("net/ipv4/conf/all/route_localnet", "1");
                    }
                    iptables_state().await?
                } else {
                    (Vec::new(), Vec::new())
                };
                let input =
                    iptables::restore_input(self.ipt.take().as_ref(), &new, &stale, &missing);
                run("iptables-restore", &["-w", "5", "--noflush"], Some(&input)).await?;
                self.ipt = Some(new);
                full
            }
        };
        conntrack::clear_stale(&self.last, ports).await;
        self.last = ports.to_vec();
        Ok(full)
    }

    /// Removes the rules of the mode not in use, left by an earlier run
    /// (upstream does this at start so switching modes leaves no trace).
    pub async fn cleanup_other(&self) {
        let result = match self.mode {
            Mode::Nftables => cleanup_iptables().await,
            Mode::Iptables => cleanup_nftables().await,
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "no rules of the other proxy mode removed");
        }
    }
}

/// A jump from a built-in chain: (table, chain, rule).
type Jump = (&'static str, &'static str, &'static str);

/// Chains of ours in the kernel (table, chain) and the jumps that are missing.
async fn iptables_state() -> Result<(Vec<(String, String)>, Vec<Jump>), Error> {
    let mut stale = Vec::new();
    let mut missing = Vec::new();
    for table in ["filter", "nat"] {
        let save = run("iptables-save", &["-t", table], None).await?;
        let (ours, rules) = iptables::parse_save(&save);
        stale.extend(ours.into_iter().map(|c| (table.to_string(), c)));
        for jump in iptables::JUMPS.iter().filter(|(t, _, _)| *t == table) {
            let line = format!("-A {} {}", jump.1, jump.2);
            if !rules.iter().any(|r| r == &line) {
                missing.push(*jump);
            }
        }
    }
    Ok((stale, missing))
}

async fn cleanup_nftables() -> Result<(), Error> {
    let script = format!("add table {t}\ndelete table {t}\n", t = nftables::TABLE);
    run("nft", &["-f", "-"], Some(&script)).await.map(|_| ())
}

async fn cleanup_iptables() -> Result<(), Error> {
    let mut input = String::new();
    let mut any = false;
    for table in ["filter", "nat"] {
        let save = run("iptables-save", &["-t", table], None).await?;
        let (ours, rules) = iptables::parse_save(&save);
        let jumps: Vec<&String> = rules
            .iter()
            .filter(|r| {
                r.rsplit_once(" -j ")
                    .is_some_and(|(_, target)| iptables::is_ours(target.trim()))
                    && !iptables::is_ours(r.split_whitespace().nth(1).unwrap_or_default())
            })
            .collect();
        any |= !ours.is_empty() || !jumps.is_empty();
        input.push_str(&format!("*{table}\n"));
        for c in &ours {
            input.push_str(&format!(":{c} - [0:0]\n"));
        }
        for j in jumps {
            input.push_str(&format!("-D{}\n", &j[2..]));
        }
        for c in &ours {
            input.push_str(&format!("-X {c}\n"));
        }
        input.push_str("COMMIT\n");
    }
    if !any {
        return Ok(());
    }
    run("iptables-restore", &["-w", "5", "--noflush"], Some(&input))
        .await
        .map(|_| ())
}

/// `--cleanup`: removes every rule of both modes.
pub async fn cleanup() -> Result<(), Error> {
    let nft = cleanup_nftables().await;
    let ipt = cleanup_iptables().await;
    // A tool that is not installed has no rules to remove.
    for r in [nft, ipt] {
        match r {
            Err(Error::Spawn { .. }) | Ok(()) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn set_sysctl(key: &str, value: &str) {
    let path = format!("/proc/sys/{key}");
    if let Err(e) = std::fs::write(&path, value) {
        tracing::warn!(%path, error = %e, "cannot set sysctl");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!("".parse::<Mode>(), Ok(Mode::Nftables));
        assert_eq!("iptables".parse::<Mode>(), Ok(Mode::Iptables));
        assert!("ipvs".parse::<Mode>().unwrap_err().contains("no IPVS"));
        assert!("userspace".parse::<Mode>().is_err());
    }
}
