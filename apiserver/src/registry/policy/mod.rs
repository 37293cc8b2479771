//! policy/v1: PodDisruptionBudget, the limit on voluntary evictions
//! (upstream 1.33 `pkg/apis/policy/validation`).

pub mod poddisruptionbudget;

pub use poddisruptionbudget::PodDisruptionBudgetStrategy;
