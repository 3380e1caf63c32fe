#!/usr/bin/env bash
# Runs one command inside a throwaway VM with a real Debian kernel that has IPVS.
#
#   e2e/vm/run-in-vm.sh [--timeout SECS] -- <command...>
#
# The guest sees the host's / read-only (9p) and runs the command as root, chroot-ed
# into it, in the project folder, with <project>/node_modules/.bin first in PATH, /tmp
# on tmpfs and HOME=/tmp. The command's stdout/stderr are streamed here and its exit
# status is returned. If the VM can't boot or run the job, or the timeout hits, this
# exits non-zero (124 on timeout, 125 when the job never ran) with a message on stderr.
# See e2e/vm/README.md for the env options (VM_NO_IPVS, VM_BLOCK_MODULES, ...).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cache="${VM_CACHE_DIR:-$project/.cache/vm}"

note() { [[ "${VM_QUIET:-}" == 1 ]] || echo "[vm] $*" >&2; }
die() {
  echo "[vm] ERROR: $*" >&2
  exit 125
}

timeout_s="${VM_TIMEOUT:-900}"
while (($#)); do
  case "$1" in
  --timeout)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--timeout needs a number of seconds"
    timeout_s="$2"
    shift 2
    ;;
  --) shift && break ;;
  *) die "usage: run-in-vm.sh [--timeout SECS] -- <command...> (got '$1')" ;;
  esac
done
(($#)) || die "usage: run-in-vm.sh [--timeout SECS] -- <command...> (no command given)"

t0=$(date +%s.%N)
if [[ "${VM_SKIP_PREPARE:-}" != 1 ]]; then
  VM_QUIET="${VM_QUIET:-1}" "$here/prepare.sh" || die "prepare.sh failed"
fi
[[ -f "$cache/current.env" ]] || die "no $cache/current.env: run e2e/vm/prepare.sh"
# shellcheck disable=SC1091
. "$cache/current.env"
[[ -f "$VM_KERNEL" && -f "$VM_INITRD" ]] || die "kernel or initramfs missing in $cache: run e2e/vm/prepare.sh"
qemu="$(command -v qemu-system-x86_64)" || die "qemu-system-x86_64 not installed: run e2e/vm/prepare.sh"

for m in ${VM_BLOCK_MODULES:-}; do
  [[ "$m" =~ ^[A-Za-z0-9_-]+$ ]] || die "VM_BLOCK_MODULES: bad module name '$m'"
done

mkdir -p "$cache/jobs"
# failed jobs are kept for inspection; forget them after a day
find "$cache/jobs" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
job="$(mktemp -d "$cache/jobs/job.XXXXXX")"
mkdir -p "$job/result"
: >"$job/result/stdout"
: >"$job/result/stderr"

q() { printf '%q' "$1"; }
cat >"$job/vm.env" <<EOF
VM_JOB_DIR='$job'
VM_PROJECT_DIR='$project'
VM_NO_IPVS='${VM_NO_IPVS:-0}'
VM_IPVS_PRELOAD='${VM_IPVS_PRELOAD:-1}'
VM_BLOCK_MODULES='${VM_BLOCK_MODULES:-}'
VM_PROJECT_RW='${VM_PROJECT_RW:-0}'
VM_RW_DIR='${VM_RW_DIR:-}'
VM_API_PORT='${VM_API_PORT:-}'
EOF
{
  echo "export PATH=$(q "$project/node_modules/.bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export TMPDIR=/tmp IPVS_TESTBED=vm npm_config_cache=/tmp/npm-cache npm_config_update_notifier=false"
  echo "export IPVS_TESTBED_NO_IPVS=$(q "${VM_NO_IPVS:-0}") IPVS_TESTBED_BLOCKED_MODULES=$(q "${VM_BLOCK_MODULES:-}")"
  for name in CI NO_COLOR FORCE_COLOR ${VM_PASS_ENV:-}; do
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "VM_PASS_ENV: bad variable name '$name'"
    if [[ -n "${!name+x}" ]]; then echo "export $name=$(q "${!name}")"; fi
  done
  echo "cd $(q "$project") || exit 125"
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
} >"$job/job.sh"

# qboot starts the kernel seconds sooner than SeaBIOS under emulation
bios=()
if [[ -n "${VM_BIOS:-}" ]]; then bios=(-bios "$VM_BIOS"); elif [[ -f /usr/share/qemu/qboot.rom ]]; then
  bios=(-bios /usr/share/qemu/qboot.rom)
fi
args=(
  "${bios[@]}"
  -accel tcg,thread=multi -cpu max -m "${VM_MEMORY_MB:-2048}" -smp "${VM_CPUS:-1}"
  -nographic -nodefaults -no-user-config -no-reboot -serial stdio -monitor none
  -kernel "$VM_KERNEL" -initrd "$VM_INITRD"
  -append "console=ttyS0 panic=-1 quiet mitigations=off"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$job,mount_tag=job,security_model=none,multidevs=remap"
  -device virtio-rng-pci
)
# VM_API_PORT: a network card on qemu's user-mode network, restricted (no route out), with one
# forward: the guest's 10.0.2.100:443 reaches the host's 127.0.0.1:$VM_API_PORT (a local API server).
# The `cmd:` form starts one socat per guest connection; the `tcp:` form would multiplex every guest
# connection onto one host connection (TLS sessions then break with "invalid session id").
if [[ -n "${VM_API_PORT:-}" ]]; then
  [[ "$VM_API_PORT" =~ ^[0-9]+$ ]] || die "VM_API_PORT must be a port number"
  command -v socat >/dev/null || die "VM_API_PORT needs socat (e2e/vm/prepare.sh installs it)"
  args+=(-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:443-cmd:socat - TCP:127.0.0.1:$VM_API_PORT"
    -device virtio-net-pci,netdev=n0)
fi
if [[ "${VM_PROJECT_RW:-0}" == 1 ]]; then
  args+=(-virtfs "local,path=$project,mount_tag=project,security_model=none,multidevs=remap")
fi
# One host folder writable at the same path in the guest (narrower than VM_PROJECT_RW).
if [[ -n "${VM_RW_DIR:-}" ]]; then
  [[ "$VM_RW_DIR" == /* && -d "$VM_RW_DIR" && "$VM_RW_DIR" != *"'"* ]] ||
    die "VM_RW_DIR must be an existing absolute folder (no quotes in its path)"
  args+=(-virtfs "local,path=$VM_RW_DIR,mount_tag=rwdir,security_model=none,multidevs=remap")
fi

# Copies what the guest appends to $1 onto fd $2 until $job/.stop exists (then once more).
stream() {
  local file="$1" fd="$2" off=0 size last=0
  while :; do
    [[ -e "$job/.stop" ]] && last=1
    size=$(stat -c %s "$file")
    if ((size > off)); then
      tail -c +"$((off + 1))" "$file" | head -c "$((size - off))" >&"$fd"
      off=$size
    fi
    ((last)) && return 0
    sleep 0.2
  done
}

note "booting kernel $VM_KERNEL_VERSION (timeout ${timeout_s}s)"
timeout -k 5 "$timeout_s" "$qemu" "${args[@]}" >"$job/console.log" 2>"$job/qemu.err" </dev/null &
qpid=$!
trap 'kill -TERM $qpid 2>/dev/null; touch "$job/.stop"' INT TERM
stream "$job/result/stdout" 1 &
s1=$!
stream "$job/result/stderr" 2 &
s2=$!
if [[ "${VM_VERBOSE:-}" == 1 ]]; then
  stream "$job/console.log" 2 &
  s3=$!
fi
qrc=0
wait $qpid || qrc=$?
touch "$job/.stop"
wait $s1 $s2 ${s3:-} || true
t1=$(date +%s.%N)

fail_report() {
  echo "[vm] ERROR: $1" >&2
  [[ -s "$job/result/init-error" ]] && echo "[vm] guest init: $(cat "$job/result/init-error")" >&2
  [[ -s "$job/qemu.err" ]] && sed 's/^/[vm] qemu: /' "$job/qemu.err" >&2
  if [[ -s "$job/console.log" ]]; then
    echo "[vm] last console lines:" >&2
    tail -n 40 "$job/console.log" | sed 's/^/[vm]   /' >&2
  fi
  echo "[vm] job folder kept: $job" >&2
}

if ((qrc == 124 || qrc == 137)) && [[ ! -f "$job/result/exit-code" ]]; then
  fail_report "TIMEOUT: the VM did not finish within ${timeout_s}s (qemu killed)"
  exit 124
fi
if [[ ! -f "$job/result/exit-code" ]]; then
  fail_report "the VM stopped without finishing the job (qemu exit status $qrc)"
  exit 125
fi
rc="$(cat "$job/result/exit-code")"
[[ "$rc" =~ ^[0-9]+$ ]] || {
  fail_report "bad exit-code file: '$rc'"
  exit 125
}
if ((qrc != 0)); then note "warning: qemu exited with status $qrc after the job finished"; fi

start="$(cat "$job/result/start-uptime" 2>/dev/null || echo 0)"
end="$(cat "$job/result/end-uptime" 2>/dev/null || echo 0)"
note "$(awk -v s="$start" -v e="$end" -v t0="$t0" -v t1="$t1" -v rc="$rc" 'BEGIN {
  printf "exit %d; guest boot to command %.1fs, command %.1fs, total %.1fs", rc, s, e - s, t1 - t0 }')"
if [[ "${VM_KEEP_JOB:-}" == 1 ]]; then note "job folder kept: $job"; else rm -rf "$job"; fi
exit "$rc"
