//! kube-apiserver: the Kubernetes REST and watch API over etcd.
//!
//! `main.rs` parses flags and calls [`run`] with a bound listener and a
//! shutdown signal, so tests can start the server in-process too.
#![forbid(unsafe_code)]

pub mod admission;
pub mod allocator;
pub mod apiextensions;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod discovery;
pub mod error;
pub mod fieldmanager;
pub mod fuzzing;
pub mod http;
pub mod json;
pub mod kubelet;
pub mod metrics;
pub mod openapi;
pub mod options;
pub mod patch;
pub mod registry;
pub mod serviceaccount;
pub mod storage;
pub mod tables;
pub mod tls;

use anyhow::{Context, Result};
use options::Options;
use registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use storage::Storage;
use storage::etcd::{EtcdStorage, EtcdTls};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The version this server reports on `/version` (the Kubernetes API it implements).
pub const KUBE_VERSION: &str = "v1.33.0";

fn version_info() -> serde_json::Value {
    serde_json::json!({
        "major": "1",
        "minor": "33",
        "gitVersion": KUBE_VERSION,
        "gitCommit": option_env!("GIT_COMMIT").unwrap_or(""),
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else if std::env::consts::ARCH == "aarch64" { "arm64" } else { std::env::consts::ARCH }),
    })
}

async fn connect_etcd(opts: &Options) -> Result<EtcdStorage> {
    let read = |p: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>> {
        p.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
    };
    let tls = EtcdTls {
        ca: read(&opts.etcd_cafile)?,
        cert_and_key: match (read(&opts.etcd_certfile)?, read(&opts.etcd_keyfile)?) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => anyhow::bail!("--etcd-certfile and --etcd-keyfile must be given together"),
        },
    };
    // etcd may come up after us (systemd ordering is no guarantee): keep trying.
    let mut delay = Duration::from_millis(100);
    loop {
        match EtcdStorage::connect(&opts.etcd_servers, tls.clone()).await {
            Ok(s) if s.healthy().await => return Ok(s),
            Ok(_) => tracing::warn!("etcd is not answering yet"),
            Err(e) => tracing::warn!(error = %e, "cannot reach etcd yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Serves until `shutdown` resolves, then drains.
pub async fn run(
    opts: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let local = listener.local_addr()?;
    let (cert, key) = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => {
            let hosts = vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                local.ip().to_string(),
            ];
            tls::self_signed(&opts.cert_dir, &hosts)?
        }
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file must be given together"),
    };
    let tls_config = tls::server_config(&cert, &key, opts.client_ca_file.as_deref())?;
    let tokens = match &opts.token_auth_file {
        Some(p) => auth::TokenFile::parse(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .map_err(anyhow::Error::msg)?,
        None => auth::TokenFile::default(),
    };

    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let signing_key = opts
        .service_account_signing_key_file
        .as_deref()
        .map(read)
        .transpose()?;
    let verify_keys = opts
        .service_account_key_file
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>>>()?;
    let mut sa_tokens = serviceaccount::Tokens::new(
        signing_key.as_deref(),
        &verify_keys,
        opts.service_account_issuer.clone(),
        opts.api_audiences.clone(),
        opts.service_account_max_token_expiration
            .map(|d| d.as_secs() as i64),
    )
    .map_err(anyhow::Error::msg)?;

    let root = opts.etcd_prefix.trim_end_matches('/').to_string();
    // The registry lives as long as the process; watches borrow it.
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let etcd = connect_etcd(&opts).await?;
    let etcd = Arc::new(etcd.with_encryption(value_transformers(&opts, &root, registry)));
    // The watch cache: one etcd watch per resource serves every watcher.
    let storage: Arc<dyn Storage> = Arc::new(storage::cacher::Cacher::new(etcd.clone()));
    let (lo, hi) = opts.service_node_port_range;
    let allocator = allocator::Allocator::new(
        storage.clone(),
        root.clone(),
        opts.service_cluster_ip_range,
        lo..=hi,
    );
    let kubernetes_ip = allocator.first_ip();
    let mut store = registry::store::Store::new(storage.clone(), root.clone(), allocator);
    let (plugins, unbuilt) = admission::select(
        &opts.enable_admission_plugins,
        &opts.disable_admission_plugins,
    )
    .map_err(anyhow::Error::msg)?;
    // Admission's CEL asks the authorizer, and paramKinds may be custom.
    let mut authorizer = authz::Authorizer::new(
        authz::parse_modes(&opts.authorization_mode).map_err(anyhow::Error::msg)?,
    );
    authorizer.start_node(storage.clone(), &root);
    let authorizer = Arc::new(authorizer);
    let custom: Arc<apiextensions::CustomResources> = Arc::default();
    custom.enable_webhooks(Arc::new(admission::webhook::Deps::spawn(
        storage.clone(),
        &root,
        authorizer.clone(),
    )));
    let mut chain = admission::Chain::new(
        &plugins,
        &admission::Context {
            storage: storage.clone(),
            root: root.clone(),
            toleration_seconds: (
                opts.default_not_ready_toleration_seconds,
                opts.default_unreachable_toleration_seconds,
            ),
            served: admission::Served {
                registry,
                custom: custom.clone(),
                authorizer: authorizer.clone(),
            },
        },
    );
    tracing::info!(plugins = ?plugins, "admission");
    if !unbuilt.is_empty() {
        tracing::warn!(plugins = ?unbuilt, "default admission plugins this apiserver does not have yet are skipped");
    }
    let advertise = match (opts.advertise_address, opts.bind_address) {
        (Some(a), _) => a,
        (None, bind) if bind.is_unspecified() => local.ip(),
        (None, bind) => bind,
    };
    bootstrap::ensure(&store, registry, kubernetes_ip, advertise, local.port())
        .await
        .context("creating the system namespaces")?;

    if let Some(rbac) = &authorizer.rbac {
        chain.push(Arc::new(authz::escalation::Escalation::new(rbac.clone())));
    }
    store.set_admission(chain);
    let anonymous = opts.anonymous_auth && !authorizer.modes().contains(&authz::Mode::AlwaysAllow);
    if opts.anonymous_auth && !anonymous {
        tracing::warn!(
            "AnonymousAuth is not allowed with the AlwaysAllow authorizer. Resetting AnonymousAuth to false. You should use a different authorizer"
        );
    }
    let rbac_cache = match &authorizer.rbac {
        Some(cache) => {
            authz::bootstrap_policy::ensure(&store, registry)
                .await
                .context("creating the bootstrap RBAC policy")?;
            Some(tokio::spawn(
                cache.clone().run(storage.clone(), root.clone()),
            ))
        }
        None => None,
    };
    sa_tokens.follow(storage.clone(), &root);
    let auditor = audit::Auditor::from_flags(
        &opts
            .audit_policy_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        opts.audit_log_path.as_deref().unwrap_or(""),
        opts.audit_log_maxsize,
        opts.audit_log_maxbackup,
        opts.audit_log_maxage,
    )
    .map_err(anyhow::Error::msg)?
    .map(Arc::new);
    if auditor.is_some() {
        tracing::info!(path = ?opts.audit_log_path, "auditing");
    }
    let namespace_cache = store.spawn_namespace_cache();
    let (stop_tx, stop_rx) = watch::channel(false);
    let openapi = openapi::OpenApi::build(&openapi_resources(registry));
    let app = Arc::new(http::App {
        registry,
        custom,
        store,
        discovery: discovery::Discovery::new(registry),
        openapi: std::sync::RwLock::new(Arc::new(openapi)),
        tokens,
        bootstrap_tokens: opts
            .enable_bootstrap_token_auth
            .then(|| auth::bootstrap_token::BootstrapTokens::spawn(storage.clone(), &root)),
        anonymous,
        authorizer,
        sa_tokens,
        version: serde_json::to_vec(&version_info())?.into(),
        shutdown: stop_rx.clone(),
        min_request_timeout: opts.min_request_timeout.max(1),
        readonly_slots: Semaphore::new(opts.max_requests_inflight.max(1)),
        mutating_slots: Semaphore::new(opts.max_mutating_requests_inflight.max(1)),
        kubelet: kubelet::KubeletClient::new(
            opts.kubelet_client_certificate.as_deref(),
            opts.kubelet_client_key.as_deref(),
            opts.kubelet_certificate_authority.as_deref(),
            &opts.kubelet_preferred_address_types,
        )?,
        auditor,
    });

    let background = tokio::spawn(background_tasks(
        app.clone(),
        etcd,
        root,
        opts.etcd_compaction_interval,
        stop_rx.clone(),
    ));
    let crds = tokio::spawn(apiextensions::served::run(app.clone()));
    tracing::info!(address = %local, "serving securely");
    common::systemd::ready();
    let delay = opts.shutdown_delay_duration;
    tokio::spawn(async move {
        shutdown.await;
        tokio::time::sleep(delay).await;
        let _ = stop_tx.send(true);
    });
    http::serve(app, listener, tls_config, stop_rx, Duration::from_secs(10)).await;
    background.abort();
    crds.abort();
    namespace_cache.abort();
    if let Some(r) = rbac_cache {
        r.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Encryption at rest from `--encryption-provider-config` (none without it).
fn value_transformers(
    opts: &Options,
    root: &str,
    registry: &Registry,
) -> storage::encryption::ValueTransformers {
    let Some(config) = opts.encryption_provider_config.clone() else {
        return Default::default();
    };
    for (rule, providers) in config.summary() {
        tracing::info!(resources = %rule, ?providers, "encrypting at rest");
    }
    // A key segment is the resource's own, not one stored as another's.
    let resources = registry
        .resources
        .iter()
        .filter(|r| r.codec.is_none())
        .map(|r| (r.storage_resource, r.group));
    storage::encryption::ValueTransformers::new(config, root, resources)
}

pub(crate) fn openapi_resources(registry: &Registry) -> Vec<openapi::OpenApiResource> {
    let served: Vec<&registry::ResourceInfo> = registry.resources.iter().collect();
    openapi::resources(&served)
}

/// Periodic work: `apiserver_storage_objects`, the repair of service
/// allocations, and etcd compaction (upstream compacts history every
/// `--etcd-compaction-interval`, to the revision seen one interval before,
/// so watchers have a full interval to catch up).
async fn background_tasks(
    app: Arc<http::App>,
    etcd: Arc<EtcdStorage>,
    root: String,
    compaction: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let storage = app.store.storage().clone();
    let registry = app.registry;
    let mut count_tick = tokio::time::interval(Duration::from_secs(60));
    let mut repair_tick = tokio::time::interval(Duration::from_secs(180));
    let mut suspects = std::collections::HashSet::new();
    let mut compact_tick = tokio::time::interval(if compaction.is_zero() {
        Duration::from_secs(3600)
    } else {
        compaction
    });
    compact_tick.tick().await;
    let mut last_seen: Option<i64> = None;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = count_tick.tick() => {
                for r in &registry.resources {
                    let prefix = r.key_prefix(&root, None);
                    let opts = storage::ListOptions { limit: 1, ..Default::default() };
                    let n = match storage.list(&prefix, &opts).await {
                        Ok(page) => (page.items.len() as i64 + page.remaining) as f64,
                        Err(_) => -1.0,
                    };
                    let label = if r.group.is_empty() { r.resource.to_string() } else { format!("{}.{}", r.resource, r.group) };
                    metrics::STORAGE_OBJECTS.with_label_values(&[&label]).set(n);
                }
            }
            _ = repair_tick.tick() => {
                let services = registry.get("", "v1", "services").expect("services are registered");
                if let Ok(page) = app.store.list(services, None, &registry::store::ListQuery::default()).await {
                    suspects = app.store.allocator().repair(&page.items, &suspects).await;
                }
            }
            _ = compact_tick.tick(), if !compaction.is_zero() => {
                if let Some(rev) = last_seen
                    && let Err(e) = etcd.compact(rev).await
                {
                    tracing::debug!(error = %e, "compaction skipped");
                }
                last_seen = storage.current_revision().await.ok();
            }
        }
    }
}
