//! The objects besides nodes and pods that plugins read (upstream's shared
//! listers): Services and workloads for PodTopologySpread's default
//! constraints, claims and volumes for VolumeBinding. (ReplicationControllers
//! are left out: this apiserver does not serve them.) The scheduler's
//! watchers fill them through the writers.

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;

#[derive(Clone)]
pub struct Listers {
    pub services: Store<Service>,
    pub replica_sets: Store<ReplicaSet>,
    pub stateful_sets: Store<StatefulSet>,
    pub claims: Store<PersistentVolumeClaim>,
    pub volumes: Store<PersistentVolume>,
}

/// The write halves of [`Listers`].
#[derive(Default)]
pub struct ListerWriters {
    pub services: Writer<Service>,
    pub replica_sets: Writer<ReplicaSet>,
    pub stateful_sets: Writer<StatefulSet>,
    pub claims: Writer<PersistentVolumeClaim>,
    pub volumes: Writer<PersistentVolume>,
}

impl ListerWriters {
    pub fn listers(&self) -> Listers {
        Listers {
            services: self.services.as_reader(),
            replica_sets: self.replica_sets.as_reader(),
            stateful_sets: self.stateful_sets.as_reader(),
            claims: self.claims.as_reader(),
            volumes: self.volumes.as_reader(),
        }
    }
}

impl Default for Listers {
    /// Empty listers, for profiles built without a cluster (tests, checks).
    fn default() -> Self {
        ListerWriters::default().listers()
    }
}

impl Listers {
    pub fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.volumes.get(&ObjectRef::new(name))
    }

    pub fn services_in(&self, namespace: &str) -> Vec<Arc<Service>> {
        self.services
            .state_filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
    }
}
