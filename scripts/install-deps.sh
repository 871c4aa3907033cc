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
# keys in tests). chromium drives the web console's end-to-end tests. patroni, etcd-server and
# python3-etcd (Patroni's etcd client) run the HA cluster attached-server tests front.
PACKAGES=(postgresql postgresql-contrib openssl iproute2 procps pgbouncer haproxy
  e2fsprogs gocryptfs fuse3 softhsm2 opensc chromium patroni etcd-server python3-etcd)

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
  for svc in pgbouncer haproxy etcd patroni; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

PG_MAJOR=$(ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1 || true)

# Builds and installs one of pgwarden's preload libraries (ext/NAME) for the server, when it is
# missing or its source is newer.
build_library() {
  local name=$1 pg_config="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
  [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/$name.so" ] && [ ! "ext/$name/$name.c" -nt "/usr/lib/postgresql/$PG_MAJOR/lib/$name.so" ] && return 0
  if [ ! -x "$pg_config" ] || [ ! -d "$($pg_config --includedir-server 2>/dev/null)" ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_MAJOR" make gcc >/dev/null ||
      { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$PG_MAJOR" make gcc >/dev/null; }
  fi
  make -s -C "ext/$name" PG_CONFIG="$pg_config" with_llvm=no
  $SUDO make -s -C "ext/$name" PG_CONFIG="$pg_config" with_llvm=no install
  make -s -C "ext/$name" PG_CONFIG="$pg_config" with_llvm=no clean
}

# pgwarden_guard: before PostgreSQL 16 a CREATEROLE administrator can grant himself
# pg_execute_server_program; this preload library refuses it (ext/pgwarden_guard/README.md).
if [ -n "$PG_MAJOR" ] && [ "$PG_MAJOR" -lt 16 ]; then build_library pgwarden_guard; fi

# pgAudit for the managed servers' own statement log (joined to gateway sessions), and
# pgwarden_audit, which limits it to what the gateway cannot see (ext/pgwarden_audit/README.md).
if [ -n "$PG_MAJOR" ] && [ ! -f "/usr/lib/postgresql/$PG_MAJOR/lib/pgaudit.so" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR-pgaudit" >/dev/null ||
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-$PG_MAJOR-pgaudit" >/dev/null; }
fi
if [ -n "$PG_MAJOR" ]; then build_library pgwarden_audit; fi
# pgwarden_archive: the archive module (archive_library, PostgreSQL 15+) that hands each WAL segment
# to the server's archive agent without starting a process per segment (ext/pgwarden_archive).
if [ -n "$PG_MAJOR" ] && [ "$PG_MAJOR" -ge 15 ]; then build_library pgwarden_archive; fi

# The native relay addon (native/relay, Rust); without cargo the JavaScript relay is used.
bash scripts/build-native.sh

# psycopg and pgJDBC: real clients of other languages in the tests.
bash scripts/install-clients.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run build --silent
fi
