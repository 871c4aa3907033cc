#!/usr/bin/env bash
# Real PostgreSQL clients besides libpq and the Node.js ones, for the client tests
# (test/integration/clients-pooled.test.ts): psycopg 3 (Python) and pgJDBC (Java), into .clients/.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
PSYCOPG=3.3.9
PGJDBC=42.7.14

need=()
command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1 || need+=(python3 python3-pip)
command -v java >/dev/null || need+=(default-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing Debian packages for the client tests: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p .clients
if [ ! -f ".clients/py/psycopg-$PSYCOPG.dist-info/METADATA" ]; then
  rm -rf .clients/py
  # --target keeps it out of the system's Python (Debian's pip also wants the flag for that).
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target .clients/py "psycopg[binary]==$PSYCOPG" ||
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages --target .clients/py "psycopg[binary]==$PSYCOPG"
fi
if [ ! -f ".clients/jdbc/postgresql-$PGJDBC.jar" ]; then
  mvn -q -B dependency:copy -Dartifact="org.postgresql:postgresql:$PGJDBC" -DoutputDirectory=.clients/jdbc
fi
