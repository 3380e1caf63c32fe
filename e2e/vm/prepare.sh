#!/usr/bin/env bash
# Prepares the real-kernel test bed: installs the host tools, downloads the stock
# Debian kernel and builds a tiny initramfs around e2e/vm/guest-init.sh.
# Everything lands in <project>/.cache/vm/ (gitignored). Idempotent: a second run
# only checks that the cached files are there (well under a second).
#
# Output (last line, and in .cache/vm/current.env): the kernel and initramfs to boot.
# Env: VM_KERNEL_PACKAGE  pin the kernel package (default: what linux-image-amd64 depends on)
#      VM_CACHE_DIR       cache folder (default <project>/.cache/vm)
#      VM_QUIET=1         only print errors
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # depmod, for users whose PATH lacks the sbin folders

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
cache="${VM_CACHE_DIR:-$project/.cache/vm}"

say() { [[ "${VM_QUIET:-}" == 1 ]] || echo "[vm-prepare] $*" >&2; }
die() {
  echo "[vm-prepare] ERROR: $*" >&2
  exit 1
}

as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"
  fi
}

# --- 1. host packages ------------------------------------------------------------
packages=(qemu-system-x86 busybox-static cpio kmod ipvsadm socat keepalived nftables)
installed=" $(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${packages[@]}" 2>/dev/null |
  awk '$1 == "installed" { printf "%s ", $2 }' || true)"
missing=()
for pkg in "${packages[@]}"; do
  [[ "$installed" == *" $pkg "* ]] || missing+=("$pkg")
done
apt_updated=0
apt_update() {
  if [[ $apt_updated == 0 ]]; then
    say "apt-get update"
    apt_updated=1
    as_root apt-get update -qq >&2 || {
      say "apt-get update failed"
      return 1
    }
  fi
}
if ((${#missing[@]})); then
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
    apt_update || true
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      die "could not install ${missing[*]}"
  fi
fi

# --- 2. kernel package -------------------------------------------------------------
mkdir -p "$cache"
# one prepare at a time per cache (parallel test runs share it)
exec 9>"$cache/.lock"
flock 9
resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }'
}
kpkg="${VM_KERNEL_PACKAGE:-}"
resolved_file="$cache/resolved-kernel" # written only when apt-cache resolved the name
# apt-cache takes about a second: trust a resolution younger than a day
if [[ -z "$kpkg" && -z "${VM_REFRESH:-}" && -n "$(find "$resolved_file" -mmin -1440 2>/dev/null)" ]]; then
  kpkg="$(cat "$resolved_file")"
fi
if [[ -z "$kpkg" ]]; then
  kpkg="$(resolve_kernel || true)"
  if [[ -z "$kpkg" ]]; then
    apt_update || true
    kpkg="$(resolve_kernel || true)"
  fi
  if [[ -n "$kpkg" ]]; then
    echo "$kpkg" >"$resolved_file"
  elif [[ -s "$resolved_file" ]]; then
    kpkg="$(cat "$resolved_file")"
    say "apt-cache could not resolve linux-image-amd64; reusing $kpkg resolved before"
  fi
fi
[[ -n "$kpkg" ]] || die "could not resolve the kernel package from 'apt-cache depends linux-image-amd64'"
kver="${kpkg#linux-image-}"
[[ "$kver" == *-amd64 && "$kver" != *cloud* ]] || die "unexpected kernel package '$kpkg' (want the plain amd64 flavour)"

kdir="$cache/kernel/$kver"
if [[ ! -f "$kdir/.complete" ]]; then
  say "downloading $kpkg"
  tmp="$(mktemp -d "$cache/.dl.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp" # apt's _apt user must be able to write here
  if ! (cd "$tmp" && apt-get download "$kpkg" >&2 2>"$tmp/apt.err"); then
    apt_update || true
    (cd "$tmp" && apt-get download "$kpkg" >&2) || die "apt-get download $kpkg failed: $(cat "$tmp/apt.err")"
  fi
  deb="$(ls "$tmp"/*.deb)"
  mkdir -p "$tmp/x"
  dpkg -x "$deb" "$tmp/x"
  [[ -f "$tmp/x/boot/vmlinuz-$kver" ]] || die "$deb has no boot/vmlinuz-$kver"
  depmod -b "$tmp/x" "$kver"
  rm -rf "$cache/kernel" # older kernels are not needed any more
  mkdir -p "$cache/kernel"
  mv "$tmp/x" "$kdir"
  touch "$kdir/.complete"
  rm -rf "$tmp"
  trap - EXIT
fi
vmlinuz="$kdir/boot/vmlinuz-$kver"
moddir="$kdir/lib/modules/$kver"

# --- 3. initramfs ------------------------------------------------------------------
# Modules the guest may need. Dependencies are added from modules.dep. Order matters
# only for loading, which guest-init.sh does itself.
wanted=(
  # transport for the 9p root and the job folder, entropy, overlay for /usr/lib in the chroot
  virtio_pci 9pnet_virtio 9p virtio_rng overlay
  # the network card of demo:cluster (qemu user-mode network, VM_API_PORT)
  virtio_net
  # libcrc32c needs crc32c, which it only names as a soft dependency
  crc32c_generic libcrc32c
  # tunnels, GUE, GRE, test interfaces
  ipip tunnel4 fou fou6 ip_gre gre ip6_tunnel ip6_gre sit dummy veth
  # nftables NAT for SNAT of one-arm NAT (the operator's own table), and a bridge for a shared L2 segment
  nf_tables nft_chain_nat nft_nat nft_masq nft_ct nf_nat nf_conntrack bridge
  # SCTP sockets, for SCTP traffic through IPVS (socat)
  sctp
)
# every IPVS module the kernel ships (core, all schedulers, sip persistence engine, ftp)
while IFS= read -r ko; do
  wanted+=("$(basename "${ko%.ko*}")")
done < <(find "$moddir/kernel/net/netfilter/ipvs" -name '*.ko*' | sort)

key="$(cat "$here/guest-init.sh" "$here/prepare.sh" | sha256sum | cut -c1-12)"
initrd="$cache/initramfs-$kver-$key.cpio.gz"
if [[ ! -f "$initrd" ]]; then
  say "building $(basename "$initrd")"
  tmp="$(mktemp -d "$cache/.initrd.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  root="$tmp/root"
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,mnt/root,job,etc,tmp,lib/modules/"$kver"}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
  done
  for s in modprobe insmod rmmod lsmod depmod poweroff reboot; do ln -sf ../bin/busybox "$root/sbin/$s"; done
  install -m 0755 "$here/guest-init.sh" "$root/init"

  declare -A files=()
  for m in "${wanted[@]}"; do
    line="$(grep -E "(^|/)${m//_/[-_]}\\.ko(\\.[a-z]+)?:" "$moddir/modules.dep" || true)"
    if [[ -z "$line" ]]; then
      # built into the kernel is fine, anything else is a broken module list
      grep -qE "/${m//_/[-_]}\\.ko" "$moddir/modules.builtin" || die "module $m not found in $kver"
      continue
    fi
    for f in ${line/:/ }; do files[$f]=1; done
  done
  for f in "${!files[@]}"; do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
    cp "$moddir/$f" "$root/lib/modules/$kver/$f"
  done
  cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
  depmod -b "$root" "$kver"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$tmp/initrd"
  rm -f "$cache"/initramfs-"$kver"-*.cpio.gz
  mv "$tmp/initrd" "$initrd"
  rm -rf "$tmp"
  trap - EXIT
  say "initramfs: ${#files[@]} modules, $(du -h "$initrd" | cut -f1)"
fi

cat >"$cache/current.env.tmp" <<EOF
VM_KERNEL_PACKAGE='$kpkg'
VM_KERNEL_VERSION='$kver'
VM_KERNEL='$vmlinuz'
VM_INITRD='$initrd'
EOF
mv "$cache/current.env.tmp" "$cache/current.env"
say "ready: kernel $kver, $(basename "$initrd")"
