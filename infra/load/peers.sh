#!/usr/bin/env bash
# `just bench-peers`: shared-auth beside its peer crates (bench-peers/benches/peers.rs), then
# one table of ns/op and ratios, every line from the same run. Each figure is criterion's
# median over its samples (100 by default, each many iterations), read from
# target/criterion/<group>/<name>/new/estimates.json. Writes target/bench-results/peers.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/bench-results/peers.md
mkdir -p target/bench-results
[[ ${1:-} == -- ]] && shift
cargo bench --quiet -p bench-peers --bench peers -- "$@"

median() { # group/name -> ns
  sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.eE+-]+).*/\1/' \
    "target/criterion/$1/new/estimates.json"
}
fmt() { awk -v x="$1" 'BEGIN { if (x >= 1000) printf "%.2f µs", x / 1000; else printf "%.0f ns", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

repeat=$(median server/ours_repeat)
first=$(median server/ours_first_seen)
hit=$(median client/ours_token_hit)
row() { # label, group/name
  local v; v=$(median "$2")
  echo "| $1 | $(fmt "$v") | $(ratio "$v" "$repeat") | $(ratio "$v" "$first") |"
}
crow() {
  local v; v=$(median "$2")
  echo "| $1 | $(fmt "$v") | $(ratio "$v" "$hit") |"
}
{
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -sr); command: \`just bench-peers\` (criterion, bench profile; each figure the median of the samples)."
  echo
  echo "Server: one request through each crate's tower layer, the same RS256 \`at+jwt\` token (issuer and audience checked) and key. No peer keeps validated tokens, so a peer's one line is its cost on a repeated and on a first-seen token alike, set beside both of ours. A ratio above 1 means slower than ours."
  echo
  echo "| contender | ns/op | vs ours, repeated token | vs ours, first-seen token |"
  echo "| --- | ---: | ---: | ---: |"
  row "**ours**, repeated token (validated-token cache)" server/ours_repeat
  row "**ours**, first-seen token (cache off)" server/ours_first_seen
  row "tower-oauth2-resource-server 0.12.5 (jsonwebtoken 11, aws-lc-rs)" server/tower_oauth2_resource_server
  row "jwt-authorizer 0.15.0 (axum 0.7, jsonwebtoken 9)" server/jwt_authorizer
  row "huskarl-axum 0.1.0 + huskarl-resource-server 0.11.12 (RustCrypto \`rsa\`)" server/huskarl
  row "axum-jwt-auth 0.7.0 (its \`Claims\` extractor as a layer; jsonwebtoken 10, RustCrypto)" server/axum_jwt_auth
  row "bare \`jsonwebtoken::decode\` (no layer)" server/jsonwebtoken_decode
  row "raw aws-lc-rs RS256 verify (the floor)" server/raw_aws_lc
  echo
  echo "Client: a warm cache asked for its token."
  echo
  echo "| contender | ns/op | vs ours |"
  echo "| --- | ---: | ---: |"
  crow "**ours**: \`TokenManager::token()\`" client/ours_token_hit
  crow "\`RwLock<Option<(token, expiry)>>\`" client/rwlock_option
  crow "huskarl 0.11 \`InMemoryTokenCache::token()\`" client/huskarl_in_memory
} | tee "$OUT"
