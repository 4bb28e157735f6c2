#!/usr/bin/env bash
# Rebuilds BENCHMARKS.md from the results the bench recipes wrote under
# target/bench-results/. Numbers come only from those runs, never typed by hand. A section
# whose results are not there (a fresh clone that ran one recipe) keeps what BENCHMARKS.md
# already says, so one recipe never erases another's numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
before=$(mktemp)
trap 'rm -f "$before"' EXIT
[[ -f BENCHMARKS.md ]] && cp BENCHMARKS.md "$before"
# The body of section "## $1" as BENCHMARKS.md had it (without its title and the blank
# lines around it).
kept() {
  awk -v title="## $1" '
    $0 == title { on = 1; next }
    on && /^## / { exit }
    on { lines[n++] = $0 }
    END {
      first = 0; while (first < n && lines[first] == "") first++
      last = n - 1; while (last >= first && lines[last] == "") last--
      for (i = first; i <= last; i++) print lines[i]
    }' "$before"
}
# title, results file, the command that writes it, and optionally its chart (an SVG the
# recipe wrote beside it, copied to docs/bench/ so the page shows it without target/) and
# the chart's alt text.
section() {
  local title=$1 results=$2 command=$3 svg=${4:-} alt=${5:-}
  echo "## $title"
  echo
  if [[ -f $results ]]; then
    cat "$results"
    if [[ -n $svg && -f $svg ]]; then
      mkdir -p docs/bench
      cp "$svg" "docs/bench/$(basename "$svg")"
      echo
      echo "![$alt](docs/bench/$(basename "$svg"))"
    fi
  else
    body=$(kept "$title")
    if [[ -n $body ]]; then printf '%s\n' "$body"; else echo "_Not measured yet: run \`$command\`._"; fi
  fi
  echo
}
r=target/bench-results
{
  cat infra/load/BENCHMARKS.head.md
  echo
  section "Auth hot paths (criterion)" $r/bench.md "just bench"
  section "Delegation: token exchange and Transaction Tokens" $r/delegation.md "just bench"
  section "How cost grows" $r/growth.md "just bench" $r/growth.svg \
    "validate ns per call and heap bytes per cached entry against distinct tokens; warm token() ns against named clients"
  section "Beside the peers (criterion)" $r/peers.md "just bench-peers"
  section "A fleet on a shared engine" $r/fleet.md "just bench-fleet" $r/fleet.svg \
    "token requests for a cold fleet against replicas: measured on one Redis and on a cluster, and replicas x clients without a shared tier"
  section "End to end under load (wrk)" $r/load.md "just load"
} > BENCHMARKS.md
echo "BENCHMARKS.md updated" >&2
