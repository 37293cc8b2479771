#!/usr/bin/env bash
# Sets up and runs a local cluster on this machine, the hard way but in one
# command: installs what is missing, builds, writes the PKI and a kubeconfig
# per component with kube-bootstrap, starts etcd, kube-apiserver (Node and
# RBAC authorization, encryption at rest), kube-scheduler and kube-controller-manager on
# loopback, then the nodes: containerd inside a network namespace of its own
# (pod addresses stay off the machine's, which only routes to them), the
# local images (pause, busybox, cluster-dns, policy-webhook),
# the kubelet, and inside the namespace kube-proxy; cluster-dns runs as a pod
# on the first node, behind the kube-dns Service (10.96.0.10); and writes a
# kubeconfig.
#
#   hack/local-up.sh [--controllers N] [--workers M]
#                             start (idempotent: restarts what it started before)
#   hack/local-up.sh down     stop everything and remove the state
#
# --controllers 2 (or more) runs an HA control plane as the seed project
# did: a three-member etcd cluster, N apiservers behind a small TCP load
# balancer on 127.0.0.1:6443, and N schedulers and controller-managers
# with leader election. --workers M starts M nodes (local-node,
# local-node-2, ...), each in its own network namespace with its own pod
# CIDR (10.244.I.0/24) and routes to the others' through veth pairs.
#
# State lives in ${LOCAL_UP_DIR:-_output/local-up}. Nothing listens beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${LOCAL_UP_DIR:-$ROOT/_output/local-up}
ETCD_PORT=${ETCD_PORT:-2379}
API_PORT=${API_PORT:-6443}
SCHEDULER_PORT=${SCHEDULER_PORT:-10259}
CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT:-10257}
PROFILE=${PROFILE:-release}
KUBELET_PORT=${KUBELET_PORT:-10250}
KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-10248}
CLUSTER_DNS=${CLUSTER_DNS:-10.96.0.10}
CONTROLLERS=${CONTROLLERS:-1}
WORKERS=${WORKERS:-1}

ACTION=up
while [[ $# -gt 0 ]]; do
  case $1 in
    up | down) ACTION=$1 ;;
    --controllers) CONTROLLERS=$2; shift ;;
    --controllers=*) CONTROLLERS=${1#*=} ;;
    --workers) WORKERS=$2; shift ;;
    --workers=*) WORKERS=${1#*=} ;;
    *) echo "usage: $0 [up|down] [--controllers N] [--workers M]" >&2; exit 2 ;;
  esac
  shift
done
[[ $CONTROLLERS =~ ^[1-9]$ && $WORKERS =~ ^[1-9]$ ]] || { echo "--controllers and --workers take 1 to 9" >&2; exit 2; }

# Node I (1-based): its name, network namespace, pod CIDR and ports.
node_name() { if [[ $1 == 1 ]]; then echo local-node; else echo "local-node-$1"; fi; }
node_netns() { echo "kube-$(node_name "$1")"; }
node_cidr() { echo "10.244.$(($1 - 1)).0/24"; }
node_dir() { echo "$DIR/nodes/$(node_name "$1")"; }

# Kills what a node's containerd runs (there is no crictl in Debian: ctr
# does it), then the per-pod cgroups and network namespaces left behind.
stop_pods() {
  local sock=$1/containerd.sock
  [[ -S $sock ]] || return 0
  local ctr=(ctr -a "$sock" -n k8s.io)
  for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$t" 2>/dev/null || true; done
  sleep 1
  for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "$c" >/dev/null 2>&1 || true
    "${ctr[@]}" containers rm "$c" >/dev/null 2>&1 || true
    rm -f /var/lib/cni/results/*-"$c"-* 2>/dev/null || true
  done
  find /sys/fs/cgroup/*/kubepods -depth -mindepth 1 -type d -name 'pod*' -exec rmdir {} + 2>/dev/null || true
  for ns in /run/netns/cni-*; do
    [[ -e $ns ]] || continue
    [[ -z $(ip netns pids "$(basename "$ns")" 2>/dev/null) ]] && ip netns delete "$(basename "$ns")" 2>/dev/null || true
  done
}

# SIGTERM to each process of the pid files given, SIGKILL after 5 s.
stop_pids() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

stop() {
  shopt -s nullglob
  # The nodes' own daemons first: their rules and sockets go with the namespaces.
  stop_pids "$DIR"/cluster-dns*.pid "$DIR"/kube-proxy*.pid "$DIR"/netns-relay*.pid
  stop_pids "$DIR"/kubelet*.pid
  stop_pids "$DIR"/kube-controller-manager*.pid "$DIR"/kube-scheduler*.pid "$DIR"/tcp-balancer.pid \
    "$DIR"/kube-apiserver*.pid "$DIR"/etcd*.pid
  shopt -u nullglob
}

stop_nodes() {
  local d
  for d in "$DIR"/nodes/*/; do
    d=${d%/}
    stop_pods "$d"
    stop_pids "$d/containerd.pid"
    grep -o " $d/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    [[ -f $d/netns ]] && ip netns delete "$(cat "$d/netns")" 2>/dev/null || true
  done
}

# Deletes every pod while the kubelets still run, so that they stop them
# through CRI (which also tears their network down); controllers first, so
# that nothing is recreated.
drain() {
  [[ -f $DIR/admin.kubeconfig ]] || return 0
  compgen -G "$DIR/kubelet*.pid" >/dev/null || return 0
  shopt -s nullglob
  stop_pids "$DIR"/kube-controller-manager*.pid "$DIR"/kube-scheduler*.pid
  shopt -u nullglob
  kubectl --kubeconfig "$DIR/admin.kubeconfig" delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || return 0
  local d left
  for _ in $(seq 120); do
    left=
    for d in "$DIR"/nodes/*/; do
      [[ -n $(ctr -a "${d}containerd.sock" -n k8s.io containers ls -q 2>/dev/null) ]] && left=1
    done
    [[ -z $left ]] && return 0
    sleep 0.5
  done
}

if [[ $ACTION == down ]]; then
  drain
  stop
  stop_nodes
  rm -rf "$DIR"
  echo "local cluster stopped and removed"
  exit 0
fi

"$ROOT/hack/install-deps.sh"

BINS=(kube-apiserver kube-scheduler kube-controller-manager kubelet kube-proxy cluster-dns netns-relay tcp-balancer kube-bootstrap policy-webhook)
echo ">> building ($PROFILE)"
if [[ $PROFILE == release ]]; then
  cargo build --release --manifest-path "$ROOT/Cargo.toml" "${BINS[@]/#/--bin=}"
else
  cargo build --manifest-path "$ROOT/Cargo.toml" "${BINS[@]/#/--bin=}"
fi
BIN=$ROOT/target/$PROFILE

stop
mkdir -p "$DIR/pki" "$DIR/nodes"
PKI=$DIR/pki

# The cluster's PKI the hard way, with kube-bootstrap: the CA, a certificate
# and kubeconfig per component and for each node, the service-account key
# pair and an encryption config (kept and renewed on later runs).
{
  echo "serviceCIDR: 10.96.0.0/24"
  echo "apiserver: {addresses: [127.0.0.1], names: [localhost], url: \"https://127.0.0.1:$API_PORT\"}"
  echo "nodes:"
  for i in $(seq "$WORKERS"); do echo "- {name: $(node_name "$i"), addresses: [127.0.0.1]}"; done
} >"$DIR/cluster.yaml"
# A PKI of an older local-up (openssl, no kubeconfigs) is replaced.
[[ -f $PKI/ca.crt && ! -f $PKI/admin.kubeconfig ]] && rm -rf "${PKI:?}"/*
echo ">> writing the PKI in $PKI (kube-bootstrap pki)"
"$BIN/kube-bootstrap" pki --config "$DIR/cluster.yaml" --out "$PKI" >/dev/null

# etcd: one member, or three for an HA control plane (client port
# ETCD_PORT+2i, peer port ETCD_PORT+2i+1).
MEMBERS=1
[[ $CONTROLLERS -gt 1 ]] && MEMBERS=3
INITIAL=()
ETCD_SERVERS=()
for m in $(seq 0 $((MEMBERS - 1))); do
  INITIAL+=("etcd-$m=http://127.0.0.1:$((ETCD_PORT + 2 * m + 1))")
  ETCD_SERVERS+=("http://127.0.0.1:$((ETCD_PORT + 2 * m))")
done
echo ">> starting etcd ($MEMBERS member(s) from 127.0.0.1:$ETCD_PORT)"
for m in $(seq 0 $((MEMBERS - 1))); do
  client=http://127.0.0.1:$((ETCD_PORT + 2 * m))
  peer=http://127.0.0.1:$((ETCD_PORT + 2 * m + 1))
  mkdir -p "$DIR/etcd-$m"
  etcd --name "etcd-$m" --data-dir "$DIR/etcd-$m" --logger=zap \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$(IFS=,; echo "${INITIAL[*]}")" --initial-cluster-token local-up >"$DIR/etcd-$m.log" 2>&1 &
  echo $! >"$DIR/etcd-$m.pid"
done
for m in $(seq 0 $((MEMBERS - 1))); do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((ETCD_PORT + 2 * m))/health" >/dev/null && break; sleep 0.1; done
done

# The apiservers: on API_PORT alone, or on API_PORT+1.. behind the balancer on API_PORT.
BACKENDS=()
for c in $(seq 0 $((CONTROLLERS - 1))); do
  port=$API_PORT
  [[ $CONTROLLERS -gt 1 ]] && port=$((API_PORT + 1 + c))
  BACKENDS+=("$port")
  echo ">> starting kube-apiserver $c on 127.0.0.1:$port"
  "$BIN/kube-apiserver" \
    --etcd-servers "$(IFS=,; echo "${ETCD_SERVERS[*]}")" \
    --bind-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --encryption-provider-config "$PKI/encryption-config.yaml" \
    --service-account-signing-key-file "$PKI/sa.key" --service-account-key-file "$PKI/sa.pub" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/24 >"$DIR/kube-apiserver-$c.log" 2>&1 &
  echo $! >"$DIR/kube-apiserver-$c.pid"
done
if [[ $CONTROLLERS -gt 1 ]]; then
  echo ">> starting the load balancer on 127.0.0.1:$API_PORT (to ${BACKENDS[*]})"
  "$BIN/tcp-balancer" --port "$API_PORT" --backends "$(IFS=,; echo "${BACKENDS[*]}")" >"$DIR/tcp-balancer.log" 2>&1 &
  echo $! >"$DIR/tcp-balancer.pid"
fi
for port in "${BACKENDS[@]}"; do
  for _ in $(seq 100); do
    curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
done

KUBECONFIG_FILE=$DIR/admin.kubeconfig
cp "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"

# Each component with its own identity, authorized by the bootstrap RBAC
# policy (and the kubelets by the Node authorizer); with several
# controllers, one scheduler and one controller-manager each, and leader
# election (on by default) picks who works.
for c in $(seq 0 $((CONTROLLERS - 1))); do
  sport=$((SCHEDULER_PORT + 10 * c))
  echo ">> starting kube-scheduler $c (health and metrics on https://127.0.0.1:$sport)"
  "$BIN/kube-scheduler" --kubeconfig "$PKI/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sport" >"$DIR/kube-scheduler-$c.log" 2>&1 &
  echo $! >"$DIR/kube-scheduler-$c.pid"
  cport=$((CONTROLLER_MANAGER_PORT + 10 * c))
  echo ">> starting kube-controller-manager $c (health and metrics on https://127.0.0.1:$cport)"
  "$BIN/kube-controller-manager" --kubeconfig "$PKI/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cport" >"$DIR/kube-controller-manager-$c.log" 2>&1 &
  echo $! >"$DIR/kube-controller-manager-$c.pid"
done
for c in $(seq 0 $((CONTROLLERS - 1))); do
  for port in $((SCHEDULER_PORT + 10 * c)) $((CONTROLLER_MANAGER_PORT + 10 * c)); do
    for _ in $(seq 100); do
      curl -sfk "https://127.0.0.1:$port/readyz" >/dev/null && break
      sleep 0.1
    done
  done
done

# The nodes: containerd in each one's network namespace, then its kubelet.
stop_nodes
IMAGES=$DIR/images
mkdir -p "$IMAGES"
CLUSTER_DNS_BIN="$BIN/cluster-dns" POLICY_WEBHOOK_BIN="$BIN/policy-webhook" \
  "$ROOT/hack/images/build.sh" "$IMAGES" >/dev/null
for i in $(seq "$WORKERS"); do
  name=$(node_name "$i")
  netns=$(node_netns "$i")
  node=$(node_dir "$i")
  sock=$node/containerd.sock
  kport=$((KUBELET_PORT + 20 * (i - 1)))
  hport=$((KUBELET_HEALTHZ_PORT + 20 * (i - 1)))
  echo ">> starting containerd in network namespace $netns"
  mkdir -p "$node/net.d"
  echo "$netns" >"$node/netns"
  ip netns add "$netns"
  ip -n "$netns" link set lo up
  # Pods reaching a Service served on their own bridge (kubeadm's
  # prerequisite), and a route for Service addresses from the node itself.
  nsenter --net="/run/netns/$netns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
  ip -n "$netns" link add kube-services type bridge
  ip -n "$netns" link set kube-services up
  ip -n "$netns" route add 10.96.0.0/24 dev kube-services
  # This machine, the controller, routes the node's pod CIDR as the hard
  # way's pod network routes do: the apiserver reaches pods by their IPs
  # (webhooks behind a Service, examples/policy-webhook).
  ip link add "kube-up-$i" type veth peer name to-machine netns "$netns"
  ip addr add "10.251.$i.1/30" dev "kube-up-$i"
  ip link set "kube-up-$i" up
  ip -n "$netns" addr add "10.251.$i.2/30" dev to-machine
  ip -n "$netns" link set to-machine up
  ip route add "$(node_cidr "$i")" via "10.251.$i.2"
  sed -e "s|@DIR@|$node|g" -e "s|@SOCKET@|$sock|g" "$ROOT/hack/containerd.toml.in" >"$node/containerd.toml"
  nsenter --net="/run/netns/$netns" containerd --config "$node/containerd.toml" >"$node/containerd.log" 2>&1 &
  echo $! >"$node/containerd.pid"
  for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
  for image in pause busybox cluster-dns policy-webhook; do
    ctr -a "$sock" -n k8s.io images import "$IMAGES/$image.tar" >/dev/null
  done

  echo ">> starting the kubelet (node $name, API on https://127.0.0.1:$kport)"
  cat >"$node/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podCIDR: $(node_cidr "$i")
podLogsDir: $node/pod-logs
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS]
authentication:
  anonymous: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
# The kubelet asks the apiserver who may use its API (SubjectAccessReview).
authorization: {mode: Webhook}
YAML
  "$BIN/kubelet" --config "$node/kubelet.yaml" --kubeconfig "$PKI/$name.kubeconfig" \
    --container-runtime-endpoint "unix://$sock" --root-dir "$node/kubelet" --cni-conf-dir "$node/net.d" \
    --hostname-override "$name" --node-ip 127.0.0.1 --address 127.0.0.1 \
    --port "$kport" --healthz-port "$hport" >"$DIR/kubelet-$name.log" 2>&1 &
  echo $! >"$DIR/kubelet-$name.pid"

  # kube-proxy runs inside the node's namespace, as host network daemons
  # of a node do; the relay gives them the apiserver there.
  "$BIN/netns-relay" --netns "/run/netns/$netns" --port "$API_PORT" >"$DIR/netns-relay-$name.log" 2>&1 &
  echo $! >"$DIR/netns-relay-$name.pid"
  echo ">> starting kube-proxy (nftables) in $netns"
  nsenter --net="/run/netns/$netns" "$BIN/kube-proxy" --kubeconfig "$PKI/kube-proxy.kubeconfig" \
    --hostname-override "$name" --cluster-cidr 10.244.0.0/16 --nodeport-addresses 0.0.0.0/0 \
    --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 >"$DIR/kube-proxy-$name.log" 2>&1 &
  echo $! >"$DIR/kube-proxy-$name.pid"
done

# Routes between the nodes: a veth pair for each two, each side routing
# the other's pod CIDR through it (as the tests' Node::connect).
link=0
for i in $(seq "$WORKERS"); do
  for j in $(seq $((i + 1)) "$WORKERS"); do
    a=$(node_netns "$i") b=$(node_netns "$j")
    ip link add "to-$j" netns "$a" type veth peer name "to-$i" netns "$b"
    ip -n "$a" addr add "10.250.$link.1/30" dev "to-$j"
    ip -n "$b" addr add "10.250.$link.2/30" dev "to-$i"
    ip -n "$a" link set "to-$j" up
    ip -n "$b" link set "to-$i" up
    ip -n "$a" route add "$(node_cidr "$j")" via "10.250.$link.2"
    ip -n "$b" route add "$(node_cidr "$i")" via "10.250.$link.1"
    link=$((link + 1))
  done
  nsenter --net="/run/netns/$(node_netns "$i")" sysctl -qw net.ipv4.ip_forward=1
done

for i in $(seq "$WORKERS"); do
  for _ in $(seq 300); do
    [[ $(kubectl --kubeconfig "$KUBECONFIG_FILE" get node "$(node_name "$i")" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] && break
    sleep 0.2
  done
done

DNS_NODE=$(node_name 1)
DNS_NETNS=$(node_netns 1)
echo ">> starting cluster-dns on $DNS_NODE, behind the kube-dns Service ($CLUSTER_DNS)"
kubectl --kubeconfig "$KUBECONFIG_FILE" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $CLUSTER_DNS
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kube-dns-$DNS_NODE, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints: [{addresses: ["10.244.0.1"], nodeName: $DNS_NODE}]
YAML
# cluster-dns as a pod (a Deployment in kube-system) on the first node's
# network (its bridge address is the endpoint above), with its own
# identity's kubeconfig, reaching the apiserver through the relay.
kubectl --kubeconfig "$KUBECONFIG_FILE" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: cluster-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      hostNetwork: true
      dnsPolicy: Default
      nodeSelector: {kubernetes.io/hostname: $DNS_NODE}
      priorityClassName: system-cluster-critical
      tolerations: [{operator: Exists}]
      containers:
      - name: cluster-dns
        image: localhost/cluster-dns:local
        imagePullPolicy: Never
        args: [--kubeconfig=/etc/cluster-dns/kubeconfig, --listen=0.0.0.0:53, --metrics-bind-address=127.0.0.1:9153]
        readinessProbe:
          httpGet: {host: 127.0.0.1, path: /readyz, port: 9153}
          periodSeconds: 2
        volumeMounts: [{name: kubeconfig, mountPath: /etc/cluster-dns/kubeconfig, readOnly: true}]
      volumes:
      - name: kubeconfig
        hostPath: {path: $PKI/cluster-dns.kubeconfig, type: File}
YAML
for _ in $(seq 300); do
  nsenter --net="/run/netns/$DNS_NETNS" curl -sf http://127.0.0.1:10256/healthz >/dev/null &&
    nsenter --net="/run/netns/$DNS_NETNS" curl -sf http://127.0.0.1:9153/readyz >/dev/null && break
  sleep 0.2
done

kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes
NODES=$(for i in $(seq "$WORKERS"); do printf '%s (%s) ' "$(node_name "$i")" "$(node_netns "$i")"; done)
cat <<MSG

The cluster is up: etcd ($MEMBERS member(s)), $CONTROLLERS kube-apiserver(s)
(on https://127.0.0.1:$API_PORT), kube-scheduler(s) and
kube-controller-manager(s), and node(s) $NODES(containerd in
its network namespace, the kubelet, and there kube-proxy); the cluster-dns
pod behind kube-system/kube-dns at $CLUSTER_DNS; images
localhost/busybox:1.35, localhost/pause:3.10, localhost/cluster-dns:local,
localhost/policy-webhook:local (examples/policy-webhook/README.md).
Use it with:

  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get all -A
  kubectl run hello --image=localhost/busybox:1.35 --restart=Never -- sh -c 'echo hello'
  kubectl logs hello
  kubectl create deployment web --image=localhost/busybox:1.35 -- httpd -f -p 80
  kubectl expose deployment web --port 80
  kubectl run client --image=localhost/busybox:1.35 --restart=Never -- nslookup web.default.svc.cluster.local

Logs are in $DIR. Stop and clean up with: hack/local-up.sh down
MSG
