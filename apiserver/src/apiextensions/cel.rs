//! CEL validation rules (work in progress on this branch).
