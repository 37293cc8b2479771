//! Objects several tests apply.

/// A namespaced CustomResourceDefinition `gadgets.example.com` (kind
/// Gadget) served in `versions`, the first stored, each with a schema that
/// keeps every field.
pub fn gadgets_crd(versions: &[&str]) -> String {
    let mut yaml = String::from(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: {name: gadgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n  \
         names: {plural: gadgets, singular: gadget, kind: Gadget}\n  versions:\n",
    );
    for (i, v) in versions.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{name: {v}, served: true, storage: {}, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}\n",
            i == 0
        ));
    }
    yaml
}
