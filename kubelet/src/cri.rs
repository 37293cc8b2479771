//! The container runtime, over CRI v1 gRPC on a unix socket: one channel
//! shared by the RuntimeService and ImageService clients, every call timed
//! and counted under upstream's `kubelet_runtime_operations_*` metrics.

use proto::cri::v1::image_service_client::ImageServiceClient;
use proto::cri::v1::runtime_service_client::RuntimeServiceClient;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

pub use proto::cri::v1 as api;

/// Labels the kubelet puts on sandboxes and containers, as upstream's, so
/// that a restarted kubelet finds its pods again from the runtime alone.
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    pub const CONTAINER_TYPE: &str = "io.kubernetes.container.type";
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    pub const TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
    pub const PRE_STOP: &str = "io.kubernetes.container.preStopHandler";
}

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("connecting to the container runtime at {0}: {1}")]
    Connect(PathBuf, tonic::transport::Error),
}

#[derive(Clone)]
pub struct Metrics {
    operations: prometheus::IntCounterVec,
    errors: prometheus::IntCounterVec,
    duration: prometheus::HistogramVec,
}

impl Metrics {
    pub fn new(registry: &prometheus::Registry) -> Self {
        let operations = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "kubelet_runtime_operations_total",
                "Cumulative number of runtime operations by operation type.",
            ),
            &["operation_type"],
        )
        .expect("valid metric");
        let errors = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "kubelet_runtime_operations_errors_total",
                "Cumulative number of runtime operation errors by operation type.",
            ),
            &["operation_type"],
        )
        .expect("valid metric");
        let duration = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "kubelet_runtime_operations_duration_seconds",
                "Duration in seconds of runtime operations. Broken down by operation type.",
            )
            .buckets(prometheus::exponential_buckets(0.005, 2.5, 14).expect("valid buckets")),
            &["operation_type"],
        )
        .expect("valid metric");
        for m in [
            Box::new(operations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
        ] {
            let _ = registry.register(m);
        }
        Metrics {
            operations,
            errors,
            duration,
        }
    }
}

/// A connected runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    metrics: Option<Metrics>,
    timeout: Duration,
}

impl Runtime {
    /// Connects to the CRI socket at `path` (lazily: the first call dials,
    /// and a runtime restarted meanwhile is dialled again).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, CriError> {
        let socket = path.to_path_buf();
        // The URI is a placeholder: the connector always dials the socket.
        let channel = Endpoint::from_static("http://cri.sock")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }));
        Ok(Runtime {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(16 * 1024 * 1024),
            images: ImageServiceClient::new(channel).max_decoding_message_size(16 * 1024 * 1024),
            metrics: None,
            timeout,
        })
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    async fn observe<T, Fut>(
        &self,
        op: &str,
        timeout: Duration,
        call: Fut,
    ) -> Result<T, tonic::Status>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = Instant::now();
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "{op}: no answer from the runtime within {timeout:?}"
            ))),
        };
        if let Some(m) = &self.metrics {
            m.operations.with_label_values(&[op]).inc();
            m.duration
                .with_label_values(&[op])
                .observe(start.elapsed().as_secs_f64());
            if result.is_err() {
                m.errors.with_label_values(&[op]).inc();
            }
        }
        result
    }

    /// A RuntimeService call `op` (upstream's operation_type name).
    pub async fn run<T, F, Fut>(&self, op: &str, f: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.observe(op, self.timeout, f(self.runtime.clone()))
            .await
    }

    /// An ImageService call `op`; pulls may take longer than other calls.
    pub async fn image<T, F, Fut>(&self, op: &str, f: F) -> Result<T, tonic::Status>
    where
        F: FnOnce(ImageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.observe(op, self.timeout * 5, f(self.images.clone()))
            .await
    }

    pub async fn version(&self) -> Result<api::VersionResponse, tonic::Status> {
        self.run("version", |mut c| async move {
            c.version(api::VersionRequest {
                version: "v1".into(),
            })
            .await
        })
        .await
    }

    pub async fn sandboxes(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>, tonic::Status> {
        self.run("list_podsandbox", |mut c| async move {
            c.list_pod_sandbox(api::ListPodSandboxRequest { filter })
                .await
        })
        .await
        .map(|r| r.items)
    }

    pub async fn containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>, tonic::Status> {
        self.run("list_containers", |mut c| async move {
            c.list_containers(api::ListContainersRequest { filter })
                .await
        })
        .await
        .map(|r| r.containers)
    }

    pub async fn sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus, tonic::Status> {
        let pod_sandbox_id = id.to_string();
        self.run("podsandbox_status", |mut c| async move {
            c.pod_sandbox_status(api::PodSandboxStatusRequest {
                pod_sandbox_id,
                verbose: false,
            })
            .await
        })
        .await?
        .status
        .ok_or_else(|| tonic::Status::not_found("no sandbox status"))
    }

    pub async fn container_status(&self, id: &str) -> Result<api::ContainerStatus, tonic::Status> {
        let container_id = id.to_string();
        self.run("container_status", |mut c| async move {
            c.container_status(api::ContainerStatusRequest {
                container_id,
                verbose: false,
            })
            .await
        })
        .await?
        .status
        .ok_or_else(|| tonic::Status::not_found("no container status"))
    }

    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), tonic::Status> {
        let container_id = id.to_string();
        // The runtime waits `timeout` seconds before SIGKILL: allow for it.
        let bound = self.timeout + Duration::from_secs(timeout.max(0) as u64);
        self.observe("stop_container", bound, async move {
            self.runtime
                .clone()
                .stop_container(api::StopContainerRequest {
                    container_id,
                    timeout,
                })
                .await
        })
        .await
        .map(|_| ())
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), tonic::Status> {
        let container_id = id.to_string();
        self.run("remove_container", |mut c| async move {
            c.remove_container(api::RemoveContainerRequest { container_id })
                .await
        })
        .await
        .map(|_| ())
    }

    pub async fn stop_sandbox(&self, id: &str) -> Result<(), tonic::Status> {
        let pod_sandbox_id = id.to_string();
        self.run("stop_podsandbox", |mut c| async move {
            c.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id })
                .await
        })
        .await
        .map(|_| ())
    }

    pub async fn remove_sandbox(&self, id: &str) -> Result<(), tonic::Status> {
        let pod_sandbox_id = id.to_string();
        self.run("remove_podsandbox", |mut c| async move {
            c.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id })
                .await
        })
        .await
        .map(|_| ())
    }

    /// Stops and removes every sandbox (and so every container) the
    /// runtime has: what a node being torn down needs.
    pub async fn remove_everything(&self) -> Result<usize, tonic::Status> {
        let sandboxes = self.sandboxes(None).await?;
        for s in &sandboxes {
            let _ = self.stop_sandbox(&s.id).await;
            let _ = self.remove_sandbox(&s.id).await;
        }
        Ok(sandboxes.len())
    }

    /// `ExecSync`: runs `cmd` in a container, bounded by `timeout`.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<api::ExecSyncResponse, tonic::Status> {
        let container_id = id.to_string();
        let bound = timeout + Duration::from_secs(2);
        self.observe("exec_sync", bound, async move {
            self.runtime
                .clone()
                .exec_sync(api::ExecSyncRequest {
                    container_id,
                    cmd,
                    timeout: timeout.as_secs().max(1) as i64,
                })
                .await
        })
        .await
    }

    /// The image's id if the runtime has it.
    pub async fn image_present(&self, image: &str) -> Result<Option<String>, tonic::Status> {
        let spec = api::ImageSpec {
            image: image.into(),
            ..Default::default()
        };
        self.image("image_status", |mut c| async move {
            c.image_status(api::ImageStatusRequest {
                image: Some(spec),
                verbose: false,
            })
            .await
        })
        .await
        .map(|r| r.image.map(|i| i.id))
    }

    /// Pulls `image` and returns its reference (the image id).
    pub async fn pull_image(
        &self,
        image: &str,
        sandbox: Option<api::PodSandboxConfig>,
    ) -> Result<String, tonic::Status> {
        let spec = api::ImageSpec {
            image: image.into(),
            ..Default::default()
        };
        self.image("pull_image", |mut c| async move {
            c.pull_image(api::PullImageRequest {
                image: Some(spec),
                auth: None,
                sandbox_config: sandbox,
            })
            .await
        })
        .await
        .map(|r| r.image_ref)
    }

    pub async fn list_images(&self) -> Result<Vec<api::Image>, tonic::Status> {
        self.image("list_images", |mut c| async move {
            c.list_images(api::ListImagesRequest { filter: None }).await
        })
        .await
        .map(|r| r.images)
    }

    /// The runtime's conditions (RuntimeReady, NetworkReady).
    pub async fn status(&self) -> Result<Vec<api::RuntimeCondition>, tonic::Status> {
        self.run("status", |mut c| async move {
            c.status(api::StatusRequest { verbose: false }).await
        })
        .await
        .map(|r| r.status.map(|s| s.conditions).unwrap_or_default())
    }
}
