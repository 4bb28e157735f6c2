#!/usr/bin/env bash
# infra/containers/ensure-engine.sh: run by `just test` before the suites. The Redis suite
# (tests/redis.rs) starts real Redis containers through testcontainers, which speaks the
# Docker API. If an engine answers (Docker, or podman set up earlier), nothing happens.
# If none does, this sets up rootful podman with setup-container-engine.sh beside it (as
# root; otherwise it says what to run), so a fresh machine needs nothing beyond the
# README's prerequisites.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf '[test] %s\n' "$*" >&2; }

# The socket testcontainers will use: DOCKER_HOST's, else Docker's default.
socket() {
  case ${DOCKER_HOST:-} in
    unix://*) printf '%s' "${DOCKER_HOST#unix://}" ;;
    "") printf '%s' /var/run/docker.sock ;;
    *) return 1 ;; # tcp:// and the like: the user's own engine
  esac
}

answers() {
  local sock
  sock=$(socket) || return 0
  [[ -S $sock ]] || return 1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1
  elif command -v docker >/dev/null 2>&1; then
    docker info >/dev/null 2>&1
  else
    return 0 # a socket and nothing to ask it with: let the tests try
  fi
}

if answers; then
  say "container engine: ${DOCKER_HOST:-unix:///var/run/docker.sock} answers"
  exit 0
fi
say "no container engine answers (the Redis suite needs one): setting up rootful podman"
say "with infra/containers/setup-container-engine.sh (about half a minute the first time)"
if [[ $(id -u) -ne 0 ]]; then
  say "that needs root: run 'sudo just containers' once (or start Docker), then 'just test' again"
  exit 1
fi
bash "$here/setup-container-engine.sh"
