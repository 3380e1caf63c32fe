#!/usr/bin/env bash
# Boots the test-bed VM with the ip_vs module unavailable and checks that `ipvs-operator apply` says so
# clearly (exit 4 and the message) instead of crashing or pretending. Part of `npm run test:vm`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
VM_NO_IPVS=1 "$here/run-in-vm.sh" --timeout 600 -- \
  sh -c 'bin/ipvs-operator apply -f examples/nat-round-robin.yaml --node vm --state-file /tmp/j.json' >"$out" 2>&1
rc=$?
set -e
cat "$out"
if [[ $rc -ne 4 ]]; then
  echo "check-no-ipvs: FAIL: expected exit status 4 (IPVS unavailable), got $rc" >&2
  exit 1
fi
if ! grep -q "IPVS is not available" "$out"; then
  echo "check-no-ipvs: FAIL: the message does not say that IPVS is not available" >&2
  exit 1
fi
echo "check-no-ipvs: ok (exit 4 with a clear message when the ip_vs module is missing)"
