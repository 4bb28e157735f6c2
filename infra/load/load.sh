#!/usr/bin/env bash
# `just load`: end-to-end throughput with auth on and off, measured side by side.
#
# Builds the release binaries and their auth-off twins (package `load-no-auth`: the same
# routers from the services' libraries, without my-service's auth layers and my-bff's token
# middleware; the services themselves carry no benchmark-only code). Starts
# mock-issuer plus both variants of my-service and my-bff on loopback ports, then runs wrk
# against each target in interleaved rounds (A, B, A, B, ...) so both see the same machine
# noise, and prints requests/s, the ratios and resident memory. A third my-bff with a
# DPoP key gives the DPoP-vs-bearer row, end to end.
#
# Fleet rows: 10,000 distinct valid tokens are minted (`mock-issuer token --count`), and
# wrk with infra/load/rotate.lua sends 1, 500 or 10,000 of them round robin, to a second
# my-service (auth on) and to the auth-off twin, so the validated-token cache is measured
# with many callers, not just one. Flood rows: the 500-token traffic alone, then beside a
# second wrk (infra/load/flood.lua) sending forged tokens (known kid, random signature) at
# half that rate, against a my-service with its verification bound off and one with the
# default bound.
#
# Bounded: ROUNDS rounds of 5 runs of DURATION seconds and 9 runs of FLEET_DURATION
# seconds (about a minute a round with the defaults), plus minting and a WARMUP pass per
# service; CONNECTIONS connections, loopback only. Honours CARGO_TARGET_DIR.
#
# Needs wrk (Debian: apt-get install wrk). Writes its table to stdout and to
# target/bench-results/load.md (`just bench-report` copies it into BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5}
FLEET_DURATION=${FLEET_DURATION:-3}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
FLOOD_THREADS=${FLOOD_THREADS:-1}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-128}
FLEET=(1 500 10000) # distinct tokens per fleet row; each set is the start of the last
FLOOD_SET=500
OUT=target/bench-results/load.md

command -v wrk >/dev/null || { echo "load: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
(( ROUNDS >= 1 && DURATION >= 1 && FLEET_DURATION >= 1 && WARMUP >= 1 )) ||
  { echo "load: ROUNDS, DURATION, FLEET_DURATION and WARMUP must be at least 1" >&2; exit 1; }
START_TIME=$SECONDS
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

echo "load: building release binaries (auth on, auth off)..." >&2
cargo build --quiet --release --bins -p mock-issuer -p my-service -p my-bff -p load-no-auth -p otlp-receiver

ON=${CARGO_TARGET_DIR:-target}/release
OFF=$ON
PIDS=()
WORK=$(mktemp -d)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

healthy() {
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
  local status; IFS= read -r -t 2 status <&3 || status=""
  exec 3<&-
  [[ $status == *" 200 "* ]]
}

PORTS=(17000 17062 17063 17064 17065 17066 17067 17068 17248 17249 17250 17251 17252 17318)
for port in "${PORTS[@]}"; do
  # A server already there would pass for ours below, and its numbers would be measured.
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
    exec 3<&-
    echo "load: port $port is taken (another \`just load\` running?); try again when it is free" >&2
    exit 1
  fi
done

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
# Its DPoP replay store sized for the DPoP row: one BFF key sends thousands of proofs a
# second, and one key alone may use half the store (AUTH_DPOP_REPLAY_PER_KEY is its share
# once the store is half full).
start 17062 env AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17062 AUTH_DPOP_REPLAY_CAPACITY=2000000 "$ON/my-service"
start 17063 env AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17063 "$OFF/my-service-no-auth"
start 17248 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17062 "$ON/my-bff"
start 17249 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17063 "$OFF/my-bff-no-auth"
# The same BFF with DPoP: its tokens bound to a key made at start, a proof per request, and
# my-service (DPoP allowed, its default) checking each proof and its jti.
start 17250 env AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17062 AUTH_SERVER_MYBFF_DPOP_KEY_FILE=generate "$ON/my-bff"
# The fleet rows get their own my-service, so the one-token figures and memory above keep
# their meaning, and this one's memory is that of a service that has seen 10,000 callers.
start 17064 env AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17064 "$ON/my-service"
# The flood pair: the verification bound off, and at its default (unset on purpose).
start 17065 env AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17065 AUTH_MAX_CONCURRENT_VERIFICATIONS=0 "$ON/my-service"
start 17066 env -u AUTH_MAX_CONCURRENT_VERIFICATIONS AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17066 "$ON/my-service"
SVC_ON_PID=${PIDS[1]} SVC_OFF_PID=${PIDS[2]} BFF_ON_PID=${PIDS[3]} FLEET_PID=${PIDS[6]}
# The telemetry pairs: my-bff and my-service exporting their spans (OTLP/HTTP, the SDK's
# batch processor) to a receiver that takes and discards them, so the rows measure what
# export costs the services, not what a collector does. One pair samples every request
# (the SDK's default), the other 1 % of them (OTEL_TRACES_SAMPLER=parentbased_traceidratio,
# decided once at the BFF; my-service follows the traceparent's flag).
"$ON/otlp-receiver" 127.0.0.1:17318 --discard >/dev/null 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do { exec 3<>/dev/tcp/127.0.0.1/17318; } 2>/dev/null && { exec 3<&-; break; }; sleep 0.1; done
OTEL=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:17318
start 17067 env $OTEL AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17067 "$ON/my-service"
start 17251 env $OTEL AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17067 "$ON/my-bff"
SVC_OTEL_PID=${PIDS[-2]} BFF_OTEL_PID=${PIDS[-1]}
SAMPLED="OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01"
start 17068 env $OTEL $SAMPLED AUTH_AUTHORITY=$ISSUER AUTH_RESOURCE=http://127.0.0.1:17068 "$ON/my-service"
start 17252 env $OTEL $SAMPLED AUTH_SERVER_TOKEN_ENDPOINT_URL=$ISSUER/oauth2/token MY_SERVICE_BASE_URL=http://127.0.0.1:17068 "$ON/my-bff"
SVC_SAMPLED_PID=${PIDS[-2]} BFF_SAMPLED_PID=${PIDS[-1]}

rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # kB
IDLE_SVC=$(rss "$SVC_ON_PID" VmRSS) IDLE_BFF=$(rss "$BFF_ON_PID" VmRSS) IDLE_FLEET=$(rss "$FLEET_PID" VmRSS)

# Distinct valid tokens, minted once; the smaller sets are the first lines of the largest,
# so the whole run puts at most that many distinct tokens in any service's cache.
MAX_SET=${FLEET[-1]}
echo "load: minting $MAX_SET tokens..." >&2
MINT_START=$SECONDS
timeout 300 "$ON/mock-issuer" token --issuer $ISSUER --count "$MAX_SET" >"$WORK/tokens.$MAX_SET"
MINT_SECONDS=$(( SECONDS - MINT_START ))
[[ $(sort -u "$WORK/tokens.$MAX_SET" | wc -l) == "$MAX_SET" ]] || { echo "load: the minted tokens are not $MAX_SET distinct ones" >&2; exit 1; }
for n in "${FLEET[@]}" "$FLOOD_SET"; do
  (( n == MAX_SET )) || head -n "$n" "$WORK/tokens.$MAX_SET" >"$WORK/tokens.$n"
done
TOKEN=$(head -n 1 "$WORK/tokens.$MAX_SET")

# Throughput moves with whatever else the two cores do (wrk runs on them too), so the
# my-service rows also record the service's own CPU time per request (utime + stime from
# /proc, in microseconds): a steadier measure of what the auth layer costs.
TICK=$(getconf CLK_TCK)
cpu() { # pid[,pid...]: their CPU ticks, summed
  local total=0 pid
  for pid in ${1//,/ }; do total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") )); done
  echo "$total"
}
drive() { # duration, url, tokens: "" (none), a token (one header on every request) or @FILE (rotate.lua)
  local duration=$1 url=$2 tokens=$3
  local args=(-t2 -c"$CONNECTIONS" -d"${duration}s")
  if [[ $tokens == @* ]]; then
    wrk "${args[@]}" -s infra/load/rotate.lua "$url" -- "${tokens#@}"
  elif [[ -n $tokens ]]; then
    wrk "${args[@]}" -H "Authorization: Bearer $tokens" "$url"
  else
    wrk "${args[@]}" "$url"
  fi
}
# Runs wrk and appends to $WORK/NAME.{rps,cpu,bad}: requests/s answered 2xx, the service's
# CPU µs per request (pid not -), and how many answers were not 2xx (valid traffic
# expects none; they are left out of the rate).
measure() { # name, duration, url, pid (or -), tokens (see drive)
  local name=$1 duration=$2 url=$3 pid=$4 tokens=$5
  local before=0 out
  [[ $pid != - ]] && before=$(cpu "$pid")
  out=$(drive "$duration" "$url" "$tokens")
  local after=0; [[ $pid != - ]] && after=$(cpu "$pid")
  awk -v name="$name" -v ticks="$(( after - before ))" -v hz="$TICK" -v dir="$WORK" -v cpu="$([[ $pid != - ]] && echo 1)" '
    / requests in / {n = $1}
    /Non-2xx or 3xx responses:/ {bad = $NF}
    /^Requests\/sec:/ {rps = $2}
    END {
      if (!n || rps == "") { print "load: wrk gave no result for " name > "/dev/stderr"; exit 1 }
      printf "%.2f\n", rps * (n - bad) / n >> (dir "/" name ".rps")
      if (cpu) printf "%.2f\n", ticks / hz * 1e6 / n >> (dir "/" name ".cpu")
      print bad + 0 >> (dir "/" name ".bad")
    }' <<<"$out" || { echo "$out" >&2; exit 1; }
}
# The validated-token cache's share of accepted tokens, from my-service's /metrics: the
# CPU delta says what the fleet rows cost, this says why.
cache_counts() { # port -> "hits accepted"
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || { echo "0 0"; return; }
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
  awk '/^shared_auth_validated_cache_hits_total / {h += $NF}
       /^shared_auth_validations_total\{/ && /outcome="accepted"/ {a += $NF}
       END {printf "%d %d\n", h, a}' <&3
  exec 3<&-
}
cache_hits_since() { # name, port, "hits accepted" before
  local before=$3
  awk -v b="$before" -v a="$(cache_counts "$2")" 'BEGIN {
    split(b, x, " "); split(a, y, " "); n = y[2] - x[2]
    if (n > 0) printf "%.1f\n", 100 * (y[1] - x[1]) / n; else print "?" }' >>"$WORK/$1.hits"
}
# The forged-token flood beside the 500-token traffic: it starts first and stops last, so
# the whole valid run is under flood. Appends the flood's own rate and its status counts.
flooded() { # name, port, rate
  local name=$1 port=$2 rate=$3
  local url=http://127.0.0.1:$port/weatherforecast
  wrk -t"$FLOOD_THREADS" -c"$FLOOD_CONNECTIONS" -d"$(( FLEET_DURATION + 1 ))s" -s infra/load/flood.lua \
    "$url" -- "$WORK/tokens.$FLOOD_SET" "$rate" "$FLOOD_THREADS" >"$WORK/flood.out" &
  local flood=$!
  sleep 0.5
  measure "$name" "$FLEET_DURATION" "$url" - "@$WORK/tokens.$FLOOD_SET"
  wait "$flood"
  awk '/^Requests\/sec:/ {print $2}' "$WORK/flood.out" >>"$WORK/$name.flood_rps"
  echo "$rate" >>"$WORK/$name.flood_target"
  sed -n 's/^flood statuses: //p' "$WORK/flood.out" >>"$WORK/$name.flood_statuses"
}

# Warm-up: every token of a set reaches the service before anything is measured, so the
# rows measure the steady state (the cache already holding what it can), not first sight.
WARMED=()
warm() { # port, set
  local port=$1 set=$2 out n duration=$WARMUP
  # Two wrk threads each walk the whole list from their own offset: twice the set covers
  # every token whatever the split between them. A busy machine may need a longer pass.
  for _ in 1 2 3; do
    out=$(drive "$duration" "http://127.0.0.1:$port/weatherforecast" "@$WORK/tokens.$set")
    n=$(awk '/ requests in / {print $1}' <<<"$out")
    if (( ${n:-0} >= 2 * set )); then
      WARMED+=("port $port: $n requests in ${duration}s for $set tokens")
      return
    fi
    duration=$(( duration * 2 ))
  done
  echo "load: warm-up of $port sent only $n requests for $set tokens in ${duration}s; raise WARMUP" >&2
  exit 1
}
echo "load: warm-up (${WARMUP}s or more per service)..." >&2
warm 17064 "$MAX_SET"
warm 17063 "$MAX_SET"
warm 17065 "$FLOOD_SET"
warm 17066 "$FLOOD_SET"

join() { local IFS=';'; sed 's/;/; /g' <<<"$*"; }
median_of() { sort -n "$WORK/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
list() { paste -sd' ' "$WORK/$1"; }
sum_of() { awk '{s += $1} END {print s + 0}' "$WORK/$1"; }

for round in $(seq "$ROUNDS"); do
  echo "load: round $round/$ROUNDS" >&2
  measure svc_on "$DURATION" http://127.0.0.1:17062/weatherforecast "$SVC_ON_PID" "$TOKEN"
  # The same request, header included: only the auth layers differ.
  measure svc_off "$DURATION" http://127.0.0.1:17063/weatherforecast "$SVC_OFF_PID" "$TOKEN"
  for n in "${FLEET[@]}"; do
    counts=$(cache_counts 17064)
    measure "fleet_on_$n" "$FLEET_DURATION" http://127.0.0.1:17064/weatherforecast "$FLEET_PID" "@$WORK/tokens.$n"
    cache_hits_since "fleet_on_$n" 17064 "$counts"
    measure "fleet_off_$n" "$FLEET_DURATION" http://127.0.0.1:17063/weatherforecast "$SVC_OFF_PID" "@$WORK/tokens.$n"
  done
  measure bff_on "$DURATION" http://127.0.0.1:17248/weatherforecast "$BFF_ON_PID,$SVC_ON_PID" ""
  # Export on: the same pair of services, every request's spans exported, then 1 %.
  measure bff_otel "$DURATION" http://127.0.0.1:17251/weatherforecast "$BFF_OTEL_PID,$SVC_OTEL_PID" ""
  measure bff_sampled "$DURATION" http://127.0.0.1:17252/weatherforecast "$BFF_SAMPLED_PID,$SVC_SAMPLED_PID" ""
  measure bff_off "$DURATION" http://127.0.0.1:17249/weatherforecast - ""
  measure bff_dpop "$DURATION" http://127.0.0.1:17250/weatherforecast - ""
  # The flood's rate is half of this round's valid-only rate, measured just before.
  measure flood_none "$FLEET_DURATION" http://127.0.0.1:17066/weatherforecast - "@$WORK/tokens.$FLOOD_SET"
  rate=$(tail -n 1 "$WORK/flood_none.rps" | awk '{printf "%d", $1 / 2}')
  flooded flood_unbounded 17065 "$rate"
  flooded flood_bounded 17066 "$rate"
done

# The fleet service's last load was the 10,000-token row: let it settle, then read it.
sleep 1
FLEET_RSS=$(rss "$FLEET_PID" VmRSS) PEAK_FLEET=$(rss "$FLEET_PID" VmHWM)
PEAK_SVC=$(rss "$SVC_ON_PID" VmHWM) PEAK_BFF=$(rss "$BFF_ON_PID" VmHWM)
SVC_RSS=$(rss "$SVC_ON_PID" VmRSS) BFF_RSS=$(rss "$BFF_ON_PID" VmRSS)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f %%", 100 * a / b}'; }
# Rounds are pairs (on, then off, seconds apart): the median of the per-round differences
# cancels more of the machine's drift than the difference of the medians.
paired_delta() { # file of on values, file of off values
  paste "$WORK/$1" "$WORK/$2" | awk '{print $1 - $2}' | sort -n |
    awk '{a[NR]=$1} END {printf "%+.2f", a[int((NR+1)/2)]}'
}
num() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; } # 10000 -> 10,000
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }
statuses() { # summed over the rounds, as "401: N, 503: M"
  tr ' ' '\n' <"$WORK/$1.flood_statuses" | awk -F= 'NF == 2 {s[$1] += $2} END {
    for (k in s) printf "%s%s: %d", (n++ ? ", " : ""), k, s[k]; if (!n) printf "none" }'
}
svc_on=$(median_of svc_on.rps) svc_off=$(median_of svc_off.rps)
bff_on=$(median_of bff_on.rps) bff_off=$(median_of bff_off.rps) bff_dpop=$(median_of bff_dpop.rps)
bff_otel=$(median_of bff_otel.rps) cpu_bff_on=$(median_of bff_on.cpu) cpu_bff_otel=$(median_of bff_otel.cpu)
bff_sampled=$(median_of bff_sampled.rps) cpu_bff_sampled=$(median_of bff_sampled.cpu)
cpu_on=$(median_of svc_on.cpu) cpu_off=$(median_of svc_off.cpu)
flood_none=$(median_of flood_none.rps)
BAD=()
for f in "$WORK"/*.bad; do
  n=$(sum_of "$(basename "$f")")
  (( n == 0 )) || BAD+=("$(basename "$f" .bad): $n")
done
TOTAL_SECONDS=$(( SECONDS - START_TIME ))

mkdir -p "$(dirname "$OUT")"
{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); load average $LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end;"
  echo "command: \`just load\` (wrk -t2 -c$CONNECTIONS, -d${DURATION}s for the one-token and my-bff rows, -d${FLEET_DURATION}s for the fleet and flood rows; median of $ROUNDS interleaved rounds, release build; ${TOTAL_SECONDS} s in all, build included)."
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
  echo "| end to end | traces exported (req/s) | export off (req/s) | on / off | CPU µs per request (my-bff + my-service), on / off |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  echo "| my-bff -> my-service, 1 % of requests traced (OTEL_TRACES_SAMPLER=parentbased_traceidratio, _ARG=0.01) | $bff_sampled | $bff_on | $(ratio "$bff_sampled" "$bff_on") | $cpu_bff_sampled / $cpu_bff_on ($(ratio "$cpu_bff_sampled" "$cpu_bff_on")) |"
  echo "| my-bff -> my-service, every request traced (the SDK's default sampler) | $bff_otel | $bff_on | $(ratio "$bff_otel" "$bff_on") | $cpu_bff_otel / $cpu_bff_on ($(ratio "$cpu_bff_otel" "$cpu_bff_on")) |"
  echo
  echo "Telemetry rows: two more my-bff -> my-service pairs with OTEL_EXPORTER_OTLP_ENDPOINT set, exporting over OTLP/HTTP to \`otlp-receiver --discard\` on the same machine; export off is the auth-on pair of the first table. CPU: both services' own time per request (utime + stime), median of the rounds."
  echo
  echo "my-service CPU time per request (median): auth on $cpu_on µs, auth off $cpu_off µs; $(awk -v a="$cpu_on" -v b="$cpu_off" 'BEGIN {printf "+%.2f µs, off / on = %.1f %%", a - b, 100 * b / a}')."
  echo
  echo "| my-service, distinct valid tokens round robin (rotate.lua) | auth on (req/s) | auth off (req/s) | on / off | CPU µs per request, on - off | validated-cache hits (auth on) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for n in "${FLEET[@]}"; do
    on=$(median_of "fleet_on_$n.rps") off=$(median_of "fleet_off_$n.rps")
    label="$(num "$n") tokens"; (( n > 1 )) || label="1 token"
    echo "| $label | $on | $off | $(ratio "$on" "$off") | $(paired_delta "fleet_on_$n.cpu" "fleet_off_$n.cpu") | $(median_of "fleet_on_$n.hits") % |"
  done
  echo
  echo "Fleet rows: a second my-service (auth on) and the same auth-off twin, both driven by infra/load/rotate.lua over the same token file (each request the next token, requests formatted once at start, so wrk's own cost is the same on and off). The $(num "$MAX_SET") tokens were minted by \`mock-issuer token --count\` in ${MINT_SECONDS} s; the smaller sets are its first lines. Warm-up before the first round: each service got every token of its set in one wrk pass of ${WARMUP} s or, on a busy machine, longer ($(join "${WARMED[@]}")), so the rows measure the steady state. CPU µs: the services' own CPU time per request, auth on minus auth off, median of the per-round differences. Validated-cache hits: of the tokens my-service accepted during the row, the share its validated-token cache answered without verifying (from its /metrics)."
  echo
  echo "| valid traffic: $FLOOD_SET tokens round robin, my-service auth on | valid req/s | / without flood | forged req/s sent (target) | forged requests answered |"
  echo "| --- | ---: | ---: | ---: | --- |"
  echo "| without flood (default bound) | $flood_none | 100.0 % | - | - |"
  for row in "flood_unbounded:with flood, bound off (AUTH_MAX_CONCURRENT_VERIFICATIONS=0)" "flood_bounded:with flood, bound on (default)"; do
    name=${row%%:*}
    valid=$(median_of "$name.rps")
    echo "| ${row#*:} | $valid | $(ratio "$valid" "$flood_none") | $(median_of "$name.flood_rps") ($(median_of "$name.flood_target")) | $(statuses "$name") |"
  done
  echo
  echo "Flood rows: while the valid traffic runs, a second wrk (-t$FLOOD_THREADS -c$FLOOD_CONNECTIONS, infra/load/flood.lua, paced with delay()) sends forged tokens: the $FLOOD_SET valid tokens with their signatures replaced by random bytes of the same length and a sequence number in their first bytes, so each forged request is distinct, names a known key and costs a full RSA verification. Its target rate is half the round's valid-only rate; it starts 0.5 s before the valid run and ends after it. Both wrk share the two cores with the service. Forged answers are summed over the rounds: 401 is a forged token verified and refused, 503 one refused at the verification bound without being verified."
  echo
  echo "| process (auth on) | idle RSS at start | idle RSS after the rounds | peak RSS (VmHWM) |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| my-service, one token (the one-token and my-bff rows) | $(mib "$IDLE_SVC") | $(mib "$SVC_RSS") | $(mib "$PEAK_SVC") |"
  echo "| my-service, after the $(num "$MAX_SET")-token row ($(num "$MAX_SET") distinct tokens seen) | $(mib "$IDLE_FLEET") | $(mib "$FLEET_RSS") | $(mib "$PEAK_FLEET") |"
  echo "| my-bff | $(mib "$IDLE_BFF") | $(mib "$BFF_RSS") | $(mib "$PEAK_BFF") |"
  echo
  echo "Rounds (req/s): my-service on $(list svc_on.rps) / off $(list svc_off.rps); my-bff on $(list bff_on.rps) / off $(list bff_off.rps) / DPoP $(list bff_dpop.rps) / traces exported: all $(list bff_otel.rps), 1 % $(list bff_sampled.rps); CPU µs per request (my-bff + my-service) export off $(list bff_on.cpu) / all $(list bff_otel.cpu) / 1 % $(list bff_sampled.cpu). CPU µs per request: my-service on $(list svc_on.cpu) / off $(list svc_off.cpu)."
  for n in "${FLEET[@]}"; do
    echo "Fleet $n (req/s): on $(list "fleet_on_$n.rps") / off $(list "fleet_off_$n.rps"); CPU µs per request on $(list "fleet_on_$n.cpu") / off $(list "fleet_off_$n.cpu"); validated-cache hits $(list "fleet_on_$n.hits") %."
  done
  echo "Flood (valid req/s): none $(list flood_none.rps); bound off $(list flood_unbounded.rps); bound on $(list flood_bounded.rps). Forged req/s sent: bound off $(list flood_unbounded.flood_rps), bound on $(list flood_bounded.flood_rps)."
  if (( ${#BAD[@]} )); then
    echo "Valid requests answered other than 2xx (left out of the rates): ${BAD[*]}."
  else
    echo "Every valid request was answered 2xx."
  fi
} | tee "$OUT"
