//! apiextensions.k8s.io: what serves CustomResourceDefinitions (upstream's
//! `apiextensions-apiserver`): structural schemas with their validation,
//! pruning and defaulting, CEL validation rules, the strategy of custom
//! resources, and the controller that turns CRDs into served resources.

pub mod cel;
pub mod conversion;
pub mod crd;
pub mod custom_resource;
pub mod schema;
pub mod served;

pub use crd::Custom;
pub use served::CustomResources;
