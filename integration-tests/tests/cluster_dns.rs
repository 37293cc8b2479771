//! cluster-dns against the real apiserver and etcd, on a loopback port:
//! Services and EndpointSlices written with kubectl become names answered
//! over UDP and TCP (ClusterIP, headless with its ready endpoints and
//! hostnames, SRV of named ports, NXDOMAIN with the zone's SOA); an
//! endpoint going unready and a Service going away leave the answers;
//! names outside the cluster domain go to a resolver the test runs on
//! loopback, cluster names never do; /metrics counts the queries; SIGTERM
//! stops it cleanly.

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use integration_tests::process::{ManagedChild, free_port, locate_binary};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const WITHIN: Duration = Duration::from_secs(15);

const OBJECTS: &str = "apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
";

/// The headless Service's endpoints, as the EndpointSlice controller
/// would write them; `second_ready` is the readiness of 10.1.0.2.
fn db_slice(second_ready: bool) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {{kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{{name: pg, port: 5432, protocol: TCP}}]
endpoints:
- addresses: [10.1.0.1]
  hostname: db-0
  conditions: {{ready: true}}
- addresses: [10.1.0.2]
  conditions: {{ready: {second_ready}}}
- addresses: [10.1.0.3]
  conditions: {{ready: false}}
"
    )
}

/// A resolver on loopback: `example.org.` is 192.0.2.53, every other
/// name NXDOMAIN. It records the names it was asked.
async fn upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0; 4096];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.unwrap();
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let name = q.queries()[0].name().clone();
            seen.lock().unwrap().push(name.to_string());
            let rcode = if name.to_string() == "example.org." {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            let mut a = Message::error_msg(q.id(), q.op_code(), rcode);
            a.add_queries(q.queries().to_vec());
            if rcode == ResponseCode::NoError {
                a.add_answer(Record::from_rdata(
                    name,
                    300,
                    RData::A(A::new(192, 0, 2, 53)),
                ));
            }
            socket.send_to(&a.to_vec().unwrap(), from).await.unwrap();
        }
    });
    (addr, asked)
}

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut q = Message::new();
    q.set_id(next_id())
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    q.to_vec().unwrap()
}

/// A fresh query ID per query, so an answer is matched to its question.
fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The answer of `server` over UDP or TCP, checked to answer our query.
async fn ask(server: SocketAddr, name: &str, qtype: RecordType, tcp: bool) -> Message {
    let q = query(name, qtype);
    let exchange = async {
        if tcp {
            let mut s = TcpStream::connect(server).await?;
            s.write_all(&(q.len() as u16).to_be_bytes()).await?;
            s.write_all(&q).await?;
            let len = s.read_u16().await?;
            let mut buf = vec![0; len as usize];
            s.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        } else {
            let s = UdpSocket::bind("127.0.0.1:0").await?;
            s.connect(server).await?;
            s.send(&q).await?;
            let mut buf = vec![0; 4096];
            let n = s.recv(&mut buf).await?;
            buf.truncate(n);
            Ok(buf)
        }
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("{name} {qtype}: no answer in 5s"))
        .unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.id(), u16::from_be_bytes([q[0], q[1]]), "{name}: our ID");
    m
}

/// (rcode, sorted answer data).
async fn answers(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    tcp: bool,
) -> (ResponseCode, Vec<String>) {
    let m = ask(server, name, qtype, tcp).await;
    let mut data: Vec<String> = m.answers().iter().map(|r| r.data().to_string()).collect();
    data.sort();
    (m.response_code(), data)
}

/// (status code, body) of a plain HTTP GET on loopback.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let get = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, text.split_once("\r\n\r\n")?.1.to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), get)
        .await
        .ok()?
}

#[tokio::test]
async fn cluster_dns_answers_from_services_and_forwards_the_rest() {
    let cluster = Cluster::start().await.expect("cluster starts");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], OBJECTS).await,
        "apply services",
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &db_slice(true))
            .await,
        "apply the endpoint slice",
    );
    let out = cluster
        .kubectl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    expect_success(&out, "get web's ClusterIP");
    let cluster_ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        cluster_ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "ClusterIP {cluster_ip:?}"
    );

    let (upstream, asked) = upstream().await;
    let (dns_port, metrics_port) = (free_port().unwrap(), free_port().unwrap());
    let mut command = Command::new(locate_binary("cluster-dns", "CLUSTER_DNS_BIN").unwrap());
    command
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .arg(format!("--listen=127.0.0.1:{dns_port}"))
        .arg(format!("--metrics-bind-address=127.0.0.1:{metrics_port}"))
        .arg(format!("--upstream={upstream}"))
        .env(
            "RUST_LOG",
            std::env::var("DAEMON_RUST_LOG").unwrap_or("info".into()),
        );
    let log = cluster.dir().join("cluster-dns.log");
    let mut dns = ManagedChild::spawn("cluster-dns", command, &log).unwrap();
    eventually("cluster-dns ready", Duration::from_secs(30), async || {
        dns.ensure_running().unwrap();
        let seen = http_get(metrics_port, "/readyz").await;
        (matches!(seen, Some((200, _))), seen)
    })
    .await;
    let server: SocketAddr = ([127, 0, 0, 1], dns_port).into();
    use RecordType::{A, SRV};

    for tcp in [false, true] {
        let web = answers(server, "web.default.svc.cluster.local.", A, tcp).await;
        assert_eq!(
            web,
            (ResponseCode::NoError, vec![cluster_ip.clone()]),
            "web, tcp={tcp}"
        );
        let forwarded = answers(server, "example.org.", A, tcp).await;
        assert_eq!(
            forwarded,
            (ResponseCode::NoError, vec!["192.0.2.53".into()]),
            "forwarded, tcp={tcp}"
        );
    }
    let db = answers(server, "db.default.svc.cluster.local.", A, false).await;
    assert_eq!(
        db,
        (
            ResponseCode::NoError,
            vec!["10.1.0.1".into(), "10.1.0.2".into()]
        ),
        "headless: ready endpoints"
    );
    let pet = answers(server, "db-0.db.default.svc.cluster.local.", A, false).await;
    assert_eq!(pet.1, ["10.1.0.1"], "endpoint hostname");
    let srv = answers(server, "_pg._tcp.db.default.svc.cluster.local.", SRV, false).await;
    assert_eq!(
        srv.1,
        [
            "0 50 5432 10-1-0-2.db.default.svc.cluster.local.",
            "0 50 5432 db-0.db.default.svc.cluster.local."
        ],
        "headless SRV"
    );
    let srv = answers(
        server,
        "_http._tcp.web.default.svc.cluster.local.",
        SRV,
        true,
    )
    .await;
    assert_eq!(
        srv.1,
        ["0 100 80 web.default.svc.cluster.local."],
        "ClusterIP SRV"
    );
    let nx = ask(server, "nope.default.svc.cluster.local.", A, false).await;
    assert_eq!(nx.response_code(), ResponseCode::NXDomain);
    assert_eq!(
        nx.name_servers()[0].record_type(),
        RecordType::SOA,
        "SOA in authority"
    );
    let pod = answers(server, "10-1-0-9.default.pod.cluster.local.", A, false).await;
    assert_eq!(pod.1, ["10.1.0.9"], "pod name");

    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &db_slice(false))
            .await,
        "make 10.1.0.2 unready",
    );
    eventually("10.1.0.2 leaves the headless answer", WITHIN, async || {
        let seen = answers(server, "db.default.svc.cluster.local.", A, false).await;
        (seen.1 == ["10.1.0.1"], seen)
    })
    .await;
    expect_success(
        &cluster.kubectl(&["delete", "service", "web"]).await,
        "delete web",
    );
    eventually("web is gone", WITHIN, async || {
        let seen = answers(server, "web.default.svc.cluster.local.", A, true).await;
        (seen.0 == ResponseCode::NXDomain, seen)
    })
    .await;

    let upstream_saw = asked.lock().unwrap().clone();
    assert!(
        upstream_saw.contains(&"example.org.".to_string()),
        "{upstream_saw:?}"
    );
    assert!(
        upstream_saw.iter().all(|n| !n.ends_with("cluster.local.")),
        "cluster names are never forwarded: {upstream_saw:?}"
    );

    let (code, metrics) = http_get(metrics_port, "/metrics")
        .await
        .expect("/metrics answers");
    assert_eq!(code, 200);
    for wanted in [
        "coredns_dns_requests_total{family=\"1\",proto=\"udp\",server=",
        "coredns_dns_requests_total{family=\"1\",proto=\"tcp\",server=",
        "coredns_dns_responses_total{plugin=\"kubernetes\",rcode=\"NXDOMAIN\"",
        "coredns_forward_requests_total{to=\"",
        "coredns_dns_request_duration_seconds_bucket{",
    ] {
        assert!(metrics.contains(wanted), "{wanted} in /metrics:\n{metrics}");
    }

    // SIGTERM: a clean exit, at once.
    let pid = dns.pid().expect("running").to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = eventually("cluster-dns exits on SIGTERM", WITHIN, async || {
        let status = dns.exit_status();
        (status.is_some(), status)
    })
    .await;
    assert!(status.unwrap().success(), "exit status {status:?}");
}
