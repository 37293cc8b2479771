#!/usr/bin/env bash
# Builds the local images the node runs, as OCI image-layout tars that
# `ctr -n k8s.io images import` takes or that can be pushed to a registry:
#   OUT/pause.tar    localhost/pause:3.10     (a static pause, from pause.c)
#   OUT/busybox.tar  localhost/busybox:1.35   (the static busybox with its applets)
#   OUT/cluster-dns.tar localhost/cluster-dns:local (with CLUSTER_DNS_BIN=path/to/cluster-dns)
#   OUT/policy-webhook.tar localhost/policy-webhook:local (with POLICY_WEBHOOK_BIN=path/to/policy-webhook)
# No registry is reachable here, so nothing is pulled. The tars are
# reproducible (fixed mtimes, owners and order), so the digests are stable.
#
#   hack/images/build.sh OUT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build.sh OUT}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

case $(uname -m) in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) ARCH=$(uname -m) ;;
esac

tarball() { # dir out: a reproducible tar of dir's contents
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$1" -cf "$2" .
}

# image NAME TAG ROOTFS CONFIG_JSON_FRAGMENT: writes OUT/NAME.tar
image() {
  local name=$1 tag=$2 rootfs=$3 config=$4
  local layout=$WORK/$name-layout
  mkdir -p "$layout/blobs/sha256"
  tarball "$rootfs" "$WORK/$name-layer.tar"
  local layer layer_size
  layer=$(sha256sum "$WORK/$name-layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$WORK/$name-layer.tar")
  mv "$WORK/$name-layer.tar" "$layout/blobs/sha256/$layer"
  printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"hack/images/build.sh"}]}' \
    "$ARCH" "$config" "$layer" >"$WORK/config.json"
  local cfg cfg_size
  cfg=$(sha256sum "$WORK/config.json" | cut -d' ' -f1)
  cfg_size=$(stat -c %s "$WORK/config.json")
  mv "$WORK/config.json" "$layout/blobs/sha256/$cfg"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cfg" "$cfg_size" "$layer" "$layer_size" >"$WORK/manifest.json"
  local man man_size
  man=$(sha256sum "$WORK/manifest.json" | cut -d' ' -f1)
  man_size=$(stat -c %s "$WORK/manifest.json")
  mv "$WORK/manifest.json" "$layout/blobs/sha256/$man"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"localhost/%s:%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man" "$man_size" "$ARCH" "$name" "$tag" "$tag" >"$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  tarball "$layout" "$OUT/$name.tar"
  echo "$OUT/$name.tar: localhost/$name:$tag"
}

# pause
mkdir -p "$WORK/pause/bin"
gcc -static -O2 -o "$WORK/pause/pause" "$HERE/pause.c"
strip "$WORK/pause/pause"
rmdir "$WORK/pause/bin"
image pause 3.10 "$WORK/pause" '{"Entrypoint":["/pause"],"User":"65535:65535"}'

# busybox
BB=$WORK/busybox
mkdir -p "$BB/bin" "$BB/etc" "$BB/tmp" "$BB/root" "$BB/var/www" "$BB/home"
chmod 1777 "$BB/tmp"
cp "$(command -v busybox)" "$BB/bin/busybox"
for applet in $("$BB/bin/busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$BB/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$BB/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$BB/etc/group"
image busybox 1.35 "$BB" '{"Cmd":["sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}'

# binary_image NAME BIN: localhost/NAME:local, the binary BIN as its
# entrypoint /usr/local/bin/NAME and the shared libraries it links (the
# loader included), at their paths.
binary_image() {
  local name=$1 bin=$2 root=$WORK/$1
  mkdir -p "$root/usr/local/bin" "$root/etc"
  cp "$bin" "$root/usr/local/bin/$name"
  strip "$root/usr/local/bin/$name" 2>/dev/null || true
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    cp --parents -L "$lib" "$root"
  done
  printf 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  image "$name" local "$root" "{\"Entrypoint\":[\"/usr/local/bin/$name\"]}"
}
[[ -z ${CLUSTER_DNS_BIN:-} ]] || binary_image cluster-dns "$CLUSTER_DNS_BIN"
[[ -z ${POLICY_WEBHOOK_BIN:-} ]] || binary_image policy-webhook "$POLICY_WEBHOOK_BIN"
