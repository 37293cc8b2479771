//! events.k8s.io/v1: the structured Event API. Upstream stores these in the
//! same `events` resource as core/v1 Events and only converts between the
//! two; here validation follows upstream 1.33's `ValidateEventCreate` /
//! `ValidateEventUpdate` for requests in this group, which are strict where
//! core/v1 requests are lenient. Field paths use upstream's internal
//! (core) names, as its messages do: `involvedObject` for `regarding`,
//! `message` for `note`, `count` for `deprecatedCount` and so on.

pub mod event;

pub use event::EventStrategy;
