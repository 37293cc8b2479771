//! Protobuf support: the Kubernetes API protos (`k8s`, decoding
//! `application/vnd.kubernetes.protobuf` request bodies to JSON) and, with the
//! kubelet issue, the CRI v1 API.
#![forbid(unsafe_code)]

pub mod k8s;
