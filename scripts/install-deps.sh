#!/usr/bin/env bash
# Installs everything pgwarden and its test suite need on a Debian machine with Node.js 20+:
# the PostgreSQL server and the tools the tests use as real peers, then the npm packages
# (which builds the TypeScript). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

# pgbouncer and haproxy are real peers in tests and benchmarks (PgBouncer for bench:gateway,
# HAProxy for PROXY protocol v2). Encryption at rest: e2fsprogs (ext4 volumes with the
# kernel's fscrypt), gocryptfs + fuse3 (FUSE backend), softhsm2 + opensc (PKCS#11 customer
# keys in tests). chromium drives the web console's end-to-end tests.
PACKAGES=(postgresql postgresql-contrib openssl iproute2 procps pgbouncer haproxy
  e2fsprogs gocryptfs fuse3 softhsm2 opensc chromium)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packages start services of their own (a PostgreSQL cluster on 5432, pgbouncer on
  # 6432, haproxy): pgwarden runs its own servers, and tests start their own peers.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do $SUDO pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
  for svc in pgbouncer haproxy; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# pgwarden_guard: before PostgreSQL 16 a CREATEROLE administrator can grant himself
# pg_execute_server_program; this preload library refuses it (ext/pgwarden_guard/README.md).
PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)
if [ -n "$PG_MAJOR" ] && [ "$PG_MAJOR" -lt 16 ] && [ ! -f "/usr/lib/postgresql/$PG_MAJOR/lib/pgwarden_guard.so" -o ext/pgwarden_guard/pgwarden_guard.c -nt "/usr/lib/postgresql/$PG_MAJOR/lib/pgwarden_guard.so" ]; then
  PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
  if [ ! -x "$PG_CONFIG" ] || [ ! -d "$($PG_CONFIG --includedir-server 2>/dev/null)" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_MAJOR" make gcc >/dev/null ||
      { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_MAJOR" make gcc >/dev/null; }
  fi
  make -s -C ext/pgwarden_guard PG_CONFIG="$PG_CONFIG" with_llvm=no
  $SUDO make -s -C ext/pgwarden_guard PG_CONFIG="$PG_CONFIG" with_llvm=no install
  make -s -C ext/pgwarden_guard PG_CONFIG="$PG_CONFIG" with_llvm=no clean
fi

# pgAudit for the managed servers' own statement log (joined to gateway sessions).
if [ -n "$PG_MAJOR" ] && [ ! -f "/usr/lib/postgresql/$PG_MAJOR/lib/pgaudit.so" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR-pgaudit" >/dev/null ||
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR-pgaudit" >/dev/null; }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
fi
