#!/usr/bin/env bash
# `just load`: end-to-end throughput with auth on and off, measured side by side.
#
# Builds the release binaries and their auth-off twins (package `load-no-auth`: the same
# routers from the services' libraries, without my-service's auth layers and my-bff's token
# middleware; the services themselves carry no benchmark-only code). Starts
# mock-issuer plus both variants of my-service and my-bff on loopback ports, then runs wrk
# against each target in interleaved rounds (A, B, A, B, ...) so both see the same machine
# noise, and prints requests/s, the ratios and peak resident memory. A third my-bff with a
# DPoP key gives the DPoP-vs-bearer row, end to end. Bounded: ROUNDS x 5
# runs of DURATION seconds, CONNECTIONS connections, loopback only.
#
# Needs wrk (Debian: apt-get install wrk). Writes its table to stdout and to
# target/bench-results/load.md (`just bench-report` copies it into BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
OUT=target/bench-results/load.md

command -v wrk >/dev/null || { echo "load: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

echo "load: building release binaries (auth on, auth off)..." >&2
cargo build --quiet --release --bins -p mock-issuer -p my-service -p my-bff -p load-no-auth

ON=target/release
OFF=$ON
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

healthy() {
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
  local status; IFS= read -r -t 2 status <&3 || status=""
  exec 3<&-
  [[ $status == *" 200 "* ]]
}

start() { # port, command...
  local port=$1; shift
  RUST_LOG=warn BENCH_NO_AUTH_ACK=yes BIND_ADDR="127.0.0.1:$port" "$@" >/dev/null 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 100); do healthy "$port" && return 0; sleep 0.1; done
  echo "load: $* did not start on $port" >&2; exit 1
}

set -a; source infra/local/dev.env; set +a
ISSUER=http://127.0.0.1:17000
start 17000 "$ON/mock-issuer" --config infra/local/issuer.toml
start 17062 env AUTH_AUTHORITY=$ISSUER "$ON/my-service"
start 17063 env AUTH_AUTHORITY=$ISSUER "$OFF/my-service-no-auth"
start 17248 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17062 "$ON/my-bff"
start 17249 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17063 "$OFF/my-bff-no-auth"
# The same BFF with DPoP: its tokens bound to a key made at start, a proof per request, and
# my-service (DPoP allowed, its default) checking each proof and its jti.
start 17250 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17062 AUTH_SERVER_MYBFF_DPOP_KEY_FILE=generate "$ON/my-bff"
SVC_ON_PID=${PIDS[1]} SVC_OFF_PID=${PIDS[2]} BFF_ON_PID=${PIDS[3]}
TOKEN=$("$ON/mock-issuer" token --issuer $ISSUER)

rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # kB
IDLE_SVC=$(rss "$SVC_ON_PID" VmRSS) IDLE_BFF=$(rss "$BFF_ON_PID" VmRSS)

# Throughput moves with whatever else the two cores do (wrk runs on them too), so the
# my-service pair also records the service's own CPU time per request (utime + stime from
# /proc, in microseconds): a steadier measure of what the auth layer costs.
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CPU_FILE=$(mktemp)
rps() { # url, pid (or -), extra wrk args...
  local url=$1 pid=$2; shift 2
  local before=0 out
  [[ $pid != - ]] && before=$(cpu "$pid")
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "$@" "$url")
  if [[ $pid != - ]]; then
    awk -v t="$(( $(cpu "$pid") - before ))" -v hz="$TICK" '/ requests in / {printf "%.2f\n", t / hz * 1e6 / $1}' <<<"$out" >>"$CPU_FILE.$pid"
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a SVC_ON SVC_OFF BFF_ON BFF_OFF BFF_DPOP
for round in $(seq "$ROUNDS"); do
  echo "load: round $round/$ROUNDS" >&2
  SVC_ON+=("$(rps http://127.0.0.1:17062/weatherforecast "$SVC_ON_PID" -H "Authorization: Bearer $TOKEN")")
  # The same request, header included: only the auth layers differ.
  SVC_OFF+=("$(rps http://127.0.0.1:17063/weatherforecast "$SVC_OFF_PID" -H "Authorization: Bearer $TOKEN")")
  BFF_ON+=("$(rps http://127.0.0.1:17248/weatherforecast -)")
  BFF_OFF+=("$(rps http://127.0.0.1:17249/weatherforecast -)")
  BFF_DPOP+=("$(rps http://127.0.0.1:17250/weatherforecast -)")
done
svc_on=$(median "${SVC_ON[@]}") svc_off=$(median "${SVC_OFF[@]}")
bff_on=$(median "${BFF_ON[@]}") bff_off=$(median "${BFF_OFF[@]}") bff_dpop=$(median "${BFF_DPOP[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f %%", 100 * a / b}'; }
PEAK_SVC=$(rss "$SVC_ON_PID" VmHWM) PEAK_BFF=$(rss "$BFF_ON_PID" VmHWM)
mapfile -t CPU_ON <"$CPU_FILE.$SVC_ON_PID"
mapfile -t CPU_OFF <"$CPU_FILE.$SVC_OFF_PID"
rm -f "$CPU_FILE" "$CPU_FILE".*
cpu_on=$(median "${CPU_ON[@]}") cpu_off=$(median "${CPU_OFF[@]}")

mkdir -p "$(dirname "$OUT")"
{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr);"
  echo "command: \`just load\` (wrk -t2 -c$CONNECTIONS -d${DURATION}s, median of $ROUNDS interleaved rounds, release build)."
  echo
  echo "| target | auth on (req/s) | auth off (req/s) | on / off |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| my-service, same valid token on every request | $svc_on | $svc_off | $(ratio "$svc_on" "$svc_off") |"
  echo "| my-bff -> my-service (end to end) | $bff_on | $bff_off | $(ratio "$bff_on" "$bff_off") |"
  echo
  echo "| end to end | DPoP (req/s) | bearer (req/s) | DPoP / bearer |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| my-bff -> my-service, a proof signed by my-bff and checked by my-service per request | $bff_dpop | $bff_on | $(ratio "$bff_dpop" "$bff_on") |"
  echo
  echo "my-service CPU time per request (median): auth on $cpu_on µs, auth off $cpu_off µs; $(awk -v a="$cpu_on" -v b="$cpu_off" 'BEGIN {printf "+%.2f µs, off / on = %.1f %%", a - b, 100 * b / a}')."
  echo
  echo "| process (auth on) | idle RSS | peak RSS under load (VmHWM) |"
  echo "| --- | ---: | ---: |"
  echo "| my-service | $((IDLE_SVC / 1024)) MiB | $((PEAK_SVC / 1024)) MiB |"
  echo "| my-bff | $((IDLE_BFF / 1024)) MiB | $((PEAK_BFF / 1024)) MiB |"
  echo
  echo "Rounds (req/s): my-service on ${SVC_ON[*]} / off ${SVC_OFF[*]}; my-bff on ${BFF_ON[*]} / off ${BFF_OFF[*]} / DPoP ${BFF_DPOP[*]}. CPU µs per request: my-service on ${CPU_ON[*]} / off ${CPU_OFF[*]}."
} | tee "$OUT"
