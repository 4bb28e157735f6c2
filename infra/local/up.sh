#!/usr/bin/env bash
# `just up`: run the whole system locally with the dev configuration in infra/local/.
#
# Starts each service from target/debug (built by `just up`), prefixes its log lines with its
# name, waits until each answers GET /healthz, prints the URLs and a ready line, and on
# Ctrl-C (SIGINT) or SIGTERM stops every child and waits for it. Needs nothing but bash:
# readiness is checked over bash's /dev/tcp, so curl is not required.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The binaries cargo built: in CARGO_TARGET_DIR when one is set.
BIN=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}
READY_TIMEOUT_SECS=${READY_TIMEOUT_SECS:-30}
# The dev ports; override them to run a second system beside one (the process test does).
ISSUER_PORT=${UP_ISSUER_PORT:-7000}
SERVICE_PORT=${UP_SERVICE_PORT:-7062}
BFF_PORT=${UP_BFF_PORT:-7248}
# The issuer's mTLS token endpoint (RFC 8705): its CA, a certificate per client and the
# endpoint's URL are written here at start.
MTLS_DIR=${UP_MTLS_DIR:-target/mtls}

set -a
# shellcheck source=dev.env
source infra/local/dev.env
set +a

# The issuer's admin endpoints (/admin/stats, /admin/rotate-key) want this bearer token: a
# fresh random one per run unless the caller sets its own (a script that wants to call them).
# Exported for the issuer; the other services do not read it.
if [[ -z ${MOCK_ISSUER_ADMIN_TOKEN:-} ]]; then
  MOCK_ISSUER_ADMIN_TOKEN=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
fi
export MOCK_ISSUER_ADMIN_TOKEN

env_file() { grep -v '^#' "$1" | xargs; }

# name | port | command (run with the environment above plus BIND_ADDR)
SERVICES=(
  "issuer|$ISSUER_PORT|$BIN/mock-issuer --config infra/local/issuer.toml --admin --mtls-dir $MTLS_DIR"
  "my-service|$SERVICE_PORT|env $(env_file infra/local/my-service.env) AUTH_AUTHORITY=http://127.0.0.1:$ISSUER_PORT AUTH_RESOURCE=http://127.0.0.1:$SERVICE_PORT $BIN/my-service"
  "my-bff|$BFF_PORT|env $(env_file infra/local/my-bff.env) AUTH_SERVER_TOKEN_ENDPOINT_URL=http://127.0.0.1:$ISSUER_PORT/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:$SERVICE_PORT BFF_PUBLIC_URL=http://127.0.0.1:$BFF_PORT BFF_LOGIN_AUTHORITY=http://127.0.0.1:$ISSUER_PORT $BIN/my-bff"
)
# Services added by `just new-service` (infra/local/services: NAME|PORT|KIND), configured as
# the reference service of their kind is.
EXTRA=()
if [[ -f infra/local/services ]]; then
  while IFS='|' read -r name port kind; do
    [[ -z $name || $name == \#* ]] && continue
    case $kind in
      resource-server) wiring="AUTH_AUTHORITY=http://127.0.0.1:$ISSUER_PORT AUTH_RESOURCE=http://127.0.0.1:$port" ;;
      caller) wiring="AUTH_SERVER_TOKEN_ENDPOINT_URL=http://127.0.0.1:$ISSUER_PORT/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:$SERVICE_PORT" ;;
      *) echo "[up] ERROR: infra/local/services: $name has unknown kind '$kind'" >&2; exit 1 ;;
    esac
    SERVICES+=("$name|$port|env $(env_file "infra/local/$name.env") $wiring $BIN/$name")
    EXTRA+=("$name|$port")
  done < infra/local/services
fi

say() { printf '[up] %s\n' "$*"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# GET http://127.0.0.1:PORT/healthz answers 200?
healthy() {
  local status
  # The group scopes 2>/dev/null to the connect; a bare `exec ... 2>/dev/null` would
  # silence this script's stderr for good.
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 status <&3 || status=""
  exec 3<&-
  [[ $status == *" 200 "* ]]
}

for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name port _ <<<"$entry"
  if port_in_use "$port"; then
    say "ERROR: port $port (for $name) is already in use on 127.0.0.1; stop whatever holds it (a previous 'just up'?) and retry." >&2
    exit 1
  fi
done

PIDS=()
stop_all() {
  trap - INT TERM
  say "stopping..."
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  say "stopped"
}
# Ctrl-C is how `just up` is meant to end: a clean stop, exit 0 (just would otherwise
# report "recipe `up` failed ... exit code 130").
trap 'stop_all; exit 0' INT
trap 'stop_all; exit 143' TERM

for entry in "${SERVICES[@]}"; do
  IFS='|' read -r name port cmd <<<"$entry"
  # shellcheck disable=SC2086 # cmd is a word list on purpose
  BIND_ADDR="127.0.0.1:$port" $cmd > >(sed -u "s/^/[$name] /") 2>&1 &
  PIDS+=("$!")
  deadline=$((SECONDS + READY_TIMEOUT_SECS))
  until healthy "$port"; do
    if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then
      say "ERROR: $name exited during start (see its log above)" >&2
      stop_all
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "ERROR: $name did not answer http://127.0.0.1:$port/healthz within ${READY_TIMEOUT_SECS}s" >&2
      stop_all
      exit 1
    fi
    sleep 0.1
  done
done

say "issuer      http://127.0.0.1:$ISSUER_PORT/.well-known/openid-configuration"
say "my-service  http://127.0.0.1:$SERVICE_PORT/weatherforecast   Swagger UI: http://127.0.0.1:$SERVICE_PORT/swagger-ui/"
say "my-bff      http://127.0.0.1:$BFF_PORT/weatherforecast   Swagger UI: http://127.0.0.1:$BFF_PORT/swagger-ui/"
for entry in "${EXTRA[@]}"; do
  IFS='|' read -r name port <<<"$entry"
  say "$(printf '%-11s' "$name") http://127.0.0.1:$port/   Swagger UI: http://127.0.0.1:$port/swagger-ui/"
done
say "try:        curl -s http://127.0.0.1:$BFF_PORT/weatherforecast"
say "users:      http://127.0.0.1:$BFF_PORT/ in a browser; log in as alice / $MOCK_ISSUER_ALICE_PASSWORD (the issuer's dev user)"
say "mTLS:       curl -s --cacert $MTLS_DIR/ca.pem --cert $MTLS_DIR/my-bff.pem --key $MTLS_DIR/my-bff.key -d grant_type=client_credentials -d client_id=my-bff \$(cat $MTLS_DIR/token_endpoint)   (a token bound to the certificate)"
say "admin:      curl -s -H 'Authorization: Bearer $MOCK_ISSUER_ADMIN_TOKEN' http://127.0.0.1:$ISSUER_PORT/admin/stats"
say "ready (Ctrl-C stops everything)"

# Any child exiting on its own takes the whole system down, so nothing half-runs.
set +e
wait -n "${PIDS[@]}"
code=$?
say "a service exited (status $code); stopping the rest" >&2
stop_all
exit "$code"
