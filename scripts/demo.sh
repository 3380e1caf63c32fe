#!/usr/bin/env bash
# npm run demo: apply examples/ with `ipvs-operator apply` and show what changed and the resulting table.
# On a machine whose kernel has IPVS (and as root) this programs the HOST kernel; otherwise it runs the
# same inside the throwaway test-bed VM (e2e/vm), which needs qemu (installed by e2e/vm/prepare.sh).
# DEMO_TARGET=host|vm forces one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
job='
set -e
echo "== ipvs-operator apply -f examples/ (first run: programs the table)"
bin/ipvs-operator apply -f examples/ --node demo --node-labels ipvs.dev/edge=true --state-file "$STATE"
echo
echo "== ipvsadm -Ln"
ipvsadm -Ln
echo
echo "== a second run changes nothing"
bin/ipvs-operator apply -f examples/ --node demo --node-labels ipvs.dev/edge=true --state-file "$STATE"
'
target="${DEMO_TARGET:-}"
if [[ -z "$target" ]]; then
  if [[ -r /proc/net/ip_vs && $(id -u) -eq 0 ]] && command -v ipvsadm >/dev/null; then target=host; else target=vm; fi
fi
if [[ "$target" == host ]]; then
  echo "demo: this kernel has IPVS: applying examples/ to the host (state file /var/lib/ipvs-operator/demo-journal.json)"
  STATE=/var/lib/ipvs-operator/demo-journal.json bash -c "$job"
else
  echo "demo: no IPVS here (or not root): running in the test-bed VM (first run downloads and builds it)"
  exec e2e/vm/run-in-vm.sh -- env STATE=/tmp/demo-journal.json bash -c "$job"
fi
