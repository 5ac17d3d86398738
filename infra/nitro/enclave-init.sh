#!/usr/bin/env bash
# PID 1 inside the Nitro Enclave (the image's ENTRYPOINT). An enclave has no network, only vsock
# to its parent (CID 3), so this script:
#   1. brings up loopback;
#   2. serves the enclave API to the parent: vsock port $ENCLAVE_VSOCK_PORT -> 127.0.0.1:$ENCLAVE_PORT;
#   3. sends KMS traffic to the parent's vsock-proxy: kms.$AWS_REGION.amazonaws.com resolves to
#      127.0.0.1, port 443 is bridged to vsock 3:$KMS_PROXY_PORT. TLS runs end to end between the
#      AWS SDK in here and AWS KMS: the parent relays bytes it cannot read or change;
#   4. bridges the instance metadata service (169.254.169.254:80 -> vsock 3:$IMDS_PROXY_PORT) so the
#      SDK's default chain finds the instance role's credentials. Credentials are not secrets from
#      the parent (it has them too); KMS releases keys on the attestation document, not on them;
#   5. runs the enclave service on the real /dev/nsm.
set -euo pipefail

: "${AWS_REGION:?AWS_REGION must be set in the image}"
ENCLAVE_PORT="${ENCLAVE_PORT:-8081}"
ENCLAVE_VSOCK_PORT="${ENCLAVE_VSOCK_PORT:-5000}"
KMS_PROXY_PORT="${KMS_PROXY_PORT:-8000}"
IMDS_PROXY_PORT="${IMDS_PROXY_PORT:-8002}"
PARENT_CID=3
MODELS="${TEEGATE_MODELS:-/app/models/models.json}"

log() { printf '{"component":"enclave-init","msg":"%s"}\n' "$*" >&2; }

# Keeps one socat bridge running; a bridge that exits is restarted after a second.
bridge() {
  local name="$1"
  shift
  (
    while true; do
      socat "$@" || true
      log "bridge ${name} exited; restarting"
      sleep 1
    done
  ) &
}

ip link set dev lo up
ip addr add 169.254.169.254/32 dev lo
printf '127.0.0.1 kms.%s.amazonaws.com\n' "$AWS_REGION" >> /etc/hosts

bridge enclave-api "VSOCK-LISTEN:${ENCLAVE_VSOCK_PORT},fork,reuseaddr" "TCP:127.0.0.1:${ENCLAVE_PORT}"
bridge kms "TCP-LISTEN:443,bind=127.0.0.1,fork,reuseaddr" "VSOCK-CONNECT:${PARENT_CID}:${KMS_PROXY_PORT}"
bridge imds "TCP-LISTEN:80,bind=169.254.169.254,fork,reuseaddr" "VSOCK-CONNECT:${PARENT_CID}:${IMDS_PROXY_PORT}"

log "starting the enclave service (region ${AWS_REGION}, models ${MODELS})"
cd /app
exec node bin/run-ts enclave/cli.ts --nsm hardware --host 127.0.0.1 --port "$ENCLAVE_PORT" --models "$MODELS"
