#!/usr/bin/env bash
# Starts the enclave on the parent instance (run by teegate-enclave.service):
#
#   infra/nitro/run-enclave.sh [--eif FILE] [--cpus N] [--memory MIB] [--cid CID]
#
# Defaults come from /etc/teegate/teegate.env (EIF_PATH, ENCLAVE_CPUS, ENCLAVE_MEMORY_MIB,
# ENCLAVE_CID). Production never runs in debug mode: a debug enclave's console and memory are
# visible to the parent and its PCRs read as zero. --debug-mode exists for diagnosing a broken image
# only and is refused unless TEEGATE_ALLOW_DEBUG_MODE=yes; the KMS key policy and the measurement
# policies refuse debug enclaves anyway, so such an enclave never gets a model key.
set -euo pipefail

EIF="${EIF_PATH:-/opt/teegate/build/teegate-enclave.eif}"
CPUS="${ENCLAVE_CPUS:-2}"
MEMORY="${ENCLAVE_MEMORY_MIB:-4096}"
CID="${ENCLAVE_CID:-16}"
NAME="teegate"
DEBUG=0

while [ $# -gt 0 ]; do
  case "$1" in
    --eif) EIF="${2:?--eif needs a value}"; shift 2 ;;
    --cpus) CPUS="${2:?--cpus needs a value}"; shift 2 ;;
    --memory) MEMORY="${2:?--memory needs a value}"; shift 2 ;;
    --cid) CID="${2:?--cid needs a value}"; shift 2 ;;
    --debug-mode) DEBUG=1; shift ;;
    *) echo "run-enclave: unknown argument $1" >&2; exit 2 ;;
  esac
done

[ -r "$EIF" ] || { echo "run-enclave: cannot read $EIF" >&2; exit 2; }
case "$CPUS$MEMORY$CID" in *[!0-9]*) echo "run-enclave: --cpus, --memory and --cid take numbers" >&2; exit 2 ;; esac

ARGS=(--eif-path "$EIF" --cpu-count "$CPUS" --memory "$MEMORY" --enclave-cid "$CID" --enclave-name "$NAME")
if [ "$DEBUG" = 1 ]; then
  if [ "${TEEGATE_ALLOW_DEBUG_MODE:-}" != "yes" ]; then
    echo "run-enclave: refusing --debug-mode (set TEEGATE_ALLOW_DEBUG_MODE=yes on a test instance only)" >&2
    exit 2
  fi
  echo "run-enclave: WARNING debug mode: PCRs read as zero, the parent sees the console; no key will be released" >&2
  ARGS+=(--debug-mode)
fi

# One enclave of this name at a time: replace a running one.
if nitro-cli describe-enclaves | grep -q "\"EnclaveName\": \"$NAME\""; then
  nitro-cli terminate-enclave --enclave-name "$NAME"
fi
nitro-cli run-enclave "${ARGS[@]}"
