#!/usr/bin/env bash
# Quick start: install what is missing, then run pgwarden with a demo server in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node bin/pgwarden.js up --demo "$@"
