#!/usr/bin/env bash
# Installs what the health prober component tests (test/health/**) need beyond Node: dnsmasq, the
# real DNS server the DNS probe is tested against. Only the binary (Debian's dnsmasq-base): the
# `dnsmasq` package would also install and try to start a system service. Idempotent; run as root
# (or with sudo available) by .ci/run before the unit tests.
set -euo pipefail

if command -v dnsmasq >/dev/null 2>&1; then
  exit 0
fi
sudo=()
if [[ "$(id -u)" != 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null
command -v dnsmasq >/dev/null || {
  echo "e2e/health/install-deps.sh: dnsmasq still not on PATH after installing dnsmasq-base" >&2
  exit 1
}
