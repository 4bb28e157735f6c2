# Service-to-service auth with OAuth 2.0 client credentials. `just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Development values (public, local only) used by `up`, `issuer` and `token`.
dev_env := "infra/local/dev.env"

# List the recipes.
default:
    @just --list

# Run the whole system locally: mock-issuer :7000, my-service :7062, my-bff :7248.
up:
    cargo build --quiet --bins
    bash infra/local/up.sh

# One request through `up` with OpenTelemetry export on, printed as its trace (spans from my-bff, the issuer and my-service).
trace:
    cargo build --quiet --bins
    bash infra/local/trace.sh

# Every test suite (unit, system, Redis containers; sets up podman if no engine answers), cfn-lint, and the conformance kit on two Node servers.
test:
    bash infra/containers/ensure-engine.sh
    bash infra/engines/valkey.sh >/dev/null
    bash infra/cognito/lint.sh
    cargo test --workspace --exclude bench-peers --quiet --no-fail-fast
    just examples
    just test-conformance-foreign

# Run every shared-auth example: each starts its own mock issuer and exits non-zero on a wrong answer. One build step (a no-op after `cargo test`, which builds examples), then the binaries (about a second in all).
examples:
    @cargo build --quiet -p shared-auth --examples
    @for file in shared-auth/examples/*.rs; do \
        name=$(basename "$file" .rs); \
        out=$("${CARGO_TARGET_DIR:-target}/debug/examples/$name" 2>&1) \
            || { echo "$out"; echo "example $name FAILED"; exit 1; }; \
        echo "example $name ok"; \
    done

# The conformance kit against two Node resource servers (jose; Auth0's express-oauth2-jwt-bearer): prints their reports, never fails on their results.
test-conformance-foreign:
    bash infra/conformance/foreign.sh

# A new workspace member from the reference services: KIND resource-server (my-service) or caller (my-bff).
new-service NAME KIND="resource-server":
    bash infra/new-service/new-service.sh {{NAME}} {{KIND}}

# Generates one service of each kind in a scratch copy, tests them and runs them under `up`.
test-new-service:
    bash infra/new-service/check.sh

# (as root) No Docker? Rootful podman serving the Docker API + local redis/busybox images.
containers *ARGS:
    bash infra/containers/setup-container-engine.sh {{ARGS}}

# Container images of the three binaries (static, on scratch, non-root): localhost/NAME:dev.
images:
    bash infra/images/build.sh

# The images end to end (BFF -> service -> issuer in containers); builds them first.
test-images: images
    cargo test --quiet -p system-tests --features images --test images

# Swagger UI, and a user logging in at my-bff, in headless Chromium (Debian's chromium + npm's playwright-core; see tests/README.md).
test-browser:
    cargo build --quiet --bins
    cd tests/browser && npm ci --no-audit --no-fund --silent && node --test swagger.test.mjs user.test.mjs

# Long property-test ("fuzz") run: CASES per property (`just test` runs 256).
fuzz CASES="50000":
    PROPTEST_CASES={{CASES}} cargo test --quiet -p shared-auth fuzz_
    PROPTEST_CASES={{CASES}} cargo test --quiet -p shared-auth --test fuzz

# Criterion benchmarks of the auth hot paths, then how their cost grows (table and SVG chart); refreshes BENCHMARKS.md.
bench *ARGS:
    bash infra/load/bench.sh {{ARGS}}
    bash infra/load/report.sh

# shared-auth beside tower-oauth2-resource-server, jwt-authorizer, huskarl and axum-jwt-auth; refreshes BENCHMARKS.md.
bench-peers *ARGS:
    bash infra/load/peers.sh {{ARGS}}
    bash infra/load/report.sh

# A fleet of 100 replicas x 50 clients on one Redis and on a Redis Cluster (local redis-server processes); refreshes BENCHMARKS.md.
bench-fleet:
    cargo bench --quiet -p system-tests --bench fleet
    bash infra/load/report.sh

# End-to-end load, auth on vs off (needs wrk); refreshes BENCHMARKS.md.
load:
    bash infra/load/load.sh
    bash infra/load/report.sh

# fmt check, clippy and rustdoc with warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --exclude bench-peers --all-targets --features system-tests/images --quiet -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --exclude bench-peers --quiet
    bash infra/docs/public-api.sh --check | tail -1

# shared-auth's public names as rustdoc documents them, and their count.
api:
    bash infra/docs/public-api.sh

# Format the code.
fmt:
    cargo fmt --all

# Regenerate docs/configuration.md from the binaries' --help (the tests fail when it is stale), then check the docs' relative links.
docs:
    bash infra/docs/configuration.sh
    python3 infra/docs/check_links.py

# Run the mock issuer alone on 127.0.0.1:7000 (admin endpoints on; token in target/mock-issuer.admin-token).
issuer:
    @set -a; source {{dev_env}}; set +a; \
    cargo run --quiet -p mock-issuer -- --config infra/local/issuer.toml --admin --admin-token-file target/mock-issuer.admin-token

# Print a fresh access token from the running issuer, using the dev client.
token:
    @set -a; source {{dev_env}}; set +a; \
    cargo run --quiet -p mock-issuer -- token

# Print my-service and my-bff variables from a Cognito stack (needs the AWS CLI).
cognito-env STACK:
    @bash infra/cognito/env.sh {{STACK}}

# Print a JWT's header and claims (no signature check).
decode TOKEN:
    @cargo run --quiet -p mock-issuer -- decode '{{TOKEN}}'
