#!/usr/bin/env bash
# shared-auth's public names, as rustdoc documents them with the features a team enables
# (clap, opentelemetry, redis, serde; not test-util or internals): every item of all.html plus every
# public module. Prints the count and the names; with --check (`just lint`), fails above
# the limit. The limit is a ratchet: it only goes down, except when a capability is added,
# and then by the names a team needs to use it. Issue 24 brought it to 62 (60 by the
# issue's counting, which leaves out the client and server modules); user login (issue 26)
# added 8: UserSessions, UserLoginConfig, SessionConfig, SessionInfo, UserAccessToken,
# UserTokenError, LoginError, Callback (the login and token mechanics stay private); the
# user tokens' middleware 2 more: UserTokenMiddleware and UserSession (the request's
# session), so that user calls get what client-credentials calls get (derived parameters,
# the 401 retry, no cookie upstream). Delegation (issue 28) added 10: TransactionToken (the
# one value both halves share); on the client OnBehalfOf, TokenExchange,
# TokenExchangeMiddleware, TransactionTokenRequest, TransactionTokenMiddleware; on the
# server Transaction, TransactionTokenConfig, TransactionTokenLayer and its service (the
# verifier and its error stay behind `internals`, the header name and the exchange's
# cache key private). Certificate-bound tokens (issue 29, server half) added 2:
# ClientCertificate (what a TLS acceptor hands the auth layer) and CertificateBinding (the
# trusted proxy's header and addresses); its client half 1: ClientCertificateFiles (the
# certificate, key and CA files of mutual TLS at the token endpoint). Traces (issue 29,
# feature `opentelemetry`) added 1: TracingMiddleware (downstream calls as HTTP client
# spans carrying `traceparent`, the same spans as the issuer calls'; the span names and
# the span backend stay private).
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=86
# -D warnings: the docs a team reads (no internals, no jose) have no broken link either.
RUSTDOCFLAGS="-D warnings" cargo doc --quiet -p shared-auth --no-deps --features clap,opentelemetry,redis,serde
python3 - "$limit" "${1:-}" <<'PY'
import re, sys
limit, mode = int(sys.argv[1]), sys.argv[2]
import os
root = os.environ.get("CARGO_TARGET_DIR", "target") + "/doc/shared_auth"
items = re.findall(r'<li><a href="[^"]+">([^<]+)</a></li>', open(f"{root}/all.html").read())
modules = re.findall(r'class="mod" href="[^"]+"[^>]*>([^<]+)<', open(f"{root}/index.html").read())
names = sorted(items) + [f"{m} (module)" for m in modules]
for name in names:
    print(f"  {name}")
print(f"shared-auth public names: {len(names)} ({len(items)} items, {len(modules)} modules; limit {limit})")
if mode == "--check" and len(names) > limit:
    sys.exit(f"more than {limit} public names: make mechanics private or put them behind a feature")
PY
