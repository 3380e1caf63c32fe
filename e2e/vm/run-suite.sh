#!/usr/bin/env bash
# Runs the real-kernel vitest suite (e2e/**/*.vm.test.ts) inside ONE boot of the
# test-bed VM. Extra arguments go to vitest (e.g. a file filter or -t "name").
#   e2e/vm/run-suite.sh [vitest args...]
# Env: VM_SUITE_TIMEOUT (seconds, default 1800) and the run-in-vm.sh options.
#
# The suite expects the kernel to lack the `twos` scheduler (its "missing scheduler module"
# test and the contract's scheduler list rely on it). Debian 12's 6.1 kernel has no ip_vs_twos;
# on a newer kernel the module is blocked for the run (VM_BLOCK_MODULES), so the suite means
# the same thing on every kernel.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cache="${VM_CACHE_DIR:-$project/.cache/vm}"
VM_QUIET="${VM_QUIET:-1}" "$here/prepare.sh"
# shellcheck disable=SC1091
. "$cache/current.env"
if compgen -G "$cache/kernel/$VM_KERNEL_VERSION/lib/modules/$VM_KERNEL_VERSION/kernel/net/netfilter/ipvs/ip_vs_twos.ko*" >/dev/null; then
  export VM_BLOCK_MODULES="${VM_BLOCK_MODULES:-} ip_vs_twos"
fi
export VM_SKIP_PREPARE=1
exec "$here/run-in-vm.sh" --timeout "${VM_SUITE_TIMEOUT:-1800}" -- \
  vitest run --config vitest.vm.config.ts --configLoader native "$@"
