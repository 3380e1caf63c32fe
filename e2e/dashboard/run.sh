#!/usr/bin/env bash
# Renders docs/images/dashboard.png, the dashboard's panels with real metrics (npm run dashboard:picture):
#   1. builds Prometheus (build-prometheus.sh; cached) and the agent's bundle (npm run build),
#   2. one VM boot runs in-vm.sh: the agent with three VirtualServices, real servers in a network
#      namespace, Prometheus scraping the agent, ~2.5 minutes of changing traffic and changes, then every
#      panel target of the dashboard as a range query,
#   3. render.ts draws the answers with gnuplot (installs gnuplot-nox when missing) and prints which
#      panels had data.
# The run's answers, logs and gnuplot script stay in .cache/dashboard/run-<time>/ (the last one is
# linked as .cache/dashboard/last). Fails loudly (non-zero, a message on stderr) when a step fails.
#
#   e2e/dashboard/run.sh [out.png]                  default docs/images/dashboard.png
#   e2e/dashboard/run.sh --render <run folder> [out.png]   only draws again from a kept run
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cd "$project"
export PATH="$project/node_modules/.bin:$PATH"

log() { echo "[dashboard] $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
trap 'log "FAILED: line $LINENO: $BASH_COMMAND (exit $?)"' ERR
now() { date +%s.%N; }
took() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.0fs", e - s }'; }

render_only=""
if [[ "${1-}" == --render ]]; then
  render_only="${2:?usage: run.sh --render <run folder> [out.png]}"
  shift 2
fi
png="${1:-$project/docs/images/dashboard.png}"
mkdir -p "$(dirname "$png")"

if ! command -v gnuplot >/dev/null; then
  log "installing gnuplot-nox"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q gnuplot-nox >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q gnuplot-nox >/dev/null; } ||
    fail "could not install gnuplot-nox (apt-get)"
fi

if [[ -n "$render_only" ]]; then
  node "$here/render.ts" "$render_only" "$png"
  exit
fi

t=$(now)
prometheus="$("$here/build-prometheus.sh" | tail -n 1)"
[[ -x "$prometheus" ]] || fail "build-prometheus.sh gave no binary ($prometheus)"
log "prometheus: $prometheus ($(took "$t"))"
t=$(now)
npm run --silent build >&2 || fail "npm run build"
log "bundle built ($(took "$t"))"

run="$project/.cache/dashboard/run-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
t=$(now)
log "VM run (one boot, about 4-6 minutes); output in $run/vm.log"
rc=0
VM_KEEP_JOB=1 "$project/e2e/vm/run-in-vm.sh" --timeout "${DASHBOARD_VM_TIMEOUT:-1200}" -- \
  e2e/dashboard/in-vm.sh "$prometheus" 2>&1 | tee "$run/vm.log" >&2 || rc=$?
job="$(sed -n 's/^\[vm\] job folder kept: //p' "$run/vm.log" | tail -n 1)"
((rc == 0)) || fail "the VM run failed (exit $rc); job folder: ${job:-none} (see $run/vm.log)"
[[ -n "$job" && -f "$job/result/dashboard/queries.json" ]] || fail "the VM run wrote no queries.json (job folder: ${job:-none})"
cp -r "$job/result/dashboard/." "$run/"
rm -rf "$job"
ln -sfn "$(basename "$run")" "$project/.cache/dashboard/last"
log "VM run done ($(took "$t"))"

node "$here/render.ts" "$run" "$png"
