//! storage.k8s.io/v1 storageclasses.

use serde_json::Value;

use super::{AGE, Ctx, NAME, Printer, Row, age, bool_at, col, get, name, opt_str, s, str_at};

pub(super) static STORAGE_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Provisioner",
            "string",
            "provisioner indicates the type of the provisioner.",
        ),
        col(
            "ReclaimPolicy",
            "string",
            "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
        ),
        col(
            "VolumeBindingMode",
            "string",
            "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
        ),
        col(
            "AllowVolumeExpansion",
            "string",
            "allowVolumeExpansion shows whether the storage class allow volume expand.",
        ),
        AGE,
    ],
    row: storage_class_row,
};

/// `storageutil.IsDefaultAnnotation`: GA or beta default-class annotation.
fn is_default(obj: &Value) -> bool {
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| get(obj, &["metadata", "annotations", k]).and_then(Value::as_str) == Some("true"))
}

fn storage_class_row(obj: &Value, ctx: &Ctx) -> Row {
    let mut display = name(obj).to_string();
    if is_default(obj) {
        display.push_str(" (default)");
    }
    vec![
        s(display),
        s(str_at(obj, &["provisioner"])),
        s(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        s(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::Bool(bool_at(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(obj, ctx),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn storageclasses() {
        let cols = [
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age",
        ];
        let sc = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "creationTimestamp": "2024-05-01T11:54:50Z",
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Retain",
            "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true
        });
        check(
            "storage.k8s.io",
            "storageclasses",
            sc,
            &cols,
            json!([
                "standard (default)",
                "rancher.io/local-path",
                "Retain",
                "WaitForFirstConsumer",
                true,
                "5m10s"
            ]),
        );
        let bare = json!({"metadata": {"name": "fast", "creationTimestamp": "2024-05-01T11:54:50Z"},
                          "provisioner": "csi.example.com"});
        check(
            "storage.k8s.io",
            "storageclasses",
            bare,
            &cols,
            json!([
                "fast",
                "csi.example.com",
                "Delete",
                "Immediate",
                false,
                "5m10s"
            ]),
        );
    }
}
