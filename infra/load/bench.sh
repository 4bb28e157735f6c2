#!/usr/bin/env bash
# `just bench`: the criterion benchmarks of shared-auth, then a table of the pairs that
# matter, each measured side by side in the same run. Writes target/bench-results/bench.md.
# Then what delegation costs (shared-auth/benches/delegation.rs, target/bench-results/
# delegation.md) and the cost-growth sweep (shared-auth/benches/growth.rs), which writes
# target/bench-results/growth.{csv,md,svg} itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/bench-results/bench.md
RAW=target/bench-results/bench.txt
mkdir -p target/bench-results
[[ ${1:-} == -- ]] && shift # `just bench -- --measurement-time 5` passes the -- along
# With redis-server installed (Debian's `redis-server`; `.ci/run`'s container setup installs
# it), a throwaway Redis on a free loopback port for the L1-vs-L2 read pair.
redis_pid=
if command -v redis-server >/dev/null 2>&1; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize no \
    --loglevel warning >/dev/null &
  redis_pid=$!
  trap '[[ -n $redis_pid ]] && kill $redis_pid 2>/dev/null' EXIT
  export BENCH_REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
cargo bench --quiet -p shared-auth --features redis --bench auth -- "$@" 2>&1 | tee "$RAW"

# criterion prints "name  time: [low median high]" (sometimes over two lines).
awk '
  /^[a-z_]+\/[a-z_]+/ { name = $1 }
  /time:/ {
    for (i = 1; i <= NF; i++) if ($i == "time:") { v = $(i + 3); u = $(i + 4) }
    gsub(/\[/, "", v)
    ns = v; if (u == "µs" || u == "us") ns = v * 1000; else if (u == "ms") ns = v * 1000000
    print name, ns
  }' "$RAW" > target/bench-results/bench.ns
ns() { awk -v n="$1" '$1 == n {print $2}' target/bench-results/bench.ns; }
fmt() { awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%.1f µs", x / 1000; else printf "%.0f ns", x }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN {printf "+%.0f ns", a - b}'; }
stampede=$(grep -o 'stampede: .*' "$RAW" || echo "stampede: not run")
paired=$(grep -o 'paired: .*' "$RAW" || echo "paired: not run")
paired_ratio=$(sed -nE 's/.*= ([0-9.]+)x.*/\1x/p' <<<"$paired")
two=$(grep -o 'two issuers: .*' "$RAW" || echo "two issuers: not run")
dpop_paired=$(grep -o 'paired dpop: .*' "$RAW" || echo "paired dpop: not run")
two_ratio=$(sed -nE 's/.*one issuer = ([0-9.]+)x.*/\1x/p' <<<"$two")

{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -sr); command: \`just bench\` (criterion medians, bench profile)."
  echo
  echo "| what | ours | reference, same run | ratio | target |"
  echo "| --- | ---: | ---: | ---: | --- |"
  echo "| validate a first-seen RS256 token | $(fmt "$(ns validate/first_seen)") | raw aws-lc-rs verify (key parsed beforehand) $(fmt "$(ns validate/raw_aws_lc)") | $(div "$(ns validate/first_seen)" "$(ns validate/raw_aws_lc)") | |"
  echo "| the same, interleaved batches (fastest of each; see below) | | | ${paired_ratio:-n/a} | <= 1.10x |"
  echo "| the same, validator trusting two issuers (token's issuer second) vs one issuer, interleaved | | | ${two_ratio:-n/a} | |"
  echo "| validate a repeated token (validated-token cache) | $(fmt "$(ns validate/repeat)") | first-seen $(fmt "$(ns validate/first_seen)") | $(div "$(ns validate/first_seen)" "$(ns validate/repeat)") faster | |"
  echo "| plain jsonwebtoken decode (peer) | | $(fmt "$(ns validate/jsonwebtoken_decode)") | | |"
  echo "| \`TokenManager::token()\` warm | $(fmt "$(ns client/token_hit)") | \`RwLock<Option<token>>\` $(fmt "$(ns client/rwlock_option)") | $(div "$(ns client/token_hit)" "$(ns client/rwlock_option)") | <= 250 ns |"
  if [[ -n $(ns tiered/redis_hit) ]]; then
    echo "| token cache read: Redis (L2, sealed, loopback) | $(fmt "$(ns tiered/redis_hit)") | in-process (L1) $(fmt "$(ns tiered/memory_hit)") | $(sub "$(ns tiered/redis_hit)" "$(ns tiered/memory_hit)") | |"
  fi
  echo "| middleware per request | $(fmt "$(ns middleware/ours)") | static header $(fmt "$(ns middleware/static_header)") | $(sub "$(ns middleware/ours)" "$(ns middleware/static_header)") | <= +500 ns |"
  echo "| DPoP client: middleware with a proof per request, beyond bearer | $(sub "$(ns middleware/dpop)" "$(ns middleware/ours)") | one ES256 signature $(fmt "$(ns dpop/es256_sign)") | $(sub "$(awk -v a="$(ns middleware/dpop)" -v b="$(ns middleware/ours)" 'BEGIN {print a - b}')" "$(ns dpop/es256_sign)") beyond it | <= signature + 5 µs |"
  echo "| DPoP server: auth layer with a proof check, beyond bearer | $(sub "$(ns layer/dpop_repeat)" "$(ns layer/bearer_repeat)") | one ES256 verification $(fmt "$(ns dpop/es256_verify)") | $(sub "$(awk -v a="$(ns layer/dpop_repeat)" -v b="$(ns layer/bearer_repeat)" 'BEGIN {print a - b}')" "$(ns dpop/es256_verify)") beyond it | <= verification + 5 µs |"
  echo
  echo "${stampede} (target: 1)."
  echo
  echo "${paired}. Criterion measures the two one after the other, seconds apart; the interleaved batches see the same machine noise, so their ratio is the one the target is read from."
  echo
  echo "${two}."
  echo
  echo "${dpop_paired}. The DPoP server row's target is read from this interleaved figure."
} | tee "$OUT"

# What delegation costs (token exchange, Transaction Tokens): interleaved batches, printed
# and written to target/bench-results/delegation.md. Same features: no rebuild.
cargo bench --quiet -p shared-auth --features redis --bench delegation 2>&1 | tee target/bench-results/delegation.txt

# Same features as the auth bench, so shared-auth is not rebuilt in between. Arguments are
# criterion's, for the auth bench only: the sweep is a plain timed loop.
cargo bench --quiet -p shared-auth --features redis --bench growth 2>&1 | tee target/bench-results/growth.txt
