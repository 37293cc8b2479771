//! Protobuf support: the Kubernetes API protos (`k8s`, decoding
//! `application/vnd.kubernetes.protobuf` request bodies to JSON) and the
//! CRI v1 API (`cri`, the kubelet's gRPC client of the container runtime).
#![forbid(unsafe_code)]

pub mod cri;
pub mod k8s;
