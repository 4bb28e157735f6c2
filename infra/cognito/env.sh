#!/usr/bin/env bash
# `just cognito-env STACK`: the variables for my-service and my-bff, from a stack deployed
# with infra/cognito/template.yaml. Needs the AWS CLI v2 with credentials for the stack's
# account and region (AWS_PROFILE / AWS_REGION as usual).
#
#   eval "$(just cognito-env my-auth)"    # or paste the lines into your env files
#
# The client secret is not a stack output. It is read from Cognito and written to a file
# only you can read; the lines name that file (AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE), so
# the secret never lands in your terminal or shell history.
set -euo pipefail
stack=${1:?usage: just cognito-env STACK}
command -v aws >/dev/null || { echo "cognito-env: the AWS CLI (aws) is not installed" >&2; exit 1; }

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
pool_id=$(output UserPoolId)
client_id=$(output ClientId)
metadata=$(output MetadataAddress)
token_url=$(output TokenEndpointUrl)
scope=$(output Scope)
[[ -n $pool_id && $pool_id != None ]] || { echo "cognito-env: stack $stack has no UserPoolId output" >&2; exit 1; }

secret_file=${COGNITO_SECRET_FILE:-$HOME/.config/my-bff/$stack.client-secret}
mkdir -p "$(dirname "$secret_file")"
(
  umask 077
  aws cognito-idp describe-user-pool-client --user-pool-id "$pool_id" --client-id "$client_id" \
    --query UserPoolClient.ClientSecret --output text > "$secret_file"
)

cat <<LINES
# my-service
export AUTH_METADATA_ADDRESS='$metadata'
export AUTH_TOKEN_PROFILE=cognito
export AUTH_ALLOWED_CLIENT_IDS='$client_id'
# my-service's own URL (RFC 9728 resource): DPoP proofs are checked against it.
export AUTH_RESOURCE='http://127.0.0.1:7062'
# my-bff (client secret in $secret_file, mode 600)
export AUTH_SERVER_TOKEN_ENDPOINT_URL='$token_url'
export AUTH_SERVER_MYBFF_CLIENT_ID='$client_id'
export AUTH_SERVER_MYBFF_CLIENT_SECRET_FILE='$secret_file'
export AUTH_SERVER_MYBFF_SCOPE='$scope'
LINES
