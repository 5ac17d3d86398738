#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 (trust auth, user postgres) with a
# database `test`, for the log tests (TEEGATE_PG_URL). Idempotent: does nothing that is already done.
set -euo pipefail
PGURL_HOST=127.0.0.1
ready() { pg_isready -h "$PGURL_HOST" -p 5432 -q 2>/dev/null; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! ready; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  conf="/etc/postgresql/$version/main"
  # Trust auth on loopback for the test user (a CI machine only).
  if ! $SUDO grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "postgres.sh: PostgreSQL did not start" >&2; exit 1; }
fi
if ! psql -h "$PGURL_HOST" -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h "$PGURL_HOST" -U postgres -c 'CREATE DATABASE test' >/dev/null
fi
echo "postgres.sh: PostgreSQL ready at postgres://postgres@$PGURL_HOST:5432/test"
