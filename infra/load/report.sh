#!/usr/bin/env bash
# Rebuilds BENCHMARKS.md from the results the bench recipes wrote under
# target/bench-results/. Numbers come only from those runs, never typed by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
section() { # title, file, command
  echo "## $1"
  echo
  if [[ -f $2 ]]; then cat "$2"; else echo "_Not measured yet: run \`$3\`._"; fi
  echo
}
{
  cat infra/load/BENCHMARKS.head.md
  echo
  section "Auth hot paths (criterion)" target/bench-results/bench.md "just bench"
  section "Beside the peers (criterion)" target/bench-results/peers.md "just bench-peers"
  section "End to end under load (wrk)" target/bench-results/load.md "just load"
} > BENCHMARKS.md
echo "BENCHMARKS.md updated" >&2
