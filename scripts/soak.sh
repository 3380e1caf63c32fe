#!/usr/bin/env bash
# Soak runs of the hardening tests (README "Reliability and security"): the same tests CI runs in
# their fast variants, with SOAK_SCALE (default 10) times the inputs and rounds. Stops at the first
# failure; every test prints its seed, so a failure can be replayed (FUZZ_SEED, KILL_SEED).
#   npm run soak                  # about 10x CI's hardening figures (hours, mostly the VM part)
#   SOAK_SCALE=50 npm run soak    # longer
#   SOAK_PARTS="host cp" npm run soak   # a subset: host, cp, vm
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
scale="${SOAK_SCALE:-10}"
parts=" ${SOAK_PARTS:-host cp vm} "
[[ "$scale" =~ ^[1-9][0-9]*$ ]] || { echo "soak: SOAK_SCALE must be a positive integer" >&2; exit 2; }
started=$(date +%s)
step() { echo "== soak x$scale: $* ($(($(date +%s) - started)) s in)"; }

if [[ "$parts" == *" host "* ]]; then
  step "netlink replies: $((200000 * scale)) random and mutated"
  FUZZ_RUNS=$((200000 * scale)) vitest run test/kernel/netlink-fuzz.test.ts
  step "invalid objects: $((5000 * scale)) generated"
  INVALID_OBJECTS=$((5000 * scale)) vitest run test/model/invalid-input.test.ts
fi
if [[ "$parts" == *" cp "* ]]; then
  e2e/control-plane/build.sh >/dev/null
  for round in $(seq 1 "$scale"); do
    step "control-plane faults, round $round of $scale (an API server outage of 5 minutes)"
    OUTAGE_SECONDS=300 vitest run -c vitest.cp.config.ts e2e/control-plane/faults.cp.test.ts e2e/control-plane/apiserver-restart.cp.test.ts
  done
fi
if [[ "$parts" == *" vm "* ]]; then
  npm run build >/dev/null
  step "SIGKILLs: $((4 * scale)) into apply, $((1 * scale)) into the agent under traffic; coexistence"
  KILL_ROUNDS=$((4 * scale)) KILL_AGENT_ROUNDS=$((1 * scale)) VM_PASS_ENV="KILL_ROUNDS KILL_AGENT_ROUNDS KILL_SEED" \
    VM_SUITE_TIMEOUT=$((3600 * scale)) e2e/vm/run-suite.sh \
    e2e/vm/tests/kill-restart.vm.test.ts e2e/vm/tests/coexistence.vm.test.ts e2e/vm/tests/ipvs-late-load.vm.test.ts
fi
step "done, no failure"
