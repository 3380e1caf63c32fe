#!/usr/bin/env bash
# Runs the real-kernel vitest suite (e2e/**/*.vm.test.ts) inside ONE boot of the
# test-bed VM. Extra arguments go to vitest (e.g. a file filter or -t "name").
#   e2e/vm/run-suite.sh [vitest args...]
# Env: VM_SUITE_TIMEOUT (seconds, default 1800) and the run-in-vm.sh options.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/run-in-vm.sh" --timeout "${VM_SUITE_TIMEOUT:-1800}" -- \
  vitest run --config vitest.vm.config.ts --configLoader native "$@"
