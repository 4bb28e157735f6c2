#!/usr/bin/env bash
# `just test-new-service` (CI runs it): `just new-service` in a scratch copy of this
# workspace, one service of each kind, then what a team would do next:
#   1. their spawn-app and CLI tests, and clippy with warnings as errors;
#   2. `just up` with them: the resource server refuses a call without a token and serves
#      one with a token of its registered tester client; the caller, with its registered
#      client, gets forecasts from my-service.
# The scratch copy shares this checkout's target directory, so the dependencies are not
# built again; only the workspace's own crates (at the scratch path) and the new ones are.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SCRATCH=$(mktemp -d)
UP_PID=
cleanup() {
  # TERM, not INT: a background job of a script ignores SIGINT. up.sh stops its children.
  if [[ -n $UP_PID ]]; then
    kill -TERM "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
  fi
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
say() { printf '[test-new-service] %s\n' "$*"; }

# The working tree as a clone plus local changes would hold it (tracked and untracked, not
# ignored), in a repository of its own: the generator copies the template's tracked files.
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$SCRATCH"
cd "$SCRATCH"
git init -q && git add -A

bash infra/new-service/new-service.sh demo-api resource-server
bash infra/new-service/new-service.sh demo-caller caller
# The generator refuses what it must not overwrite.
if bash infra/new-service/new-service.sh demo-api caller 2>/dev/null; then
  say "ERROR: a second demo-api was generated over the first" >&2
  exit 1
fi
grep -rq "bench-no-auth\|MYBFF\|my_bff" demo-api demo-caller &&
  { say "ERROR: the generated services carry the template's names or benchmark paths" >&2; exit 1; }

say "tests and clippy of the generated services"
cargo test --quiet -p demo-api -p demo-caller
cargo clippy --quiet -p demo-api -p demo-caller --all-targets -- -D warnings

say "just up with them"
cargo build --quiet --bins -p mock-issuer -p my-service -p my-bff -p demo-api -p demo-caller
LOG=$SCRATCH/up.log
# Ports away from a developer's own `just up`.
BIN_DIR=$CARGO_TARGET_DIR/debug UP_ISSUER_PORT=17400 UP_SERVICE_PORT=17401 UP_BFF_PORT=17402 \
  bash infra/local/up.sh >"$LOG" 2>&1 &
UP_PID=$!
for _ in $(seq 600); do
  grep -q '^\[up\] ready' "$LOG" && break
  kill -0 "$UP_PID" 2>/dev/null || { cat "$LOG" >&2; say "ERROR: just up exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^\[up\] ready' "$LOG" || { cat "$LOG" >&2; say "ERROR: just up not ready in 60 s" >&2; exit 1; }
api=$(awk -F'|' '$1 == "demo-api" {print $2}' infra/local/services)
caller=$(awk -F'|' '$1 == "demo-caller" {print $2}' infra/local/services)

status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api/weatherforecast")
[[ $status == 401 ]] || { say "ERROR: demo-api without a token: $status, expected 401" >&2; exit 1; }
set -a; source infra/local/dev.env; set +a
token=$("$CARGO_TARGET_DIR/debug/mock-issuer" token --issuer http://127.0.0.1:17400 \
  --client-id demo-api-tester --client-secret "$DEMOAPI_TESTER_CLIENT_SECRET" --scope DemoApi/weather_read)
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$api/weatherforecast")
[[ $status == 200 ]] || { say "ERROR: demo-api with its tester's token: $status, expected 200" >&2; exit 1; }
body=$(curl -s "http://127.0.0.1:$caller/weatherforecast")
[[ $body == \[*temperatureC* ]] || { cat "$LOG" >&2; say "ERROR: demo-caller answered: $body" >&2; exit 1; }
say "ok: both kinds generated, tested and running under just up"
