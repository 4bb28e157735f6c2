#!/usr/bin/env bash
# `just bench`: the criterion benchmarks of shared-auth, then a table of the pairs that
# matter, each measured side by side in the same run. Writes target/bench-results/bench.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/bench-results/bench.md
RAW=target/bench-results/bench.txt
mkdir -p target/bench-results
[[ ${1:-} == -- ]] && shift # `just bench -- --measurement-time 5` passes the -- along
cargo bench --quiet -p shared-auth --bench auth -- "$@" 2>&1 | tee "$RAW"

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

{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -sr); command: \`just bench\` (criterion medians, bench profile)."
  echo
  echo "| what | ours | reference, same run | ratio | target |"
  echo "| --- | ---: | ---: | ---: | --- |"
  echo "| validate a first-seen RS256 token | $(fmt "$(ns validate/first_seen)") | raw aws-lc-rs verify $(fmt "$(ns validate/raw_aws_lc)") | $(div "$(ns validate/first_seen)" "$(ns validate/raw_aws_lc)") | <= 1.3x |"
  echo "| validate a repeated token (validated-token cache) | $(fmt "$(ns validate/repeat)") | first-seen $(fmt "$(ns validate/first_seen)") | $(div "$(ns validate/first_seen)" "$(ns validate/repeat)") faster | |"
  echo "| plain jsonwebtoken decode (peer) | | $(fmt "$(ns validate/jsonwebtoken_decode)") | | |"
  echo "| \`TokenManager::token()\` warm | $(fmt "$(ns client/token_hit)") | \`RwLock<Option<token>>\` $(fmt "$(ns client/rwlock_option)") | $(div "$(ns client/token_hit)" "$(ns client/rwlock_option)") | <= 250 ns |"
  echo "| middleware per request | $(fmt "$(ns middleware/ours)") | static header $(fmt "$(ns middleware/static_header)") | $(sub "$(ns middleware/ours)" "$(ns middleware/static_header)") | <= +500 ns |"
  echo
  echo "${stampede} (target: 1)."
} | tee "$OUT"
