#!/usr/bin/env bash
# `just new-service NAME [resource-server|caller]`: a new workspace member started from the
# reference services, ready to build, test and run under `just up`.
#
#   resource-server  copies my-service: a scope-protected API (JwtAuthLayer + scopes)
#   caller           copies my-bff: a service that calls my-service with a managed token
#
# The copy is renamed throughout (package NAME, crate NAME with underscores, scopes
# under the PascalCase name, environment prefix AUTH_SERVER_<NAME in capitals>_ for a
# caller) and brings its spawn-app tests (tests/app.rs, tests/cli.rs). The script then
#   - adds NAME to the workspace (members and default-members);
#   - registers it with the local mock issuer (infra/local/issuer.toml): a resource
#     server's scopes plus a client to try them from Swagger UI, or a caller's client;
#   - adds its development values (infra/local/dev.env, infra/local/NAME.env) and a line in
#     infra/local/services, which `just up` reads, with a free port.
# The reference services are the template: what they do, the copy does, and CI generates
# one of each kind and runs their tests (infra/new-service/check.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { echo "usage: just new-service NAME [resource-server|caller]" >&2; exit 2; }
fail() { echo "new-service: $*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || usage
NAME=$1
KIND=${2:-resource-server}

[[ $NAME =~ ^[a-z][a-z0-9]*(-[a-z0-9]+)*$ && ${#NAME} -le 40 ]] ||
  fail "NAME must be lower-case kebab-case (letters, digits, single hyphens; at most 40), e.g. orders-api; got '$NAME'"
case $KIND in
  resource-server) TEMPLATE=my-service ;;
  caller) TEMPLATE=my-bff ;;
  *) fail "KIND must be resource-server or caller; got '$KIND'" ;;
esac
for taken in my-service my-bff shared-auth mock-issuer service-kit test-support system-tests \
  load-no-auth bench-peers tests infra target; do
  [[ $NAME != "$taken" ]] || fail "'$NAME' is a name this workspace already uses"
done
[[ ! -e $NAME ]] || fail "./$NAME exists already"
if grep -rqs --include=Cargo.toml -E "^name = \"$NAME\"$" .; then
  fail "a package named '$NAME' exists already"
fi

SNAKE=${NAME//-/_}
PASCAL=$(sed -E 's/(^|-)([a-z0-9])/\U\2/g' <<<"$NAME")
UPPER=$(tr 'a-z' 'A-Z' <<<"${NAME//-/}")
SERVICES=infra/local/services

# A port for `just up`: 7300 and up, the first one no listed service has.
PORT=7300
while grep -qs -E "^[^#]*\|$PORT\|" "$SERVICES"; do PORT=$((PORT + 1)); done

echo "new-service: $NAME ($KIND, from $TEMPLATE) on port $PORT under just up"

# 1. The crate: the template's tracked files, renamed.
mkdir -p "$NAME"
git ls-files -z -- "$TEMPLATE" | while IFS= read -r -d '' file; do
  target="$NAME/${file#"$TEMPLATE"/}"
  mkdir -p "$(dirname "$target")"
  cp "$file" "$target"
done
rename() { # sed expressions, applied to every file of the new crate
  find "$NAME" -type f \( -name '*.rs' -o -name '*.toml' -o -name '*.md' -o -name '*.txt' \) -print0 |
    xargs -0 sed -i -E "$@"
}
if [[ $KIND == resource-server ]]; then
  rename -e "s/the reference resource server/a resource server started from the reference template/g" \
    -e "s/Reference resource server: /Resource server started from the reference template: /" \
    -e "s/my-service/$NAME/g" -e "s/my_service/$SNAKE/g" -e "s/MyService/$PASCAL/g"
else
  # my-service stays: it is the caller's downstream (the API the template calls).
  rename -e "s/the reference backend-for-frontend/a caller started from the reference template/g" \
    -e "s/Reference backend-for-frontend: /Caller started from the reference template: /" \
    -e "s/my-bff/$NAME/g" -e "s/my_bff/$SNAKE/g" -e "s/MyBff/$PASCAL/g" -e "s/MYBFF/$UPPER/g"
fi

# 2. The workspace: a member, built by `cargo build` and `just up` (default-members).
sed -i -E "s/^(members = \[.*)\]$/\1, \"$NAME\"]/; s/^(default-members = \[.*)\]$/\1, \"$NAME\"]/" Cargo.toml
grep -q "\"$NAME\"\]$" Cargo.toml || fail "could not add $NAME to the workspace members in Cargo.toml"

# 3. The local issuer, the development values and `just up`.
origin="\"http://127.0.0.1:$PORT\", \"http://localhost:$PORT\""
if [[ $KIND == resource-server ]]; then
  # Swagger UI of the new service asks the issuer for tokens from the browser.
  sed -i -E "s|^(cors_allowed_origins = \[.*)\]$|\1, $origin]|" infra/local/issuer.toml
  cat >>infra/local/issuer.toml <<TOML

# $NAME (added by \`just new-service\`): its scopes, and a client to try them from Swagger UI.
[[resource_servers]]
identifier = "$PASCAL"
scopes = ["weather_read", "weather_write"]

[[clients]]
client_id = "$NAME-tester"
client_secret_env = "${UPPER}_TESTER_CLIENT_SECRET"
allowed_scopes = ["$PASCAL/weather_read", "$PASCAL/weather_write"]
TOML
  cat >>infra/local/dev.env <<ENV
${UPPER}_TESTER_CLIENT_SECRET=$NAME-tester-dev-secret
ENV
  cat >"infra/local/$NAME.env" <<ENV
# $NAME under \`just up\` (AUTH_AUTHORITY is set by up.sh from the issuer's port).
AUTH_TOKEN_PROFILE=cognito
ENV
else
  cat >>infra/local/issuer.toml <<TOML

# $NAME (added by \`just new-service\`): a caller of my-service.
[[clients]]
client_id = "$NAME"
client_secret_env = "AUTH_SERVER_${UPPER}_CLIENT_SECRET"
allowed_scopes = ["MyService/weather_read"]
TOML
  cat >>infra/local/dev.env <<ENV
AUTH_SERVER_${UPPER}_CLIENT_ID=$NAME
AUTH_SERVER_${UPPER}_CLIENT_SECRET=$NAME-dev-secret-change-me
AUTH_SERVER_${UPPER}_SCOPE=MyService/weather_read
ENV
  cat >"infra/local/$NAME.env" <<ENV
# $NAME under \`just up\`. The client id, secret and scope come from dev.env; the token
# endpoint and my-service URL are set by up.sh from the ports.
MY_SERVICE_TIMEOUT_SECS=10
ENV
fi
if [[ ! -e $SERVICES ]]; then
  cat >"$SERVICES" <<'HEAD'
# Services `just up` starts besides the issuer, my-service and my-bff: NAME|PORT|KIND, one
# per line (written by `just new-service`). Each reads infra/local/NAME.env and dev.env.
HEAD
fi
echo "$NAME|$PORT|$KIND" >>"$SERVICES"

cat <<NEXT
new-service: done. Next:
  cargo test -p $NAME    its spawn-app tests ($NAME/tests/app.rs)
  just up    the whole system, $NAME on http://127.0.0.1:$PORT
NEXT
if [[ $KIND == resource-server ]]; then
  cat <<NEXT
Then make it yours: the routes in $NAME/src/weather.rs, the scope constants there
($PASCAL/weather_read, $PASCAL/weather_write; keep infra/local/issuer.toml in step), the
OpenAPI info in $NAME/src/lib.rs, and the requests of $NAME/tests/app.rs.
NEXT
else
  cat <<NEXT
Then make it yours: the typed client in $NAME/src/my_service_client.rs (point it at your
downstream; keep the ClientCredentialsMiddleware), the routes in $NAME/src/lib.rs, the
scope it asks for (AUTH_SERVER_${UPPER}_SCOPE), and the requests of $NAME/tests/app.rs.
NEXT
fi
