#!/usr/bin/env bash
# Builds the native relay addon (native/relay, Rust through napi-rs: issue 22) into
# native/relay/pgwarden-relay.node, which src/gateway/native/addon.ts loads. Without cargo the
# gateway uses its JavaScript relay. Skips the build when the addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."
crate=native/relay
out=$crate/pgwarden-relay.node
if ! command -v cargo >/dev/null 2>&1; then
  echo "build-native: cargo is not installed; the JavaScript relay will be used"
  exit 0
fi
if [ -f "$out" ] && [ -z "$(find "$crate/src" "$crate/Cargo.toml" "$crate/Cargo.lock" "$crate/build.rs" -newer "$out" 2>/dev/null | head -1)" ]; then
  exit 0
fi
echo "build-native: building $out"
cargo build --release --locked --manifest-path "$crate/Cargo.toml"
cp "$crate/target/release/libpgwarden_relay.so" "$out.tmp"
mv "$out.tmp" "$out"
