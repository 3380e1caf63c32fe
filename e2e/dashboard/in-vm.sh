#!/usr/bin/env bash
# The dashboard run, inside the test-bed VM (started by e2e/dashboard/run.sh, one boot):
#  - real servers: one HTTP server (real-servers.ts) in a network namespace behind a veth pair, holding
#    the addresses 198.51.110.2-9 (each address is one real server, as in e2e/vm/tests/metrics.vm.test.ts);
#  - the agent (dist/ipvs-operator.mjs, standalone, a manifest directory) with three NAT VirtualServices:
#    shop/web (rr, HTTP health check, quiesce on failure), shop/api (wlc), media/static (rr, drain 60 s);
#  - Prometheus scraping the agent every 3 s (target label node="vm");
#  - curl traffic through the VIPs whose rate changes every 2 s, for DURATION seconds (default 150),
#    and, meanwhile: a real server added and later removed, two out-of-band ipvsadm edits the agent
#    repairs, a real server failing its health check and recovering, a real server removed while it
#    still has connections (it drains);
#  - then every panel target of the dashboard as a range query (query.ts).
# Writes into <job>/result/dashboard/: queries.json, events.tsv (unix time, what happened), agent.log,
# prometheus.log, real-servers.log. Fails loudly (non-zero, a message on stderr) when a step fails.
# Usage (in the VM): e2e/dashboard/in-vm.sh <prometheus binary>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
prometheus="${1:?usage: in-vm.sh <prometheus binary>}"
duration="${DURATION:-150}"

log() { echo "[dashboard $(date -u +%T)] $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
trap 'log "FAILED: line $LINENO: $BASH_COMMAND (exit $?)"' ERR
[[ "${IPVS_TESTBED:-}" == vm ]] || fail "runs inside the test-bed VM only: use e2e/dashboard/run.sh"
[[ -x "$prometheus" ]] || fail "no Prometheus binary at $prometheus (e2e/dashboard/build-prometheus.sh)"
[[ -f "$project/dist/ipvs-operator.mjs" ]] || fail "no dist/ipvs-operator.mjs: run npm run build on the host"

# The job folder is bound at its host path (a 9p mount with tag "job"); its result/ goes back to the host.
job="$(awk '$1 == "job" && $3 == "9p" { print $2; exit }' /proc/mounts)"
[[ -n "$job" && -d "$job/result" ]] || fail "no job folder among the 9p mounts: $(grep 9p /proc/mounts || true)"
out="$job/result/dashboard"
mkdir -p "$out"
work="$(mktemp -d /tmp/dashboard.XXXXXX)"
mkdir -p "$work/manifests" "$work/down" "$work/prometheus"
: >"$out/events.tsv"
event() {
  printf '%s\t%s\n' "$(date +%s.%N)" "$1" >>"$out/events.tsv"
  log "event: $1"
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip link del veth-lb 2>/dev/null || true
}
trap cleanup EXIT

wait_for() { # <what> <seconds> <command...>
  local what="$1" seconds="$2" i
  shift 2
  for ((i = 0; i < seconds * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "$what not ready after ${seconds}s"
}

# ---- real servers
vs_addr() { echo "198.51.110.$1"; }
unshare --net node "$here/real-servers.ts" "$work/down" >"$out/real-servers.log" 2>&1 &
rs_pid=$!
pids+=("$rs_pid")
wait_for "the real servers" 60 grep -q listening "$out/real-servers.log"
ip link add veth-lb type veth peer name veth-rs
ip link set veth-rs netns "$rs_pid"
ip addr add 198.51.110.1/24 dev veth-lb
ip link set veth-lb up
in_ns() { nsenter --net="/proc/$rs_pid/ns/net" "$@"; }
for i in 2 3 4 5 6 7 8 9; do in_ns ip addr add "$(vs_addr "$i")/24" dev veth-rs; done
in_ns ip link set veth-rs up
in_ns ip link set lo up
in_ns ip route add default via 198.51.110.1
curl -sf --max-time 5 "http://$(vs_addr 2):8080/healthz" >/dev/null || fail "real server $(vs_addr 2):8080 does not answer"

# ---- manifests
real_server() { # <file> <namespace> <name> <vs> <address> [weight]
  cat >"$work/manifests/$1" <<YAML
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: $3, namespace: $2}
spec: {virtualServiceRef: {name: $4}, address: $5, port: 8080, weight: ${6:-1}}
YAML
}
cat >"$work/manifests/web.yaml" <<'YAML'
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  address: 192.0.2.80
  port: 80
  scheduler: rr
  forwarding: {method: NAT}
  healthCheck: {type: HTTP, port: 8080, path: /healthz, expectStatus: ["200"], intervalSeconds: 2,
    timeoutSeconds: 1, riseCount: 2, fallCount: 2, onFailure: Quiesce}
YAML
cat >"$work/manifests/api.yaml" <<'YAML'
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec: {address: 192.0.2.81, port: 80, scheduler: wlc, forwarding: {method: NAT}}
YAML
cat >"$work/manifests/static.yaml" <<'YAML'
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: static, namespace: media}
spec: {address: 192.0.2.82, port: 80, scheduler: rr, forwarding: {method: NAT}, drain: {timeoutSeconds: 60}}
YAML
real_server web-a.yaml shop web-a web "$(vs_addr 2)"
real_server web-b.yaml shop web-b web "$(vs_addr 3)"
real_server web-c.yaml shop web-c web "$(vs_addr 4)"
real_server api-a.yaml shop api-a api "$(vs_addr 5)" 1
real_server api-b.yaml shop api-b api "$(vs_addr 6)" 3
real_server static-a.yaml media static-a static "$(vs_addr 7)"
real_server static-b.yaml media static-b static "$(vs_addr 8)"

# ---- Prometheus, then the agent (so the picture starts with the agent's first sync)
cat >"$work/prometheus.yml" <<'YAML'
global: {scrape_interval: 3s, scrape_timeout: 3s, evaluation_interval: 3s}
scrape_configs:
  - job_name: ipvs-operator
    static_configs:
      - targets: ["127.0.0.1:9796"]
        labels: {node: vm}
YAML
"$prometheus" --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address=127.0.0.1:9090 --log.level=warn >"$out/prometheus.log" 2>&1 &
pids+=("$!")
wait_for "Prometheus" 120 curl -sf http://127.0.0.1:9090/-/ready
log "Prometheus ready: $("$prometheus" --version 2>&1 | head -1)"

node "$project/dist/ipvs-operator.mjs" agent --node-name vm --from-dir "$work/manifests" \
  --state-file "$work/journal.json" --http-address 127.0.0.1:9796 --resync-interval 5s \
  --min-sync-interval 1s >"$out/agent.log" 2>&1 &
pids+=("$!")
event "agent started"
wait_for "the agent (/readyz)" 120 curl -sf http://127.0.0.1:9796/readyz
# The picture starts at the first scrape after the first successful sync: before it the agent's
# last_successful_sync_timestamp is 0, so "time() - ..." reads 56 years and no other panel would be legible.
ready=$(date +%s)
event "agent ready"
log "agent ready; table:"
ipvsadm -Ln >&2
wait_for "the first scrape" 30 sh -c 'curl -sf "http://127.0.0.1:9090/api/v1/query?query=up" | grep -q "\"1\""'

# ---- traffic and changes. Every 2 s each VIP gets a batch of parallel curl requests (one connection
# each) whose size follows its own curve; media/static also gets slow (6 s) requests, so connections
# stay active.
batch() { # <vip> <count> <bytes> <ms>
  (($2 > 0)) || return 0
  curl -s --parallel --parallel-max 20 --max-time 40 -H 'Connection: close' \
    "http://$1/data?bytes=$3&ms=$4&i=[1-$2]" >/dev/null 2>&1 || true
}
event "traffic started"
t0=$(date +%s)
done_steps=""
step() { # <second> <label> <command...>: runs once the traffic has run <second> seconds
  local at="$1" label="$2"
  shift 2
  if (($(date +%s) - t0 >= at)) && [[ " $done_steps " != *" $at "* ]]; then
    done_steps+=" $at"
    "$@"
    event "$label"
  fi
}
slow() { batch 192.0.2.82 6 1000 24000 & traffic+=("$!"); }
traffic=()
while (($(date +%s) - t0 < duration)); do
  now=$(($(date +%s) - t0))
  web=$(awk -v t="$now" 'BEGIN { printf "%d", 7 + 6 * sin(t / 20) }')
  api=$(awk -v t="$now" 'BEGIN { printf "%d", t < 75 ? 1 + t / 12 : 1 + (150 - t) / 12 }')
  static=$((now >= 60 && now < 100 ? 5 : 2))
  batch 192.0.2.80 "$web" 2000 0 &
  traffic+=("$!")
  batch 192.0.2.81 "$api" 300 50 &
  traffic+=("$!")
  batch 192.0.2.82 "$static" 40000 6000 &
  traffic+=("$!")
  step 30 "+ real server shop/api-c" real_server api-c.yaml shop api-c api "$(vs_addr 9)" 2
  step 50 "ipvsadm edits (weight, delete)" sh -c \
    "ipvsadm -e -t 192.0.2.81:80 -r $(vs_addr 5):8080 -m -w 9 && ipvsadm -d -t 192.0.2.80:80 -r $(vs_addr 4):8080"
  step 64 "shop/web-b fails its health check" touch "$work/down/$(vs_addr 3)"
  step 84 "slow requests (24 s) to media/static" slow
  step 90 "- real server media/static-b (drains)" rm "$work/manifests/static-b.yaml"
  step 104 "shop/web-b recovers" rm "$work/down/$(vs_addr 3)"
  step 120 "- real server shop/api-c" rm "$work/manifests/api-c.yaml"
  sleep 2
done
event "traffic stopped"
wait "${traffic[@]}"
log "table at the end:"
ipvsadm -Ln --stats >&2
sleep 10 # the last scrapes
end=$(date +%s)
STEP=3 RATE_INTERVAL=15s node "$here/query.ts" http://127.0.0.1:9090 "$((ready + 3))" "$end" "$out/queries.json" >&2
log "done: $((end - ready - 3))s of metrics in $out/queries.json"
