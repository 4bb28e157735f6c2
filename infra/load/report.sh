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
# The growth sweep's table, and its chart copied beside BENCHMARKS.md (a committed path,
# so the page shows it without target/).
growth() {
  echo "## How cost grows"
  echo
  if [[ -f target/bench-results/growth.md ]]; then
    cat target/bench-results/growth.md
    if [[ -f target/bench-results/growth.svg ]]; then
      mkdir -p docs/bench
      cp target/bench-results/growth.svg docs/bench/growth.svg
      echo
      echo "![validate ns per call and heap bytes per cached entry against distinct tokens; warm token() ns against named clients](docs/bench/growth.svg)"
    fi
  else
    echo "_Not measured yet: run \`just bench\`._"
  fi
  echo
}
# The fleet simulation's table, and its chart beside BENCHMARKS.md.
fleet() {
  echo "## A fleet on a shared engine"
  echo
  if [[ -f target/bench-results/fleet.md ]]; then
    cat target/bench-results/fleet.md
    if [[ -f target/bench-results/fleet.svg ]]; then
      mkdir -p docs/bench
      cp target/bench-results/fleet.svg docs/bench/fleet.svg
      echo
      echo "![token requests for a cold fleet against replicas: measured on one Redis and on a cluster, and replicas x clients without a shared tier](docs/bench/fleet.svg)"
    fi
  else
    echo "_Not measured yet: run \`just bench-fleet\`._"
  fi
  echo
}
{
  cat infra/load/BENCHMARKS.head.md
  echo
  section "Auth hot paths (criterion)" target/bench-results/bench.md "just bench"
  growth
  section "Beside the peers (criterion)" target/bench-results/peers.md "just bench-peers"
  fleet
  section "End to end under load (wrk)" target/bench-results/load.md "just load"
} > BENCHMARKS.md
echo "BENCHMARKS.md updated" >&2
