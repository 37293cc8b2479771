//! apiextensions.k8s.io: what serves CustomResourceDefinitions (upstream's
//! `apiextensions-apiserver`): structural schemas with their validation,
//! pruning and defaulting, and CEL validation rules.

pub mod cel;
pub mod schema;
