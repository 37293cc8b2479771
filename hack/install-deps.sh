#!/usr/bin/env bash
# Installs the Debian packages the project builds and tests with, when missing.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v protoc >/dev/null || need+=(protobuf-compiler)
# protoc's well-known types (google/protobuf/*.proto), which etcd-client's build imports.
[[ -e /usr/include/google/protobuf/descriptor.proto ]] || need+=(libprotobuf-dev)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
# Nodes: containerd with runc, the CNI plugins, and what the local images are
# built from (busybox-static, a static C toolchain for the pause binary).
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/aarch64-linux-gnu/libc.a ]] || need+=(libc6-dev)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
command -v docker-registry >/dev/null || need+=(docker-registry)
# kube-proxy's backends and its stale-UDP-flow cleanup.
command -v nft >/dev/null || need+=(nftables)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
# sysctl: the test nodes and local-up set bridge-nf-call-iptables with it.
command -v sysctl >/dev/null || need+=(procps)
# systemd-analyze verifies the units in systemd/ (systemd need not run).
command -v systemd-analyze >/dev/null || need+=(systemd)
# Prometheus and promtool check every daemon's /metrics.
command -v prometheus >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  echo ">> installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v kubectl >/dev/null || { echo "kubectl is required (preinstalled at /usr/bin/kubectl on this machine kind)"; exit 1; }
