//! apiextensions.k8s.io/v1: CustomResourceDefinition (upstream's
//! `apiextensions-apiserver/pkg/registry/customresourcedefinition` and
//! `pkg/apis/apiextensions/validation`). What serves the resources a CRD
//! defines is in [`crate::apiextensions`].

pub mod customresourcedefinition;

pub use customresourcedefinition::CustomResourceDefinitionStrategy;
