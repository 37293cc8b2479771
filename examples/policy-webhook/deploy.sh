#!/usr/bin/env bash
# Deploys the policy webhook into the cluster kubectl points at:
#  1. a CA and, signed by it, a serving certificate for the Service's name
#     policy-webhook.policy-webhook.svc (openssl);
#  2. the namespace, the certificate as Secret policy-webhook-tls, the
#     Deployment and the Service; waits until the webhook is ready;
#  3. the MutatingWebhookConfiguration, with the CA as its caBundle.
# The webhook is registered last so that nothing is refused while its
# server is not up yet. The image localhost/policy-webhook:local must be
# on the nodes (see README.md). Run it again to renew the certificate.
#
#   examples/policy-webhook/deploy.sh [KUBECTL ARGS...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
kubectl() { command "${KUBECTL:-kubectl}" "$@"; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SERVICE=policy-webhook.policy-webhook.svc

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj "/CN=policy-webhook CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$SERVICE" \
  -keyout "$WORK/tls.key" -out "$WORK/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
  "$SERVICE" "$SERVICE" >"$WORK/ext"
openssl x509 -req -in "$WORK/tls.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 365 -extfile "$WORK/ext" -out "$WORK/tls.crt" 2>/dev/null

kubectl apply -f "$HERE/manifests/00-namespace.yaml"
kubectl -n policy-webhook create secret tls policy-webhook-tls \
  --cert="$WORK/tls.crt" --key="$WORK/tls.key" --dry-run=client -o yaml | kubectl apply -f -
existed=$(kubectl -n policy-webhook get deployment policy-webhook -o name --ignore-not-found)
kubectl apply -f "$HERE/manifests/10-webhook.yaml"
# The certificate is read at start: a renewed one needs new pods.
[[ -z $existed ]] || kubectl -n policy-webhook rollout restart deployment/policy-webhook
kubectl -n policy-webhook rollout status deployment/policy-webhook --timeout=180s
sed "s|@CA_BUNDLE@|$(base64 -w0 "$WORK/ca.crt")|" \
  "$HERE/manifests/20-mutatingwebhookconfiguration.yaml" | kubectl apply -f -
