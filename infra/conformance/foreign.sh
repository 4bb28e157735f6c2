#!/usr/bin/env bash
# The conformance kit against resource servers written on another stack (Node):
# - node/server.mjs: panva's `jose` used directly, the way its documentation suggests;
# - node/express-oauth2-jwt-bearer.mjs: Auth0's Express middleware, configured as its
#   README's "Getting started" says.
# Shows the kit is framework-agnostic and reports what those servers get wrong. The
# packages come from the npm registry, pinned by node/package-lock.json (`npm ci`).
#
# The kit runs with --report-only: the servers' results never fail the build. This script
# fails only when the kit itself cannot run or judge (it does not build, npm ci fails, a
# server never answers, the run is inconclusive because the valid token was refused, the
# report is not written).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${CARGO_TARGET_DIR:-$root/target}/conformance"
mkdir -p "$out"

(cd "$here/node" && npm ci --no-audit --no-fund --silent)
cargo build --quiet -p conformance
kit="${CARGO_TARGET_DIR:-$root/target}/debug/conformance"

# run NAME SERVER KIT-ARGS...: the kit against node/SERVER on a free port (the kit must
# know the target URL before it starts the server), report in $out/NAME.xml.
run() {
  local name=$1 server=$2
  shift 2
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f "$out/$name.xml"
  PORT=$port "$kit" "$@" \
    --target "http://127.0.0.1:$port/weatherforecast" \
    --junit "$out/$name.xml" \
    --wait-secs 30 \
    --report-only \
    -- node "$here/node/$server"
  test -s "$out/$name.xml"
  echo "foreign server report ($name): $out/$name.xml"
}

# jose has no RFC 9068 switch, but the server passes an audience: the rfc9068 profile.
run node server.mjs --profile rfc9068 --scope MyService/weather_read
# express-oauth2-jwt-bearer checks `typ` only with `strict: true`, which its Getting
# started does not set: the generic profile, with an Auth0-style scope and audience. It
# runs as in production: NODE_ENV=production and an https issuer (the kit's, `--https`),
# its CA trusted through NODE_EXTRA_CA_CERTS, which node reads at start, after the kit
# has written the file. (1.10.0 refuses http issuers in production only in its
# multi-issuer mode; the single issuer here would also be accepted over http, with the
# same verdicts.)
ca="$out/express-oauth2-jwt-bearer-ca.pem"
NODE_ENV=production NODE_EXTRA_CA_CERTS="$ca" \
  run express-oauth2-jwt-bearer express-oauth2-jwt-bearer.mjs \
  --https --ca-file "$ca" \
  --profile generic --scope read:messages --audience https://conformance.example/api
