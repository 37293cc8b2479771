//! discovery.k8s.io/v1 endpointslices.

use serde_json::Value;

use super::format::list_with_more;
use super::{AGE, Ctx, NAME, Printer, Row, age, arr_at, col, int_at, name, opt_str, s, str_at};

pub(super) static ENDPOINT_SLICES: Printer = Printer {
    columns: &[
        NAME,
        col(
            "AddressType",
            "string",
            "addressType specifies the type of address carried by this EndpointSlice.",
        ),
        col(
            "Ports",
            "string",
            "ports specifies the list of network ports exposed by each endpoint in this slice.",
        ),
        col(
            "Endpoints",
            "string",
            "endpoints is a list of unique endpoints in this slice.",
        ),
        AGE,
    ],
    row: endpoint_slice_row,
};

const MAX: usize = 3;

/// Upstream `formatDiscoveryPorts`: port number, else name, else "*".
fn format_ports(ports: &[Value]) -> String {
    let mut list: Vec<String> = Vec::with_capacity(MAX);
    let mut more = false;
    for port in ports {
        if list.len() < MAX {
            list.push(match (int_at(port, &["port"]), opt_str(port, &["name"])) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            });
        } else if list.len() == MAX {
            more = true;
        }
    }
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
    list_with_more(&refs, more, ports.len(), MAX)
}

/// Upstream `formatDiscoveryEndpoints`: the first three addresses.
fn format_endpoints(endpoints: &[Value]) -> String {
    let mut list: Vec<&str> = Vec::with_capacity(MAX);
    let mut more = false;
    let mut count = 0;
    for endpoint in endpoints {
        for address in arr_at(endpoint, &["addresses"]) {
            if list.len() < MAX {
                list.push(address.as_str().unwrap_or(""));
            } else if list.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX)
}

fn endpoint_slice_row(obj: &Value, ctx: &Ctx) -> Row {
    vec![
        s(name(obj)),
        s(str_at(obj, &["addressType"])),
        s(format_ports(arr_at(obj, &["ports"]))),
        s(format_endpoints(arr_at(obj, &["endpoints"]))),
        age(obj, ctx),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    #[test]
    fn endpointslices() {
        let cols = ["Name", "AddressType", "Ports", "Endpoints", "Age"];
        let cases = [
            (
                json!([{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns"}, {}]),
                json!([{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6", "10.244.0.7"]}]),
                "80,dns,*",
                "10.244.0.5,10.244.0.6,10.244.0.7",
            ),
            (
                json!([{"port": 1}, {"port": 2}, {"port": 3}, {"port": 4}, {"port": 5}]),
                json!([{"addresses": ["a", "b"]}, {"addresses": ["c", "d", "e"]}]),
                "1,2,3 + 2 more...",
                "a,b,c + 2 more...",
            ),
            (json!([]), json!([]), "<unset>", "<unset>"),
        ];
        for (ports, endpoints, p, e) in cases {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-abc", "namespace": "default", "creationTimestamp": "2024-05-01T11:54:50Z"},
                "addressType": "IPv4", "ports": ports, "endpoints": endpoints
            });
            check(
                "discovery.k8s.io",
                "endpointslices",
                slice,
                &cols,
                json!(["web-abc", "IPv4", p, e, "5m10s"]),
            );
        }
    }
}
