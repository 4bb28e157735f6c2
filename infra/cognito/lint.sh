#!/usr/bin/env bash
# cfn-lint on the Cognito template; part of `just test`, so a broken template fails CI.
# Uses cfn-lint from PATH if there is one, else installs the pinned version from PyPI into
# a virtualenv under target/ once.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=1.58.0
if command -v cfn-lint >/dev/null 2>&1; then
  lint=cfn-lint
else
  venv=target/cfn-lint-$VERSION
  if [[ ! -x $venv/bin/cfn-lint ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$VERSION"
  fi
  lint=$venv/bin/cfn-lint
fi
"$lint" infra/cognito/template.yaml
echo "cfn-lint $("$lint" --version | awk '{print $2}'): infra/cognito/template.yaml passes"
