#!/usr/bin/env bash
# Builds the enclave image file (EIF) and records its measurements as a measurement policy file
# (docs/policy.md), the one input of the gateway, the clients and the KMS key-policy generator.
#
#   infra/nitro/build-enclave.sh [--region REGION] [--out DIR] [--sign CERT.pem KEY.pem]
#
# Writes DIR/teegate-enclave.eif, DIR/eif-build.json (nitro-cli's output) and
# DIR/measurement-policy.json (PCR0, PCR1, PCR2, and PCR8 when signed). DIR defaults to build/.
# Needs docker and nitro-cli (aws-nitro-enclaves-cli on Amazon Linux, or any Linux with the CLI).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REGION="${AWS_REGION:-us-east-1}"
OUT="$ROOT/build"
TAG="teegate-enclave:latest"
SIGN_CERT=""
SIGN_KEY=""

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --region) REGION="${2:?--region needs a value}"; shift 2 ;;
    --out) OUT="${2:?--out needs a value}"; shift 2 ;;
    --sign) SIGN_CERT="${2:?--sign needs CERT and KEY}"; SIGN_KEY="${3:?--sign needs CERT and KEY}"; shift 3 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-enclave: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

for tool in docker nitro-cli node; do
  command -v "$tool" >/dev/null || { echo "build-enclave: $tool is not installed" >&2; exit 2; }
done
if [ ! -f "$ROOT/build/enclave-models/models.json" ]; then
  echo "build-enclave: build/enclave-models/models.json is missing (the sealed models go there; see infra/README.md)" >&2
  exit 2
fi
mkdir -p "$OUT"

SOURCE="unknown"
if git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
  SOURCE="git $(git -C "$ROOT" rev-parse --short HEAD)"
  if [ -n "$(git -C "$ROOT" status --porcelain)" ]; then SOURCE="$SOURCE (modified)"; fi
fi

docker build -f "$ROOT/infra/nitro/Dockerfile" --build-arg "AWS_REGION=$REGION" -t "$TAG" "$ROOT"

SIGN_ARGS=()
if [ -n "$SIGN_CERT" ]; then SIGN_ARGS=(--signing-certificate "$SIGN_CERT" --private-key "$SIGN_KEY"); fi
# nitro-cli prints progress on stderr and the measurements as JSON on stdout.
nitro-cli build-enclave --docker-uri "$TAG" --output-file "$OUT/teegate-enclave.eif" "${SIGN_ARGS[@]}" > "$OUT/eif-build.json"

node "$ROOT/bin/run-ts" "$ROOT/infra/nitro/measurements.ts" \
  --build-output "$OUT/eif-build.json" --out "$OUT/measurement-policy.json" \
  --name teegate-enclave --source "$SOURCE" --max-age 300
echo "next: publish $OUT/measurement-policy.json, then regenerate the KMS key policy (infra/README.md, 'Roll out a new image')"
