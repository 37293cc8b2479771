//! What the apiserver serves, from its discovery documents: the resources
//! the garbage collector watches and the namespace controller empties.

use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Discovery, Scope, verbs};

/// A resource kind the apiserver serves.
#[derive(Debug, Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub caps: ApiCapabilities,
}

impl Served {
    pub fn supports(&self, verb: &str) -> bool {
        self.caps.supports_operation(verb)
    }
}

/// Every resource in its preferred version, subresources left out.
pub async fn served(client: &kube::Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .map(|(resource, caps)| Served {
            namespaced: matches!(caps.scope, Scope::Namespaced),
            resource,
            caps,
        })
        .collect())
}

/// The ones that can be listed, watched and deleted.
pub fn collectable(all: Vec<Served>) -> impl Iterator<Item = Served> {
    all.into_iter().filter(|s| {
        [verbs::LIST, verbs::WATCH, verbs::DELETE]
            .iter()
            .all(|v| s.supports(v))
    })
}
