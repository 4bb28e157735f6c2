#!/usr/bin/env bash
# `just trace`: one request through the whole system, and its spans.
#
# Starts otlp-receiver (the OTLP/HTTP receiver in infra/otlp-receiver) and `just up`
# (infra/local/up.sh) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at it, sends GET
# /weatherforecast to my-bff twice with a trace context of its own (a cold token, then a
# warm one), stops the system (each service flushes its spans as it stops) and then the
# receiver, and prints the two requests' traces as trees: my-bff, the token acquisition,
# the issuer, my-service, the auth layer's decision, the handler.
#
# Ports: the dev ones of `just up` (UP_*_PORT override them) and 4318 for the receiver
# (TRACE_RECEIVER_PORT). Needs nothing but bash.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
RECEIVER_PORT=${TRACE_RECEIVER_PORT:-4318}
BFF_PORT=${UP_BFF_PORT:-7248}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if { exec 3<>"/dev/tcp/127.0.0.1/$RECEIVER_PORT"; } 2>/dev/null; then
  exec 3<&-
  echo "[trace] ERROR: port $RECEIVER_PORT is in use; set TRACE_RECEIVER_PORT to a free one" >&2
  exit 1
fi
"$BIN/otlp-receiver" "127.0.0.1:$RECEIVER_PORT" >"$WORK/receiver.out" 2>&1 &
RECEIVER=$!
PIDS+=("$RECEIVER")

# SIGTERM stops it (a background job of a script ignores SIGINT).
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$RECEIVER_PORT" bash infra/local/up.sh >"$WORK/up.out" 2>&1 &
UP=$!
PIDS+=("$UP")
until grep -q "ready (Ctrl-C stops everything)" "$WORK/up.out"; do
  if ! kill -0 "$UP" 2>/dev/null; then
    cat "$WORK/up.out" >&2
    echo "[trace] ERROR: just up did not start (its output above)" >&2
    exit 1
  fi
  sleep 0.1
done

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
TRACES=()
for call in cold warm; do
  trace=$(hex 16)
  TRACES+=("$trace")
  exec 3<>"/dev/tcp/127.0.0.1/$BFF_PORT"
  printf 'GET /weatherforecast HTTP/1.0\r\nHost: 127.0.0.1\r\ntraceparent: 00-%s-%s-01\r\n\r\n' "$trace" "$(hex 8)" >&3
  IFS= read -r status <&3 || status="no answer"
  exec 3<&-
  echo "[trace] GET /weatherforecast ($call token): ${status%$'\r'}; trace $trace"
done

kill -TERM "$UP"
wait "$UP" || true
kill -TERM "$RECEIVER"
wait "$RECEIVER" || true
PIDS=()
awk -v ids="${TRACES[*]}" '
  BEGIN { n = split(ids, list, " "); for (i = 1; i <= n; i++) want[list[i]] = 1 }
  /^trace / { show = ($2 in want) }
  show' "$WORK/receiver.out"
