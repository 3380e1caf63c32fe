#!/bin/sh
# /init of the test-bed initramfs (busybox sh, PID 1). Built into the initramfs by
# prepare.sh; its hash is part of the cache key.
#
# Mounts the host's / (9p, read-only) and the job folder (9p, writable), loads IPVS,
# runs <job>/job.sh chroot-ed into the host root with output to <job>/stdout and
# <job>/stderr, writes <job>/exit-code and powers off. PID 1 stays in the initramfs so
# that the kernel's request_module() runs the initramfs /sbin/modprobe.
# Any failure here powers off without an exit-code file: the host reports it loudly.

export PATH=/sbin:/bin
log() { echo "[vm-init $(cut -d' ' -f1 /proc/uptime)] $*" >/dev/console; }
fail() {
  log "FATAL: $*"
  [ -d /job/result ] && echo "$*" >/job/result/init-error
  sync
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
kver="$(uname -r)"
echo /sbin/modprobe >/proc/sys/kernel/modprobe

for m in virtio_pci 9pnet_virtio 9p virtio_rng; do modprobe "$m" || fail "modprobe $m"; done
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" hostroot /mnt/root || fail "mount of the host root (9p) failed"
mount -t 9p -o "$opts" job /job || fail "mount of the job folder (9p) failed"
[ -f /job/vm.env ] || fail "no vm.env in the job folder"
# shellcheck disable=SC1091
. /job/vm.env # VM_JOB_DIR VM_PROJECT_DIR VM_NO_IPVS VM_IPVS_PRELOAD VM_BLOCK_MODULES VM_PROJECT_RW VM_RW_DIR VM_API_PORT
mkdir -p /job/result 2>/dev/null

# Make modules unavailable for this run: delete the files and rebuild the indexes.
blocked="$VM_BLOCK_MODULES"
[ "$VM_NO_IPVS" = 1 ] && blocked="$blocked ip_vs"
moddir=/lib/modules/$kver
for m in $blocked; do
  n="$(echo "$m" | tr - _)"
  found=0
  for f in $(sed -n 's/:.*//p' "$moddir/modules.dep"); do
    b="$(basename "$f" | sed 's/\.ko.*//' | tr - _)"
    if [ "$b" = "$n" ]; then
      rm -f "$moddir/$f"
      found=1
    fi
  done
  [ $found = 1 ] || fail "VM_BLOCK_MODULES: no module named $m"
  # modules that depend on a blocked one can't load either
  for f in $(grep -E "(^|[ /])$n\\.ko" "$moddir/modules.dep" | sed 's/:.*//'); do rm -f "$moddir/$f"; done
  log "module $m blocked"
done
if [ -n "$blocked" ]; then
  depmod -b / "$kver" || fail "depmod after blocking" # text indexes, for busybox modprobe
fi

if [ "$VM_NO_IPVS" != 1 ] && [ "$VM_IPVS_PRELOAD" != 0 ]; then
  modprobe crc32c_generic || fail "modprobe crc32c_generic"
  modprobe ip_vs || fail "modprobe ip_vs"
fi

# Network: loopback (IPv4 real servers need the local table), IPv6 on, a dummy interface.
echo 0 >/proc/sys/net/ipv6/conf/all/disable_ipv6
echo 0 >/proc/sys/net/ipv6/conf/default/disable_ipv6
ip link set lo up || fail "ip link set lo up"
echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad
modprobe dummy numdummies=0 && ip link add dummy0 type dummy && ip link set dummy0 up &&
  ip addr add 192.0.2.1/24 dev dummy0 && ip -6 addr add 2001:db8::1/64 dev dummy0 ||
  fail "dummy0 setup"

# A network card only when the host forwards its API server (run-in-vm.sh VM_API_PORT).
if [ -n "${VM_API_PORT:-}" ]; then
  modprobe virtio_net && ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || fail "eth0 setup"
fi

# The chroot: host root plus kernel file systems, tmpfs /tmp, the writable job folder
# at its host path, the initramfs module tree at /lib/modules/<kver> (overlay on /usr/lib).
r=/mnt/root
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs shm $r/dev/shm
# A project checked out under /tmp stays visible through the new tmpfs /tmp.
mkdir -p /oldtmp && mount --bind $r/tmp /oldtmp
mount -t tmpfs -o mode=1777 tmp $r/tmp || fail "tmpfs /tmp"
case "$VM_PROJECT_DIR/" in /tmp/*)
  mkdir -p "$r$VM_PROJECT_DIR" && mount --bind "/oldtmp${VM_PROJECT_DIR#/tmp}" "$r$VM_PROJECT_DIR" ||
    fail "bind of the project at $VM_PROJECT_DIR"
  ;;
esac
mkdir -p "$r$VM_JOB_DIR" 2>/dev/null
mount --bind /job "$r$VM_JOB_DIR" || fail "bind of the job folder at $VM_JOB_DIR"
if [ "$VM_PROJECT_RW" = 1 ]; then
  mount -t 9p -o "$opts" project "$r$VM_PROJECT_DIR" || fail "writable project mount at $VM_PROJECT_DIR"
fi
if [ -n "$VM_RW_DIR" ]; then
  mkdir -p "$r$VM_RW_DIR" 2>/dev/null
  mount -t 9p -o "$opts" rwdir "$r$VM_RW_DIR" || fail "writable mount of $VM_RW_DIR"
fi
mkdir -p /ovl && mount -t tmpfs ovl /ovl && mkdir -p /ovl/upper /ovl/work
if mount -t overlay -o lowerdir=$r/usr/lib,upperdir=/ovl/upper,workdir=/ovl/work overlay $r/usr/lib; then
  mkdir -p "$r/usr/lib/modules/$kver" && mount --bind "$moddir" "$r/usr/lib/modules/$kver"
  # kmod's binary indexes still list blocked modules: rebuild them with the host's depmod
  if [ -n "$blocked" ]; then chroot $r /sbin/depmod "$kver" || fail "depmod in the chroot"; fi
else
  log "warning: no overlay on /usr/lib; modprobe inside the chroot will not find modules"
fi

echo "$(cut -d' ' -f1 /proc/uptime)" >/job/result/start-uptime
log "running job"
chroot $r /usr/bin/env -i HOME=/tmp TERM="${TERM:-dumb}" /bin/bash "$VM_JOB_DIR/job.sh" \
  >/job/result/stdout 2>/job/result/stderr </dev/null
rc=$?
echo "$(cut -d' ' -f1 /proc/uptime)" >/job/result/end-uptime
echo $rc >/job/result/exit-code.tmp && mv /job/result/exit-code.tmp /job/result/exit-code
log "job exited with $rc"
sync
umount "$r$VM_JOB_DIR" 2>/dev/null
umount /job 2>/dev/null
poweroff -f
