#!/bin/sh
# Installs the Debian 12 packages Aegis needs to build, run and test. Idempotent: installs only what is missing.
# faketime (libfaketime): the integration tests run aegisd in the future to expire device certificates.
# libseccomp-dev: the signer process's system-call filter (docs/architecture.md "The signer process").
# gdb: tests/integration/test_signer.py calls open(2) inside the running aegisd to prove it cannot open the keys.
# python3-cryptography: the update tests verify ed25519 signatures independently of the C code.
# prometheus: its promtool checks a live /metrics scrape (tests/integration/test_metrics.py); only that binary is
# used. Under systemd the package also enables a Prometheus server (prometheus.service, port 9090) that the tests
# do not need: `systemctl disable --now prometheus` stops it.
# zsh: tests/integration/test_cli_args.py loads aegisctl's zsh completion in a real zsh.
# mandoc, groff-base: tests/integration/test_manpages.py lints docs/man/ (mandoc -T lint) and renders it as man -l does.
# python3-yaml, python3-jsonschema: tests/integration/openapi_check.py checks live responses against docs/openapi.yaml.
# nodejs, npm (only when no node is on the PATH): the tuf-js interoperability test (tests/interop/tufjs) runs the
# public TUF client against aegisd, and Redocly CLI lints docs/openapi.yaml (tests/interop/openapi); their packages
# come from the npm registry (`npm ci`, pinned by each package-lock.json).
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libgnutls28-dev libssl-dev openssl libsqlite3-dev \
libjansson-dev libuv1-dev libsodium-dev libseccomp-dev libcurl4-openssl-dev curl libcmocka-dev python3 python3-cryptography \
python3-yaml python3-jsonschema faketime gdb prometheus zsh mandoc groff-base"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install:$missing" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
