#!/usr/bin/env bash
# A real reboot between two runs of `apply`: two boots of the test-bed VM share the ownership journal
# (it survives on the host, like the DaemonSet's hostPath). In the second boot a foreign service
# (keepalived, a person) takes a key the journal recorded in the first boot; `apply` must leave it
# exactly as it is, because journal entries of another boot own nothing. Part of `npm run test:vm`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "$project/.cache/vm/reboot.XXXXXX")"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "check-reboot: FAIL: $*" >&2
  exit 1
}
export VM_SKIP_PREPARE=1

# Boot 1: program a service; the journal (printed between markers) comes back to the host.
"$here/run-in-vm.sh" --timeout 600 -- sh -c '
  bin/ipvs-operator apply -f examples/nat-round-robin.yaml --node vm --state-file /tmp/j.json >&2 &&
  echo "--- journal" && cat /tmp/j.json && echo "--- end" && cat /proc/sys/kernel/random/boot_id' \
  >"$work/boot1.out"
sed -n '/^--- journal$/,/^--- end$/p' "$work/boot1.out" | sed '1d;$d' >"$work/journal.json"
boot1="$(tail -n 1 "$work/boot1.out")"
grep -q '"TCP 192.0.2.10:80"' "$work/journal.json" || fail "boot 1 did not journal TCP 192.0.2.10:80"
grep -q "\"bootId\": \"$boot1\"" "$work/journal.json" || fail "the journal does not carry boot 1's id ($boot1)"

# Boot 2: a foreign service at the journaled key, then apply with no manifest for it.
"$here/run-in-vm.sh" --timeout 600 -- sh -c "
  cp '$work/journal.json' /tmp/j.json &&
  ipvsadm -A -t 192.0.2.10:80 -s wlc && ipvsadm -a -t 192.0.2.10:80 -r 203.0.113.9:80 -g -w 9 &&
  ipvsadm -Sn >/tmp/before &&
  bin/ipvs-operator apply -f examples/direct-routing-weighted.yaml --node vm --state-file /tmp/j.json; echo \"exit \$?\" &&
  ipvsadm -Sn | grep 192.0.2.10: >/tmp/after; grep 192.0.2.10: /tmp/before | diff - /tmp/after && echo 'foreign unchanged'" \
  >"$work/boot2.out" 2>&1 || true
cat "$work/boot2.out"
grep -q "^exit 0$" "$work/boot2.out" || fail "apply in boot 2 did not exit 0"
grep -q "drift: Foreign TCP 192.0.2.10:80 (Ignored)" "$work/boot2.out" || fail "the foreign service was not reported Foreign"
grep -q "the journal was written in another boot ($boot1)" "$work/boot2.out" || fail "no note about the journal of another boot"
grep -q "^foreign unchanged$" "$work/boot2.out" || fail "the foreign service at the journaled key changed"
echo "check-reboot: ok (after a reboot the journal of the earlier boot owns nothing; the foreign service at its key is untouched)"
