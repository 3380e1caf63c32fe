#!/usr/bin/env bash
# `npm run demo:cluster`: the whole path on a real kernel. A real kube-apiserver runs on the host's
# loopback (e2e/control-plane); `kubectl apply -f examples/` goes to it; the agent runs inside the
# test-bed VM (a real IPVS kernel) and reaches the API server through qemu's user-mode network
# (restrict=on, one guestfwd to the host's loopback: nothing leaves the machine). In the VM it checks
# that the agent programs exactly what `plan -o ipvsadm` predicts, repairs ipvsadm-made drift within
# one resync, drains a deleted RealServer, keeps and repairs the table while kube-apiserver is down
# (the host restarts it, then etcd, when the guest asks through the work folder), follows changes made
# after each restart and through dropped watches and storms of 410 Gone, 429 Too Many Requests and 409
# Conflict (a fault proxy; the guest's kubectl is spared them), reports in `kubectl get
# ipvsvs,ipvsnode`, and leaves the table as it is on SIGTERM. Exit status 0 when every step passed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cd "$project"
export PATH="$project/node_modules/.bin:$PATH"
say() { echo "[demo:cluster] $*" >&2; }

bin="$(e2e/control-plane/build.sh | tail -n 1)"
e2e/vm/prepare.sh >/dev/null
mkdir -p .cache/vm
work="$(mktemp -d "$project/.cache/vm/cluster.XXXXXX")"
cp_pid=""
cleanup() {
  [[ -n "$cp_pid" ]] && kill -TERM "$cp_pid" 2>/dev/null && wait "$cp_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

say "starting etcd + kube-apiserver on 127.0.0.1"
node e2e/cluster/control-plane-up.ts "$work/info.json" &
cp_pid=$!
for _ in $(seq 1 600); do [[ -s "$work/info.json" ]] && break; sleep 0.2; done
[[ -s "$work/info.json" ]] || { say "the control plane did not start"; exit 1; }
field() { node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync('$work/info.json','utf8')).$1))"; }
host_kubeconfig="$(field kubeconfig)"
k() { "$bin/kubectl" --kubeconfig "$host_kubeconfig" "$@"; }

say "kubectl apply: the CRDs, then examples/ and this node's Node object"
k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null
k create namespace demo >/dev/null
k apply --server-side -f examples/ >/dev/null
k apply --server-side -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata: {name: vm, labels: {ipvs.dev/edge: "true"}}
NODE
bin/ipvs-operator plan -f examples --node vm --node-labels ipvs.dev/edge=true >"$work/expected.ipvsadm"
say "expected table: $(grep -c '^-A' "$work/expected.ipvsadm") services, $(grep -c '^-a' "$work/expected.ipvsadm") destinations"

# The guest reaches the API server at 10.0.2.100:443; the certificate names "kubernetes" (and 127.0.0.1), so say which name to
# check. The guest's /tmp is its own tmpfs: the CA goes into the work folder, which it sees.
cp "$(field caFile)" "$work/ca.crt"
cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: host
  cluster: {server: "https://10.0.2.100:443", certificate-authority: "$work/ca.crt", tls-server-name: kubernetes}
users:
- name: admin
  user: {token: "$(field token)"}
contexts:
- name: host
  context: {cluster: host, user: admin}
current-context: host
KC
ln -s "$bin/kubectl" "$work/kubectl"
say "booting the VM; the agent runs there"
# Only the work folder is writable in the guest (VM_RW_DIR), so that it can ask for faults there.
# The guest reaches the API server through the fault proxy (agentServer), so that it can ask for
# dropped watches, 410s, 429s and 409s.
agent_server="$(field agentServer)"
VM_RW_DIR="$work" VM_API_PORT="${agent_server##*:}" VM_SKIP_PREPARE=1 e2e/vm/run-in-vm.sh --timeout 900 -- sh e2e/cluster/in-vm.sh "$work"
