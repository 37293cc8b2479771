//! networking.k8s.io/v1 printers.

use serde_json::Value;

use super::core::load_balancer_ingress;
use super::format::format_label_selector;
use super::{AGE, Ctx, NAME, Printer, Row, age, arr_at, col, get, name, opt_str, s, str_at};

pub(super) fn printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "ingresses" => &INGRESSES,
        "ingressclasses" => &INGRESS_CLASSES,
        "networkpolicies" => &NETWORK_POLICIES,
        _ => return None,
    })
}

static INGRESSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        col(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        col("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ],
    row: ingress_row,
};

/// Upstream `formatHosts`: up to three rule hosts, "*" when none.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::with_capacity(MAX);
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

fn ingress_row(obj: &Value, ctx: &Ctx) -> Row {
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    let address =
        load_balancer_ingress(arr_at(obj, &["status", "loadBalancer", "ingress"])).join(",");
    vec![
        s(name(obj)),
        s(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        s(format_hosts(arr_at(obj, &["spec", "rules"]))),
        s(address),
        s(ports),
        age(obj, ctx),
    ]
    .into()
}

static INGRESS_CLASSES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
        ),
        AGE,
    ],
    row: ingress_class_row,
};

fn ingress_class_row(obj: &Value, ctx: &Ctx) -> Row {
    let parameters = match get(obj, &["spec", "parameters"]) {
        Some(p) => {
            let mut out = str_at(p, &["kind"]).to_string();
            if let Some(group) = opt_str(p, &["apiGroup"]) {
                out.push('.');
                out.push_str(group);
            }
            out.push('/');
            out.push_str(str_at(p, &["name"]));
            out
        }
        None => "<none>".to_string(),
    };
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "controller"])),
        s(parameters),
        age(obj, ctx),
    ]
    .into()
}

static NETWORK_POLICIES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Pod-Selector",
            "string",
            "podSelector selects the pods to which this NetworkPolicy object applies.",
        ),
        AGE,
    ],
    row: network_policy_row,
};

fn network_policy_row(obj: &Value, ctx: &Ctx) -> Row {
    // podSelector is a struct upstream: absent means the empty selector.
    let selector = match get(obj, &["spec", "podSelector"]) {
        Some(sel) => format_label_selector(Some(sel)),
        None => "<none>".to_string(),
    };
    vec![s(name(obj)), s(selector), age(obj, ctx)].into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    fn meta(name: &str) -> serde_json::Value {
        json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"})
    }

    #[test]
    fn ingresses() {
        let cols = ["Name", "Class", "Hosts", "Address", "Ports", "Age"];
        let ing = json!({
            "metadata": meta("web"),
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]}}
        });
        check(
            "networking.k8s.io",
            "ingresses",
            ing,
            &cols,
            json!([
                "web",
                "nginx",
                "a.example.com,b.example.com",
                "192.0.2.10,lb.example.com",
                "80, 443",
                "5m10s"
            ]),
        );
        let many = json!({
            "metadata": meta("many"),
            "spec": {"rules": [{"host": "a"}, {}, {"host": "c"}, {"host": "d"}, {"host": "e"}]}
        });
        check(
            "networking.k8s.io",
            "ingresses",
            many,
            &cols,
            json!(["many", "<none>", "a,c,d + 2 more...", "", "80", "5m10s"]),
        );
        let default_backend = json!({"metadata": meta("d"), "spec": {"defaultBackend": {}}});
        check(
            "networking.k8s.io",
            "ingresses",
            default_backend,
            &cols,
            json!(["d", "<none>", "*", "", "80", "5m10s"]),
        );
    }

    #[test]
    fn ingressclasses() {
        let cols = ["Name", "Controller", "Parameters", "Age"];
        let ic = json!({
            "metadata": {"name": "nginx", "creationTimestamp": "2024-05-01T11:54:50Z"},
            "spec": {"controller": "k8s.io/ingress-nginx",
                     "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}
        });
        check(
            "networking.k8s.io",
            "ingressclasses",
            ic,
            &cols,
            json!([
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "5m10s"
            ]),
        );
        let plain = json!({"metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:54:50Z"},
                           "spec": {"controller": "example.com/c"}});
        check(
            "networking.k8s.io",
            "ingressclasses",
            plain,
            &cols,
            json!(["p", "example.com/c", "<none>", "5m10s"]),
        );
    }

    #[test]
    fn networkpolicies() {
        let cols = ["Name", "Pod-Selector", "Age"];
        let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        check(
            "networking.k8s.io",
            "networkpolicies",
            np,
            &cols,
            json!(["deny", "role=db", "5m10s"]),
        );
        let all = json!({"metadata": meta("all"), "spec": {"podSelector": {}}});
        check(
            "networking.k8s.io",
            "networkpolicies",
            all,
            &cols,
            json!(["all", "<none>", "5m10s"]),
        );
    }
}
