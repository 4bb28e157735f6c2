#!/usr/bin/env bash
# The conformance kit against a resource server written on another stack: a short Node
# server using panva's `jose` (infra/conformance/node/server.mjs). Shows the kit is
# framework-agnostic and reports what that server gets wrong.
#
# The kit runs with --report-only: the Node server's results never fail the build. This
# script fails only when the kit itself cannot run (it does not build, npm ci fails, the
# server never answers, the report is not written).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${CARGO_TARGET_DIR:-$root/target}/conformance"
mkdir -p "$out"

(cd "$here/node" && npm ci --no-audit --no-fund --silent)
cargo build --quiet -p conformance
kit="${CARGO_TARGET_DIR:-$root/target}/debug/conformance"

# A free port for the Node server (the kit must know the target URL before it starts it).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

rm -f "$out/node.xml"
PORT=$port "$kit" \
  --profile rfc9068 \
  --scope MyService/weather_read \
  --target "http://127.0.0.1:$port/weatherforecast" \
  --junit "$out/node.xml" \
  --wait-secs 30 \
  --report-only \
  -- node "$here/node/server.mjs"
test -s "$out/node.xml"
echo "foreign server report (Node, jose): $out/node.xml"
