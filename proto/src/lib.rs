//! The CRI v1 protobuf API, compiled with tonic. Vendored with the kubelet
//! issue; empty until then.
#![forbid(unsafe_code)]
