#!/usr/bin/env bash
# Sets up and runs a local cluster on this machine, the hard way but in one
# command: installs what is missing, builds, writes the PKI and a kubeconfig
# per component with kube-bootstrap, starts etcd, kube-apiserver (Node and
# RBAC authorization, encryption at rest), kube-scheduler and kube-controller-manager on
# loopback, then one node: containerd inside a network namespace of its own
# (pod addresses stay off the machine's), the local pause and busybox images,
# the kubelet, and inside the namespace kube-proxy and cluster-dns (behind
# the kube-dns Service, 10.96.0.10); and writes a kubeconfig.
#
#   hack/local-up.sh          start (idempotent: restarts what it started before)
#   hack/local-up.sh down     stop everything and remove the state
#
# State lives in ${LOCAL_UP_DIR:-_output/local-up}. Nothing listens beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${LOCAL_UP_DIR:-$ROOT/_output/local-up}
ETCD_PORT=${ETCD_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
API_PORT=${API_PORT:-6443}
SCHEDULER_PORT=${SCHEDULER_PORT:-10259}
CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT:-10257}
PROFILE=${PROFILE:-release}
NODE_NAME=${NODE_NAME:-local-node}
NETNS=${NETNS:-kube-local-node}
KUBELET_PORT=${KUBELET_PORT:-10250}
KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-10248}
POD_CIDR=${POD_CIDR:-10.244.0.0/24}
CLUSTER_DNS=${CLUSTER_DNS:-10.96.0.10}
NODE=$DIR/node
SOCK=$NODE/containerd.sock

# Kills what containerd runs (there is no crictl in Debian: ctr does it),
# then the per-pod cgroups and network namespaces left behind.
stop_pods() {
  [[ -S $SOCK ]] || return 0
  local ctr=(ctr -a "$SOCK" -n k8s.io)
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

stop() {
  # The node's own daemons first: their rules and sockets go with the namespace.
  for p in cluster-dns kube-proxy netns-relay; do
    if [[ -f $DIR/$p.pid ]]; then
      kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
      rm -f "$DIR/$p.pid"
    fi
  done
  if [[ -f $DIR/kubelet.pid ]]; then
    kill "$(cat "$DIR/kubelet.pid")" 2>/dev/null || true
    sleep 1
    rm -f "$DIR/kubelet.pid"
  fi
  for p in kube-controller-manager kube-scheduler kube-apiserver etcd; do
    if [[ -f $DIR/$p.pid ]]; then
      kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$(cat "$DIR/$p.pid")" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$(cat "$DIR/$p.pid")" 2>/dev/null || true
      rm -f "$DIR/$p.pid"
    fi
  done
}

stop_node() {
  stop_pods
  if [[ -f $DIR/containerd.pid ]]; then
    kill "$(cat "$DIR/containerd.pid")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$DIR/containerd.pid")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$DIR/containerd.pid"
  fi
  grep -o " $NODE/[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip netns delete "$NETNS" 2>/dev/null || true
}

# Deletes every pod while the kubelet still runs, so that it stops them
# through CRI (which also tears their network down); controllers first, so
# that nothing is recreated.
drain() {
  [[ -f $DIR/kubelet.pid && -f $DIR/admin.kubeconfig ]] || return 0
  for p in kube-controller-manager kube-scheduler; do
    [[ -f $DIR/$p.pid ]] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
  done
  kubectl --kubeconfig "$DIR/admin.kubeconfig" delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || return 0
  for _ in $(seq 120); do
    [[ -z $(ctr -a "$SOCK" -n k8s.io containers ls -q 2>/dev/null) ]] && return 0
    sleep 0.5
  done
}

if [[ ${1:-up} == down ]]; then
  drain
  stop
  stop_node
  rm -rf "$DIR"
  echo "local cluster stopped and removed"
  exit 0
fi

"$ROOT/hack/install-deps.sh"

echo ">> building ($PROFILE)"
if [[ $PROFILE == release ]]; then
  cargo build --release --manifest-path "$ROOT/Cargo.toml" --bin kube-apiserver --bin kube-scheduler --bin kube-controller-manager --bin kubelet --bin kube-proxy --bin cluster-dns --bin netns-relay --bin kube-bootstrap
else
  cargo build --manifest-path "$ROOT/Cargo.toml" --bin kube-apiserver --bin kube-scheduler --bin kube-controller-manager --bin kubelet --bin kube-proxy --bin cluster-dns --bin netns-relay --bin kube-bootstrap
fi
BIN=$ROOT/target/$PROFILE

stop
mkdir -p "$DIR/pki"
PKI=$DIR/pki

# The cluster's PKI the hard way, with kube-bootstrap: the CA, a certificate
# and kubeconfig per component and for the node, the service-account key
# pair and an encryption config (kept and renewed on later runs).
cat >"$DIR/cluster.yaml" <<YAML
serviceCIDR: 10.96.0.0/24
apiserver: {addresses: [127.0.0.1], names: [localhost], url: "https://127.0.0.1:$API_PORT"}
nodes: [{name: $NODE_NAME, addresses: [127.0.0.1]}]
YAML
# A PKI of an older local-up (openssl, no kubeconfigs) is replaced.
[[ -f $PKI/ca.crt && ! -f $PKI/admin.kubeconfig ]] && rm -rf "${PKI:?}"/*
echo ">> writing the PKI in $PKI (kube-bootstrap pki)"
"$BIN/kube-bootstrap" pki --config "$DIR/cluster.yaml" --out "$PKI" >/dev/null

echo ">> starting etcd on 127.0.0.1:$ETCD_PORT"
mkdir -p "$DIR/etcd"
etcd --name local --data-dir "$DIR/etcd" --logger=zap \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" >"$DIR/etcd.log" 2>&1 &
echo $! > "$DIR/etcd.pid"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ETCD_PORT/health" >/dev/null && break; sleep 0.1; done

echo ">> starting kube-apiserver on 127.0.0.1:$API_PORT"
"$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP,Hostname \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --encryption-provider-config "$PKI/encryption-config.yaml" \
  --service-account-signing-key-file "$PKI/sa.key" --service-account-key-file "$PKI/sa.pub" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range 10.96.0.0/24 >"$DIR/kube-apiserver.log" 2>&1 &
echo $! > "$DIR/kube-apiserver.pid"
for _ in $(seq 100); do
  curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$API_PORT/readyz" >/dev/null && break
  sleep 0.1
done

KUBECONFIG_FILE=$DIR/admin.kubeconfig
cp "$PKI/admin.kubeconfig" "$KUBECONFIG_FILE"

# Each component with its own identity, authorized by the bootstrap RBAC
# policy (and the kubelet by the Node authorizer).
echo ">> starting kube-scheduler (health and metrics on https://127.0.0.1:$SCHEDULER_PORT)"
"$BIN/kube-scheduler" --kubeconfig "$PKI/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" >"$DIR/kube-scheduler.log" 2>&1 &
echo $! > "$DIR/kube-scheduler.pid"
for _ in $(seq 100); do
  curl -sfk "https://127.0.0.1:$SCHEDULER_PORT/readyz" >/dev/null && break
  sleep 0.1
done

echo ">> starting kube-controller-manager (health and metrics on https://127.0.0.1:$CONTROLLER_MANAGER_PORT)"
"$BIN/kube-controller-manager" --kubeconfig "$PKI/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" >"$DIR/kube-controller-manager.log" 2>&1 &
echo $! > "$DIR/kube-controller-manager.pid"
for _ in $(seq 100); do
  curl -sfk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/readyz" >/dev/null && break
  sleep 0.1
done

# The node: containerd in its own network namespace, then the kubelet.
stop_node
echo ">> starting containerd in network namespace $NETNS"
mkdir -p "$NODE/net.d" "$NODE/images"
CLUSTER_DNS_BIN="$BIN/cluster-dns" "$ROOT/hack/images/build.sh" "$NODE/images" >/dev/null
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
# Pods reaching a Service served on their own bridge (kubeadm's
# prerequisite), and a route for Service addresses from the node itself.
nsenter --net="/run/netns/$NETNS" sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
ip -n "$NETNS" link add kube-services type bridge
ip -n "$NETNS" link set kube-services up
ip -n "$NETNS" route add 10.96.0.0/24 dev kube-services
sed -e "s|@DIR@|$NODE|g" -e "s|@SOCKET@|$SOCK|g" "$ROOT/hack/containerd.toml.in" >"$NODE/containerd.toml"
nsenter --net="/run/netns/$NETNS" containerd --config "$NODE/containerd.toml" >"$DIR/containerd.log" 2>&1 &
echo $! > "$DIR/containerd.pid"
for _ in $(seq 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
for image in pause busybox cluster-dns; do
  ctr -a "$SOCK" -n k8s.io images import "$NODE/images/$image.tar" >/dev/null
done

echo ">> starting the kubelet (node $NODE_NAME, API on https://127.0.0.1:$KUBELET_PORT)"
cat >"$NODE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podCIDR: $POD_CIDR
podLogsDir: $NODE/pod-logs
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS]
authentication:
  anonymous: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
# The kubelet asks the apiserver who may use its API (SubjectAccessReview).
authorization: {mode: Webhook}
YAML
"$BIN/kubelet" --config "$NODE/kubelet.yaml" --kubeconfig "$PKI/$NODE_NAME.kubeconfig" \
  --container-runtime-endpoint "unix://$SOCK" --root-dir "$NODE/kubelet" --cni-conf-dir "$NODE/net.d" \
  --hostname-override "$NODE_NAME" --node-ip 127.0.0.1 --address 127.0.0.1 \
  --port "$KUBELET_PORT" --healthz-port "$KUBELET_HEALTHZ_PORT" >"$DIR/kubelet.log" 2>&1 &
echo $! > "$DIR/kubelet.pid"
for _ in $(seq 300); do
  [[ $(kubectl --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] && break
  sleep 0.2
done

# kube-proxy and cluster-dns run inside the node's namespace, as host
# network daemons of a node do; the relay gives them the apiserver there.
"$BIN/netns-relay" --netns "/run/netns/$NETNS" --port "$API_PORT" >"$DIR/netns-relay.log" 2>&1 &
echo $! > "$DIR/netns-relay.pid"
echo ">> starting kube-proxy (nftables) in $NETNS"
nsenter --net="/run/netns/$NETNS" "$BIN/kube-proxy" --kubeconfig "$PKI/kube-proxy.kubeconfig" \
  --hostname-override "$NODE_NAME" --cluster-cidr 10.244.0.0/16 --nodeport-addresses 0.0.0.0/0 \
  --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 >"$DIR/kube-proxy.log" 2>&1 &
echo $! > "$DIR/kube-proxy.pid"
echo ">> starting cluster-dns in $NETNS, behind the kube-dns Service ($CLUSTER_DNS)"
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
metadata: {name: kube-dns-$NODE_NAME, namespace: kube-system, labels: {kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
endpoints: [{addresses: ["${POD_CIDR%0/*}1"], nodeName: $NODE_NAME}]
YAML
# cluster-dns as a pod (a Deployment in kube-system) on the node's network,
# with its own identity's kubeconfig, reaching the apiserver through the relay.
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
  nsenter --net="/run/netns/$NETNS" curl -sf http://127.0.0.1:10256/healthz >/dev/null &&
    nsenter --net="/run/netns/$NETNS" curl -sf http://127.0.0.1:9153/readyz >/dev/null && break
  sleep 0.2
done

kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes
cat <<MSG

The cluster is up: etcd, kube-apiserver, kube-scheduler,
kube-controller-manager (the controllers built so far), and node
$NODE_NAME (containerd in network namespace $NETNS, the kubelet, and there
kube-proxy, and the cluster-dns pod behind kube-system/kube-dns at $CLUSTER_DNS;
images localhost/busybox:1.35, localhost/pause:3.10, localhost/cluster-dns:local).
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
