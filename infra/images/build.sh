#!/usr/bin/env bash
# `just images`: container images of my-service, my-bff and mock-issuer, tagged
# localhost/NAME:dev. Each is one statically linked binary (glibc, `+crt-static`) on
# `scratch`: no shell, no libraries, user 65532. Works with docker or podman (CONTAINER_ENGINE
# picks one; default: docker if it answers, else podman). Nothing is pulled.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${IMAGE_TAG:-dev}
TARGET=x86_64-unknown-linux-gnu

engine=${CONTAINER_ENGINE:-}
if [[ -z $engine ]]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then engine=docker
  elif command -v podman >/dev/null 2>&1; then engine=podman
  else echo "images: neither docker nor podman is available" >&2; exit 1
  fi
fi

# Static binaries (profile `image`: release, stripped). RUSTFLAGS with --target applies to
# the binaries only, not to build scripts, so the host build is untouched.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --profile image \
  --target "$TARGET" -p my-service -p my-bff -p mock-issuer

ctx=target/images/context
rm -rf "$ctx" && mkdir -p "$ctx"
cp "target/$TARGET/image/"{my-service,my-bff,mock-issuer} "$ctx/"
cp infra/local/issuer.toml "$ctx/issuer.toml"
# The one account the images run as; no shell.
printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > "$ctx/passwd"
# TLS roots for https issuers (Cognito, Entra, ...): the build machine's CA bundle.
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"

for name in my-service my-bff mock-issuer; do
  "$engine" build --quiet -f "infra/images/$name.Containerfile" -t "localhost/$name:$TAG" "$ctx" >/dev/null
  size=$("$engine" image inspect "localhost/$name:$TAG" --format '{{.Size}}')
  echo "localhost/$name:$TAG  $((size / 1024 / 1024)) MiB ($engine)"
done
