#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile with podman, on a machine with no Docker
# engine and no registry (recipe: ../shared/design/testbed.md, "Container images without Docker"):
#   1. podman, runc, debootstrap, uidmap from apt (only what is missing; `apt-get update` only if an
#      install fails);
#   2. once per cache: a Debian minbase root file system made with debootstrap, imported as a base
#      image, and on it a stand-in for the Dockerfile's FROM image (node:24-bookworm-slim) with the
#      project's own Node 24 binary (npm package `node`, pinned in the lockfile) and the machine's npm,
#      tagged with that exact name, under ${IPVS_OPERATOR_CACHE:-$HOME/.cache/ipvs-operator}/image;
#   3. `podman build --pull=never` of the Dockerfile (layers cached in podman's storage);
#   4. checks: the ENTRYPOINT's V8 flags are bin/ipvs-operator's NODE_FLAGS, the version label, the
#      files under /opt/ipvs-operator (the bundle and netlink's run-time files, nothing else),
#      `version` and `agent --help` run in the container (--network=none);
#   5. measures the image size and the start-up time (`version`, several runs);
#   6. writes .cache/image/ (gitignored): ipvs-operator-<version>.tar (`podman save --format
#      docker-archive`, what `docker load` takes), rootfs/ (the image's file tree, which the VM test
#      e2e/vm/tests/image-agent.vm.test.ts runs as the agent), image.json (its config), report.txt.
# It fails (non-zero, with the reason) when anything cannot be done: it never skips. One run at a time
# per cache (flock). Prints the image name as its last line of stdout.
#   e2e/image/build.sh            IMAGE_STARTUP_RUNS=N (default 5)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../.." && pwd)"
home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache="${IPVS_OPERATOR_CACHE:-$home/.cache/ipvs-operator}/image"
out="$project/.cache/image"
runs="${IMAGE_STARTUP_RUNS:-5}"

log() { echo "image build: $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
trap 'log "FAILED: line $LINENO: $BASH_COMMAND (exit $?)"' ERR
now() { date +%s.%N; }
took() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

start_all=$(now)
[[ "$(id -u)" == 0 ]] || fail "needs root (rootful podman, debootstrap, apt-get)"

# ---- 1. tools
packages=(podman runc debootstrap uidmap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  t=$(now)
  log "installing ${missing[*]}"
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"; }
  install >&2 || { apt-get update -q -o DPkg::Lock::Timeout=300 >&2 && install >&2; } ||
    fail "apt-get install ${missing[*]}"
  log "installed ${missing[*]} in $(took "$t")"
fi

# ---- What the Dockerfile builds on: its default NODE_IMAGE, say node:24-bookworm-slim.
dockerfile="$project/Dockerfile"
node_image="$(sed -n 's/^ARG NODE_IMAGE=\(.*\)$/\1/p' "$dockerfile" | head -n 1)"
[[ "$node_image" =~ ^node:([0-9]+)-([a-z]+)-slim$ ]] ||
  fail "expected 'ARG NODE_IMAGE=node:<major>-<debian suite>-slim' in $dockerfile, found '$node_image'"
node_major="${BASH_REMATCH[1]}"
suite="${BASH_REMATCH[2]}"
standin_name="docker.io/library/$node_image"
node_bin="$project/node_modules/node/bin/node"
[[ -x "$node_bin" ]] || fail "no $node_bin: run npm ci first (the devDependency 'node' provides Node $node_major)"
node_version="$("$node_bin" -v)"
[[ "$node_version" == "v$node_major."* ]] || fail "$node_bin is $node_version, the Dockerfile builds on Node $node_major"
npm_cli="$(readlink -f "$(command -v npm)" 2>/dev/null || true)"
npm_dir="${npm_cli%/bin/npm-cli.js}"
[[ -f "$npm_dir/package.json" ]] || fail "no npm at '$npm_dir' (the stand-in copies the machine's npm)"
npm_version="$("$node_bin" -p "require('$npm_dir/package.json').version")"
version="$("$node_bin" -p "require('$project/package.json').version")"
revision="$(git -C "$project" rev-parse HEAD 2>/dev/null || echo unknown)"
image="localhost/ipvs-operator:$version"

# The Debian mirror apt uses (deb822 sources first, then sources.list); IMAGE_DEBIAN_MIRROR overrides.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v RS= -v suite="$suite" '{
      uri = ""; hit = 0; n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^URIs:/) { split(line[i], w, /[ \t]+/); uri = w[2] }
        if (line[i] ~ /^Suites:/ && (" " line[i] " ") ~ (" " suite " ")) hit = 1
        if (line[i] ~ /^Enabled:[ \t]*no/) { hit = 0; break }
      }
      if (uri != "" && hit) { print uri; exit }
    }' "$f"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk -v suite="$suite" '$1 == "deb" { sub(/\[[^]]*\] /, ""); if ($3 == suite) { print $2; exit } }' /etc/apt/sources.list
  fi
}
mirror="${IMAGE_DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}"
[[ -n "$mirror" ]] || fail "found no apt source for Debian $suite (set IMAGE_DEBIAN_MIRROR)"

mkdir -p "$cache" "$out"
exec 9>"$cache/.lock"
flock 9

# ---- podman settings (no edit of /etc): runc, because crun refuses this machine's hybrid cgroups, and
# ulimits root may set (podman's default nofile is higher than the hard limit here).
hard_nofile="$(ulimit -Hn)"
[[ "$hard_nofile" == unlimited ]] && hard_nofile=1048576
cat >"$cache/containers.conf.new" <<CONF
# Written by e2e/image/build.sh; used through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
mv "$cache/containers.conf.new" "$cache/containers.conf"
export CONTAINERS_CONF="$cache/containers.conf"
command -v runc >/dev/null || fail "runc is not installed"
podman info >/dev/null 2>"$cache/podman-info.err" || fail "podman info: $(cat "$cache/podman-info.err")"

# ---- 2a. the debootstrap base, once: a tarball in the cache, imported when podman lacks it.
base_tar="$cache/debian-$suite-minbase.tar"
base_stamp="suite=$suite variant=minbase mirror=$mirror recipe=1"
if [[ ! -f "$base_tar" || "$(cat "$base_tar.stamp" 2>/dev/null)" != "$base_stamp" ]]; then
  t=$(now)
  log "debootstrap --variant=minbase $suite from $mirror"
  rm -rf "$cache/base.tmp" "$base_tar" "$base_tar.stamp" "$cache/base.id"
  mkdir -p "$cache/base.tmp"
  debootstrap --variant=minbase "$suite" "$cache/base.tmp/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    fail "debootstrap (last lines of $cache/debootstrap.log:)$(echo && tail -n 20 "$cache/debootstrap.log")"
  # What an image has no use for: apt's downloaded lists and packages, logs.
  rm -rf "$cache/base.tmp/rootfs/var/lib/apt/lists/"* "$cache/base.tmp/rootfs/var/cache/apt/"*.bin \
    "$cache/base.tmp/rootfs/var/cache/apt/archives/"*.deb "$cache/base.tmp/rootfs/var/log/"*
  tar --numeric-owner -C "$cache/base.tmp/rootfs" -cf "$base_tar.new" .
  mv "$base_tar.new" "$base_tar"
  rm -rf "$cache/base.tmp"
  echo "$base_stamp" >"$base_tar.stamp"
  log "base file system: $(mib "$(stat -c %s "$base_tar")") in $(took "$t")"
fi
base_name="localhost/ipvs-operator-testbed/debian-minbase:$suite"
if ! podman image exists "$(cat "$cache/base.id" 2>/dev/null || echo none)"; then
  t=$(now)
  podman import -q "$base_tar" "$base_name" >"$cache/base.id.new" || fail "podman import $base_tar"
  mv "$cache/base.id.new" "$cache/base.id"
  log "imported $base_name in $(took "$t")"
fi
base_id="$(cat "$cache/base.id")"

# ---- 2b. the stand-in for $node_image: the base plus Node and npm where the official image has them.
standin_stamp="base=$base_id node=$node_version npm=$npm_version recipe=1"
standin_id="$(podman image inspect --format '{{.Id}}' "$standin_name" 2>/dev/null || true)"
if [[ -z "$standin_id" || "$(cat "$cache/standin.stamp" 2>/dev/null)" != "$standin_stamp" ||
  "$(cat "$cache/standin.id" 2>/dev/null)" != "$standin_id" ]]; then
  t=$(now)
  ctx="$cache/standin.ctx"
  rm -rf "$ctx" "$cache/standin.stamp"
  mkdir -p "$ctx"
  cp "$node_bin" "$ctx/node"
  cp -r "$npm_dir" "$ctx/npm"
  cat >"$ctx/Containerfile" <<CONTAINERFILE
# Stand-in for $node_image, made by e2e/image/build.sh: Debian $suite minbase, Node and npm at the
# official image's paths.
FROM $base_name
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
CMD ["node"]
CONTAINERFILE
  podman build -q --pull=never --network=none -t "$standin_name" "$ctx" >"$cache/standin.id.new" 2>"$cache/standin.log" ||
    fail "podman build of the stand-in $standin_name (last lines of $cache/standin.log:)$(echo && tail -n 20 "$cache/standin.log")"
  standin_id="$(podman image inspect --format '{{.Id}}' "$standin_name")"
  echo "$standin_id" >"$cache/standin.id"
  echo "$standin_stamp" >"$cache/standin.stamp"
  rm -rf "$ctx" "$cache/standin.id.new"
  log "stand-in $standin_name (Node $node_version, npm $npm_version) built in $(took "$t")"
else
  log "cached: base $base_name and stand-in $standin_name ($(took "$start_all"))"
fi

# ---- 3. the image, from the repository's Dockerfile. The build stage runs `npm ci`: it reaches the
# registry through the host's network, and trusts the host's CA bundle (TLS may be intercepted here).
t=$(now)
ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
ca_args=()
if [[ -r "$ca" ]]; then
  ca_args=(--volume "$ca:/run/ipvs-operator-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/ipvs-operator-build-ca.crt)
fi
podman build --pull=never --network=host "${ca_args[@]}" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  -t "$image" -f "$dockerfile" "$project" >"$out/build.log" 2>&1 ||
  fail "podman build -f Dockerfile (last lines of $out/build.log:)$(echo && tail -n 30 "$out/build.log")"
image_id="$(podman image inspect --format '{{.Id}}' "$image")"
build_time="$(took "$t")"
log "built $image (${image_id:0:12}) in $build_time"

# ---- 4. checks
launcher_flags="$(sed -n 's/^NODE_FLAGS="\(.*\)"$/\1/p' "$project/bin/ipvs-operator")"
[[ -n "$launcher_flags" ]] || fail "no NODE_FLAGS=\"...\" line in bin/ipvs-operator"
entrypoint="$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")"
# shellcheck disable=SC2086 # the flags are words
want_entrypoint="$("$node_bin" -e 'console.log(JSON.stringify(process.argv.slice(1)))' -- \
  node $launcher_flags /opt/ipvs-operator/dist/ipvs-operator.mjs)"
[[ "$entrypoint" == "$want_entrypoint" ]] ||
  fail "the Dockerfile's ENTRYPOINT is $entrypoint; with bin/ipvs-operator's NODE_FLAGS it must be $want_entrypoint"
label="$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$image")"
[[ "$label" == "$version" ]] || fail "label org.opencontainers.image.version is '$label', package.json says $version"
user="$(podman image inspect --format '{{.Config.User}}' "$image")"
[[ "$user" == root || "$user" == 0 ]] || fail "the image's USER is '$user'; the agent needs root (see the Dockerfile)"
# Only the bundle, netlink's run-time files and the licence: no sources, no dev dependencies.
files="$(podman run --rm --network=none --entrypoint find "$image" /opt/ipvs-operator -type f)" ||
  fail "podman run ... find /opt/ipvs-operator"
unexpected="$(grep -Ev '^/opt/ipvs-operator/(LICENSE|dist/ipvs-operator\.mjs|node_modules/netlink/(package\.json|LICENSE|dist/.*\.js|prebuilds/linux-[a-z0-9]+/[^/]+\.node)|node_modules/node-gyp-build/.*)$' <<<"$files" || true)"
[[ -z "$unexpected" ]] || fail "unexpected files in the image under /opt/ipvs-operator:$(echo && head -n 20 <<<"$unexpected")"
got="$(podman run --rm --network=none "$image" --version 2>&1)" || fail "podman run $image --version: $got"
[[ "$got" == "ipvs-operator $version" ]] || fail "podman run $image --version printed '$got', expected 'ipvs-operator $version'"
help="$(podman run --rm --network=none "$image" agent --help 2>&1)" || fail "podman run $image agent --help: $help"
[[ "$(head -n 1 <<<"$help")" == "Usage: ipvs-operator agent [options]" && "$help" == *--from-dir* ]] ||
  fail "podman run $image agent --help printed:$(echo && head -n 5 <<<"$help")"
nft_version="$(podman run --rm --network=none --entrypoint nft "$image" --version 2>&1)" ||
  fail "podman run --entrypoint nft $image --version: $nft_version"
log "checks passed: entrypoint flags = NODE_FLAGS ($launcher_flags), labels, $(wc -l <<<"$files") files under /opt/ipvs-operator, 'version', 'agent --help', $nft_version"

# ---- 5. size and start-up time
size="$(podman image inspect --format '{{.Size}}' "$image")"
base_size="$(podman image inspect --format '{{.Size}}' "$standin_name")"
startup=()
for ((i = 0; i < runs; i++)); do
  s=$(now)
  podman run --rm --network=none "$image" --version >/dev/null
  startup+=("$(awk -v s="$s" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }')")
done
# The process alone, inside the container (node started exactly as the ENTRYPOINT starts it).
mapfile -t entry_words < <("$node_bin" -e 'for (const w of JSON.parse(process.argv[1])) console.log(w)' "$entrypoint")
# shellcheck disable=SC2016 # expanded by the container's bash
process="$(podman run --rm --network=none --entrypoint /bin/bash "$image" -c \
  'TIMEFORMAT=%R; for i in $(seq "$0"); do { time "$@" version >/dev/null; } 2>&1; done' "$runs" \
  "${entry_words[@]}" | tr '\n' ' ' | sed 's/ $//')"

# ---- 6. the archive and the file tree, rewritten only when the image changed
archive="$out/ipvs-operator-$version.tar"
if [[ ! -f "$archive" || "$(cat "$out/archive.id" 2>/dev/null)" != "$image_id" ]]; then
  t=$(now)
  rm -f "$out"/ipvs-operator-*.tar "$out/archive.id"
  podman save -q --format docker-archive -o "$archive.new" "$image" || fail "podman save $image"
  mv "$archive.new" "$archive"
  echo "$image_id" >"$out/archive.id"
  log "wrote $archive in $(took "$t")"
fi
if [[ ! -d "$out/rootfs" || "$("$node_bin" -p "require('$out/image.json').id" 2>/dev/null)" != "$image_id" ]]; then
  t=$(now)
  rm -rf "$out/rootfs.new" "$out/image.json"
  mkdir "$out/rootfs.new"
  cid="$(podman create --network=none "$image")"
  podman export "$cid" | tar --numeric-owner -x -C "$out/rootfs.new" || {
    podman rm "$cid" >/dev/null
    fail "podman export $image | tar -x"
  }
  podman rm "$cid" >/dev/null
  rm -rf "$out/rootfs"
  mv "$out/rootfs.new" "$out/rootfs"
  # shellcheck disable=SC2016 # JavaScript
  podman image inspect --format '{{json .Config}}' "$image" |
    "$node_bin" -e '
      const config = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
      const [id, name] = process.argv.slice(1);
      const image = { id, name, entrypoint: config.Entrypoint, cmd: config.Cmd ?? [], env: config.Env ?? [],
        workingDir: config.WorkingDir ?? "/", user: config.User ?? "" };
      process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);' "$image_id" "$image" >"$out/image.json"
  log "exported the file tree to $out/rootfs in $(took "$t")"
fi

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cat >"$out/report.txt" <<REPORT
image            $image (${image_id:0:12}), built from Dockerfile on $node_image (stand-in: Debian $suite minbase, Node $node_version, npm $npm_version)
image size       $(mib "$size") ($(mib "$((size - base_size))") on top of the base image, $(mib "$base_size"))
archive          $(mib "$(stat -c %s "$archive")") ($archive, podman save --format docker-archive)
podman run       version: ${startup[*]} s (first, then warm; median $(median <<<"${startup[*]}") s)
process start    version inside the container: $process s (median $(median <<<"$process") s)
build            podman build $build_time; whole script $(took "$start_all")
REPORT
sed 's/^/image build: /' "$out/report.txt" >&2
echo "$image"
