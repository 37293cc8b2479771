//! kube-scheduler's flags, with upstream's names.

use clap::Parser;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Parser)]
#[command(name = "kube-scheduler", about = "Places pods on nodes", version)]
pub struct Options {
    /// Path to a kubeconfig with the apiserver's address and credentials.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// A KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// HTTPS port for /healthz, /readyz and /metrics; 0 disables it.
    #[arg(long, default_value_t = 10259)]
    pub secure_port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    #[command(flatten)]
    pub leader: common::leader::LeaderElectionFlags,
    /// Log verbosity, as klog's -v.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// The parts of a KubeSchedulerConfiguration this scheduler acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    /// One profile per schedulerName.
    pub profiles: Vec<ProfileConfig>,
    /// None: `--leader-elect=false`, act alone.
    pub leader_election: Option<common::leader::LeaseConfig>,
}

/// A profile of the configuration file, checked to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileConfig {
    pub scheduler_name: String,
    /// `plugins` and `pluginConfig` as written (null: the defaults).
    pub plugins: serde_json::Value,
    pub plugin_config: serde_json::Value,
}

impl ProfileConfig {
    fn default_named(name: &str) -> Self {
        ProfileConfig {
            scheduler_name: name.into(),
            plugins: serde_json::Value::Null,
            plugin_config: serde_json::Value::Null,
        }
    }

    pub fn build(
        &self,
        listers: &crate::framework::Listers,
    ) -> Result<crate::framework::Profile, String> {
        crate::framework::Profile::build(
            &self.scheduler_name,
            &self.plugins,
            &self.plugin_config,
            listers,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not a KubeSchedulerConfiguration: {1}")]
    Parse(String, String),
    #[error("{0}")]
    Unsupported(String),
}

impl Options {
    /// Settings from the flags and the `--config` file, refusing what is
    /// not built yet rather than ignoring it.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut settings = Settings {
            kubeconfig: self.kubeconfig.clone(),
            profiles: vec![ProfileConfig::default_named("default-scheduler")],
            leader_election: None,
        };
        let mut leader_elect = self.leader.leader_elect;
        let mut lease = self.leader.lease("kube-scheduler");
        if let Some(path) = &self.config {
            let shown = path.display().to_string();
            let text =
                std::fs::read_to_string(path).map_err(|e| ConfigError::Read(shown.clone(), e))?;
            let doc: serde_json::Value = serde_yaml_ng::from_str(&text)
                .map_err(|e| ConfigError::Parse(shown.clone(), e.to_string()))?;
            if doc["apiVersion"] != "kubescheduler.config.k8s.io/v1"
                || doc["kind"] != "KubeSchedulerConfiguration"
            {
                return Err(ConfigError::Parse(
                    shown,
                    "want apiVersion kubescheduler.config.k8s.io/v1, kind KubeSchedulerConfiguration".into(),
                ));
            }
            if let Some(kc) = doc["clientConnection"]["kubeconfig"].as_str()
                && settings.kubeconfig.is_none()
            {
                settings.kubeconfig = Some(kc.into());
            }
            let le = &doc["leaderElection"];
            if let Some(on) = le["leaderElect"].as_bool() {
                leader_elect = on;
            }
            let duration = |field: &str| -> Result<Option<Duration>, ConfigError> {
                le[field]
                    .as_str()
                    .map(|d| {
                        common::cli::parse_duration(d).map_err(|e| {
                            ConfigError::Parse(
                                shown.clone(),
                                format!("leaderElection.{field}: {e}"),
                            )
                        })
                    })
                    .transpose()
            };
            if let Some(d) = duration("leaseDuration")? {
                lease.lease_duration = d;
            }
            if let Some(d) = duration("renewDeadline")? {
                lease.renew_deadline = d;
            }
            if let Some(d) = duration("retryPeriod")? {
                lease.retry_period = d;
            }
            if let Some(n) = le["resourceName"].as_str() {
                lease.name = n.into();
            }
            if let Some(n) = le["resourceNamespace"].as_str() {
                lease.namespace = n.into();
            }
            if let Some(profiles) = doc["profiles"].as_array() {
                settings.profiles.clear();
                for p in profiles {
                    let profile = ProfileConfig {
                        scheduler_name: p["schedulerName"]
                            .as_str()
                            .unwrap_or("default-scheduler")
                            .to_string(),
                        plugins: p["plugins"].clone(),
                        plugin_config: p["pluginConfig"].clone(),
                    };
                    profile.build(&Default::default()).map_err(|e| {
                        ConfigError::Unsupported(format!(
                            "profile {:?}: {e}",
                            profile.scheduler_name
                        ))
                    })?;
                    settings.profiles.push(profile);
                }
            }
        }
        if leader_elect {
            lease.validate().map_err(ConfigError::Unsupported)?;
            settings.leader_election = Some(lease);
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("kube-scheduler").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn leader_election_follows_upstreams_flags() {
        let s = parse(&[]).settings().unwrap();
        let lease = s.leader_election.expect("on by default");
        assert_eq!(
            (lease.namespace.as_str(), lease.name.as_str()),
            ("kube-system", "kube-scheduler")
        );
        assert_eq!(lease.lease_duration, Duration::from_secs(15));
        let s = parse(&["--leader-elect=false"]).settings().unwrap();
        assert!(s.leader_election.is_none());
        assert_eq!(
            s.profiles,
            [ProfileConfig::default_named("default-scheduler")]
        );
        let fast = parse(&[
            "--leader-elect-lease-duration=2s",
            "--leader-elect-renew-deadline=1s",
            "--leader-elect-retry-period=200ms",
        ]);
        let lease = fast.settings().unwrap().leader_election.unwrap();
        assert_eq!(lease.retry_period, Duration::from_millis(200));
        let bad = parse(&[
            "--leader-elect-lease-duration=1s",
            "--leader-elect-renew-deadline=2s",
        ]);
        assert!(bad.settings().is_err());
    }

    #[test]
    fn profiles_come_from_the_config_file() {
        let dir = std::env::temp_dir().join(format!("sched-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /etc/kubernetes/scheduler.kubeconfig\nleaderElection:\n  leaderElect: false\nprofiles:\n- schedulerName: default-scheduler\n- schedulerName: my-scheduler\n",
        )
        .unwrap();
        let s = parse(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap();
        let names: Vec<&str> = s
            .profiles
            .iter()
            .map(|p| p.scheduler_name.as_str())
            .collect();
        assert_eq!(names, ["default-scheduler", "my-scheduler"]);
        assert_eq!(
            s.kubeconfig.as_deref(),
            Some(std::path::Path::new("/etc/kubernetes/scheduler.kubeconfig"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
