#!/usr/bin/env bash
# Sets up and runs a local control plane on this machine, the hard way but in
# one command: installs what is missing, builds, writes a CA and certificates,
# starts etcd, kube-apiserver, kube-scheduler and kube-controller-manager on
# loopback, and writes a
# kubeconfig.
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

stop() {
  for p in kube-controller-manager kube-scheduler kube-apiserver etcd; do
    if [[ -f $DIR/$p.pid ]]; then
      kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$(cat "$DIR/$p.pid")" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$(cat "$DIR/$p.pid")" 2>/dev/null || true
      rm -f "$DIR/$p.pid"
    fi
  done
}

if [[ ${1:-up} == down ]]; then
  stop
  rm -rf "$DIR"
  echo "local cluster stopped and removed"
  exit 0
fi

"$ROOT/hack/install-deps.sh"

echo ">> building ($PROFILE)"
if [[ $PROFILE == release ]]; then
  cargo build --release --manifest-path "$ROOT/Cargo.toml" --bin kube-apiserver --bin kube-scheduler --bin kube-controller-manager
else
  cargo build --manifest-path "$ROOT/Cargo.toml" --bin kube-apiserver --bin kube-scheduler --bin kube-controller-manager
fi
BIN=$ROOT/target/$PROFILE

stop
mkdir -p "$DIR/pki"
PKI=$DIR/pki

# A CA, a serving certificate for the apiserver and an admin client certificate.
if [[ ! -f $PKI/ca.crt ]]; then
  echo ">> writing certificates in $PKI"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kubernetes-ca" \
    -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null
  issue() { # name subject [san]
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    local ext=$PKI/$1.ext
    echo "basicConstraints=CA:FALSE" > "$ext"
    [[ -n ${3:-} ]] && echo "subjectAltName=$3" >> "$ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 365 -extfile "$ext" -out "$PKI/$1.crt" 2>/dev/null
    rm -f "$PKI/$1.csr" "$ext"
  }
  issue apiserver "/CN=kube-apiserver" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  issue admin "/O=system:masters/CN=admin"
fi

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
  --service-cluster-ip-range 10.96.0.0/24 >"$DIR/kube-apiserver.log" 2>&1 &
echo $! > "$DIR/kube-apiserver.pid"
for _ in $(seq 100); do
  curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$API_PORT/readyz" >/dev/null && break
  sleep 0.1
done

KUBECONFIG_FILE=$DIR/admin.kubeconfig
kubectl config --kubeconfig "$KUBECONFIG_FILE" set-cluster local --server "https://127.0.0.1:$API_PORT" \
  --certificate-authority "$PKI/ca.crt" --embed-certs >/dev/null
kubectl config --kubeconfig "$KUBECONFIG_FILE" set-credentials admin \
  --client-certificate "$PKI/admin.crt" --client-key "$PKI/admin.key" --embed-certs >/dev/null
kubectl config --kubeconfig "$KUBECONFIG_FILE" set-context local --cluster local --user admin >/dev/null
kubectl config --kubeconfig "$KUBECONFIG_FILE" use-context local >/dev/null

# The scheduler and the controller-manager use the admin identity until the
# security issue brings per-component certificates and RBAC.
echo ">> starting kube-scheduler (health and metrics on https://127.0.0.1:$SCHEDULER_PORT)"
"$BIN/kube-scheduler" --kubeconfig "$KUBECONFIG_FILE" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" >"$DIR/kube-scheduler.log" 2>&1 &
echo $! > "$DIR/kube-scheduler.pid"
for _ in $(seq 100); do
  curl -sfk "https://127.0.0.1:$SCHEDULER_PORT/readyz" >/dev/null && break
  sleep 0.1
done

echo ">> starting kube-controller-manager (health and metrics on https://127.0.0.1:$CONTROLLER_MANAGER_PORT)"
"$BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" \
  --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" >"$DIR/kube-controller-manager.log" 2>&1 &
echo $! > "$DIR/kube-controller-manager.pid"
for _ in $(seq 100); do
  curl -sfk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/readyz" >/dev/null && break
  sleep 0.1
done

kubectl --kubeconfig "$KUBECONFIG_FILE" get namespaces
cat <<MSG

The control plane is up (etcd, kube-apiserver, kube-scheduler and
kube-controller-manager, with the controllers built so far; nodes arrive
with the kubelet). Use it with:

  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get all -A

Logs are in $DIR. Stop and clean up with: hack/local-up.sh down
MSG
