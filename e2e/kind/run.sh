#!/usr/bin/env bash
# The operator in a real cluster, for machines with Docker (the e2e-kind GitHub workflow; not part of
# `npm test`): a kind cluster of three nodes, the image built from the Dockerfile and loaded into it,
# the chart installed from charts/ipvs-operator, then a backend Deployment + Service + VirtualService,
# and checks of
#   - the DaemonSet: one ready agent per node;
#   - the IPVS table on every node: the VIP with exactly the backend pods as real servers;
#   - traffic through the VIP from every node (`docker exec <node> curl`), reaching both pods;
#   - drift repair: a destination deleted with ipvsadm comes back;
#   - status and printer columns: `kubectl get virtualservices` (Address, Backends, Nodes, Drifted),
#     condition Ready, and one IPVSNode per node.
# Without a Docker engine it prints why and exits 0 ("skipped"). With one, anything that fails is a
# failure (non-zero), with the cluster's state printed.
#   e2e/kind/run.sh       KIND_CLUSTER=name (default ipvs-operator-e2e), KIND_KEEP=1 keeps the cluster
# Needs kind, kubectl, helm, curl, and ipvsadm + nsenter on the host with root or passwordless sudo
# (the kind node image has no ipvsadm: the script enters each node's network namespace).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cluster="${KIND_CLUSTER:-ipvs-operator-e2e}"
repository=localhost/ipvs-operator
tag=e2e
image="$repository:$tag"
namespace=ipvs-operator
vip=10.250.0.10

log() { echo "kind e2e: $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
trap 'log "FAILED: line $LINENO: $BASH_COMMAND (exit $?)"' ERR
now() { date +%s.%N; }
took() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }

if ! command -v docker >/dev/null; then
  log "skipped: no docker command on this machine; this suite runs where Docker does (.github/workflows/e2e-kind.yml)"
  exit 0
fi
if ! info="$(docker info 2>&1)"; then
  log "skipped: no Docker engine answers ($(grep -m 1 -iE 'error|cannot|denied' <<<"$info" || head -n 1 <<<"$info")); this suite runs where Docker does (.github/workflows/e2e-kind.yml)"
  exit 0
fi
for tool in kind kubectl helm ipvsadm nsenter; do
  command -v "$tool" >/dev/null || fail "Docker runs here but '$tool' is not installed (see e2e/kind/README.md)"
done
sudo=()
if [[ "$(id -u)" != 0 ]]; then
  sudo -n true 2>/dev/null || fail "entering the nodes' network namespaces needs root or passwordless sudo"
  sudo=(sudo -n)
fi

# ipvsadm in a node's network namespace (the nodes are containers; IPVS tables are per namespace).
node_ipvsadm() {
  local node="$1" pid
  shift
  pid="$(docker inspect -f '{{.State.Pid}}' "$node")"
  "${sudo[@]}" nsenter -t "$pid" -n ipvsadm "$@"
}
# Retries a check until it passes or `seconds` run out; the failure names what the check said last.
until_ok() {
  local what="$1" seconds="$2" deadline said
  shift 2
  deadline=$(($(date +%s) + seconds))
  until said="$("$@" 2>&1)"; do
    (($(date +%s) < deadline)) || fail "timed out after ${seconds}s waiting for $what${said:+; last: $said}"
    sleep 2
  done
}
diagnose() {
  log "cluster state:"
  kubectl get nodes,pods -A -o wide >&2 || true
  kubectl get virtualservices,realservers -A >&2 || true
  kubectl get ipvsnodes -o yaml >&2 || true
  kubectl -n "$namespace" logs -l app.kubernetes.io/instance=ipvs-operator --all-containers --tail=50 --prefix >&2 || true
  for node in $(kind get nodes --name "$cluster" 2>/dev/null); do
    log "IPVS table of $node:"
    node_ipvsadm "$node" -Ln >&2 || true
  done
}
finish() {
  local code=$?
  ((code == 0)) || diagnose
  if [[ "${KIND_KEEP:-}" == 1 ]]; then
    log "kept the cluster: kind delete cluster --name $cluster"
  else
    kind delete cluster --name "$cluster" >&2 || true
  fi
}

start_all=$(now)
# IPVS lives in the host's kernel; the nodes' agents load nothing themselves.
[[ -d /sys/module/ip_vs ]] || "${sudo[@]}" modprobe -a ip_vs ip_vs_rr || fail "the host kernel has no IPVS module (modprobe ip_vs)"

# ---- cluster and image
t=$(now)
kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
trap finish EXIT
kind create cluster --name "$cluster" --config "$here/kind-config.yaml" --wait 180s >&2
kubectl config use-context "kind-$cluster" >/dev/null
mapfile -t nodes < <(kind get nodes --name "$cluster" | sort)
((${#nodes[@]} == 3)) || fail "expected 3 nodes, kind has ${#nodes[@]}: ${nodes[*]}"
log "cluster $cluster (${nodes[*]}) in $(took "$t")"

t=$(now)
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$project/package.json")"
docker build -t "$image" --build-arg "VERSION=$version" \
  --build-arg "REVISION=$(git -C "$project" rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg "SOURCE=${GITHUB_SERVER_URL:+$GITHUB_SERVER_URL/$GITHUB_REPOSITORY}" "$project" >&2
[[ "$(docker run --rm --network=none "$image" version)" == "ipvs-operator $version" ]] || fail "$image version"
kind load docker-image "$image" --name "$cluster" >&2
log "image $image built and loaded in $(took "$t")"

# ---- the chart
t=$(now)
helm install ipvs-operator "$project/charts/ipvs-operator" --namespace "$namespace" --create-namespace \
  --set "image.repository=$repository,image.tag=$tag,image.pullPolicy=Never,agent.resyncInterval=5s" \
  --wait --timeout 180s >&2
ds="$(kubectl -n "$namespace" get daemonset -l app.kubernetes.io/instance=ipvs-operator -o name)"
[[ -n "$ds" ]] || fail "the chart installed no DaemonSet"
kubectl -n "$namespace" rollout status "$ds" --timeout 120s >&2
ready="$(kubectl -n "$namespace" get "$ds" -o jsonpath='{.status.numberReady}')"
((ready == ${#nodes[@]})) || fail "$ds has $ready ready agents for ${#nodes[@]} nodes"
log "chart installed, $ready agents ready, in $(took "$t")"

# ---- backend and VirtualService
t=$(now)
kubectl apply -f "$here/backend.yaml" >&2
kubectl -n ipvs-e2e rollout status deployment/echo --timeout 180s >&2
mapfile -t pods < <(kubectl -n ipvs-e2e get pods -l app=echo -o jsonpath='{range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}' | sort)
((${#pods[@]} == 2)) || fail "expected 2 echo pods, found: ${pods[*]}"
pod_ips=("${pods[0]#* }" "${pods[1]#* }")
want="$(printf '%s\n' "-A -t $vip:80 -s rr" "-a -t $vip:80 -r ${pod_ips[0]}:8080 -m -w 1" "-a -t $vip:80 -r ${pod_ips[1]}:8080 -m -w 1" | sort)"
table_is_wanted() {
  local table
  table="$(node_ipvsadm "$1" -Sn | grep -F -- "$vip:80" | sort)"
  [[ "$table" == "$want" ]] || { echo "$1 has:"$'\n'"$table" && return 1; }
}
for node in "${nodes[@]}"; do
  until_ok "the table on $node to be:"$'\n'"$want" 120 table_is_wanted "$node"
done
log "the table on all ${#nodes[@]} nodes: $vip:80 -> ${pod_ips[*]} (port 8080) in $(took "$t")"

# ---- traffic through the VIP from every node
t=$(now)
for node in "${nodes[@]}"; do
  seen=()
  for _ in 1 2 3 4 5 6; do
    name="$(docker exec "$node" curl -sS --max-time 5 "http://$vip/hostname")" ||
      fail "curl http://$vip/hostname from $node"
    seen+=("$name")
  done
  distinct="$(printf '%s\n' "${seen[@]}" | sort -u | tr '\n' ' ')"
  [[ "$distinct" == "${pods[0]%% *} ${pods[1]%% *} " ]] ||
    fail "from $node, 6 requests to $vip reached '$distinct', expected both pods (round robin)"
done
log "traffic: from every node, requests to $vip reach both pods, in $(took "$t")"

# ---- drift repair: a destination deleted behind the agent's back comes back
t=$(now)
node_ipvsadm "${nodes[1]}" -d -t "$vip:80" -r "${pod_ips[0]}:8080" # fails unless it was there
until_ok "the agent on ${nodes[1]} to repair the deleted destination" 60 table_is_wanted "${nodes[1]}"
log "drift repair on ${nodes[1]} in $(took "$t")"

# ---- status and printer columns
t=$(now)
kubectl -n ipvs-e2e wait virtualservice/echo --for=condition=Ready --timeout 60s >&2
# The printer columns after NAME: Address Protocol Scheduler Backends Nodes Drifted (then Age).
columns() { kubectl -n ipvs-e2e get virtualservice echo --no-headers | awk '{ print $2, $3, $4, $5, $6, $7 }'; }
want_columns="$vip:80 TCP rr 2/2 3/3 0"
columns_are_wanted() {
  local shown
  shown="$(columns)"
  [[ "$shown" == "$want_columns" ]] || { echo "it shows '$shown'" && return 1; }
}
until_ok "kubectl get virtualservices to show '$want_columns'" 60 columns_are_wanted
kubectl -n ipvs-e2e get virtualservices >&2
ipvsnodes="$(kubectl get ipvsnodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)"
[[ "$ipvsnodes" == "$(printf '%s\n' "${nodes[@]}")" ]] || fail "IPVSNodes are '$ipvsnodes', nodes are '${nodes[*]}'"
kubectl get ipvsnodes >&2
log "status: $(columns); one IPVSNode per node, in $(took "$t")"

log "passed in $(took "$start_all")"
