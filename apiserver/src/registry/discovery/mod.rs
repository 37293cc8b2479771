//! discovery.k8s.io/v1: EndpointSlice, the scalable form of a Service's
//! endpoints (upstream 1.33 `pkg/apis/discovery/{v1/defaults.go,validation}`).

pub mod endpointslice;

pub use endpointslice::EndpointSliceStrategy;
