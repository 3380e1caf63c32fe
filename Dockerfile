# The ipvs-operator image: Node 24 on Debian 12 (glibc, which the netlink addon's prebuilt binary
# needs), the bundled CLI and agent (dist/ipvs-operator.mjs, decision 0008) and the run-time files of
# the one package the bundle leaves external, netlink. No sources, no dev dependencies, no npm cache.
#
#   docker build -t ipvs-operator .
#   docker run --rm ipvs-operator version
#   docker run --rm ipvs-operator agent --help
#
# CI builds this very file with podman on a locally made base (e2e/image/build.sh), which also checks
# that the ENTRYPOINT's V8 flags are the launcher's (bin/ipvs-operator, NODE_FLAGS).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install from the lockfile, bundle, and gather what the bundle needs at run time.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Only for machines whose TLS is intercepted by a local CA: the path of a CA bundle mounted into the
# build (e2e/image/build.sh does that). Unset otherwise.
ARG NODE_EXTRA_CA_CERTS
COPY package.json package-lock.json ./
# No install scripts are needed: esbuild finds its binary in its platform package, netlink's prebuilt
# addon comes in its tarball, and the `node` devDependency's script would only download a second Node.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts scripts/
COPY src/ src/
RUN node scripts/build.ts
# netlink at run time is its compiled JavaScript, the prebuilt addon for this architecture and
# node-gyp-build (which finds the addon); its other dependencies (node-addon-api's C++ headers,
# @types/node) and its C++ sources only serve compiling. The last line proves the result loads:
# the bundle imports netlink (and so its addon) before it prints the version.
RUN set -eu; \
    nm=node_modules; out=/out/node_modules; arch="linux-$(node -p process.arch)"; \
    mkdir -p /out/dist "$out/netlink/prebuilds"; \
    cp dist/ipvs-operator.mjs /out/dist/; \
    cp -r "$nm/netlink/package.json" "$nm/netlink/LICENSE" "$nm/netlink/dist" "$out/netlink/"; \
    cp -r "$nm/netlink/prebuilds/$arch" "$out/netlink/prebuilds/"; \
    cp -r "$nm/node-gyp-build" "$out/"; \
    find "$out" \( -name '*.d.ts' -o -name '*.map' \) -delete; \
    cd /out && node dist/ipvs-operator.mjs version

# ---- the image
FROM ${NODE_IMAGE}
ARG NODE_IMAGE
# Set by the build (e2e/image/build.sh, the e2e-kind workflow) from package.json and git.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="ipvs-operator" \
      org.opencontainers.image.description="Kubernetes operator that turns VirtualService/RealServer resources into the Linux kernel's IPVS table on every node" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
# nft, for the source NAT rules of VirtualServices with spec.snat (the agent runs `nft -f -` on its own
# table only); nothing else from apt.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && nft --version
COPY --from=build /out/ /opt/ipvs-operator/
COPY LICENSE /opt/ipvs-operator/
WORKDIR /opt/ipvs-operator
# Root, because programming IPVS needs CAP_NET_ADMIN and Kubernetes gives a container's added
# capabilities to root only (a non-root process gets no ambient capabilities). The DaemonSet runs it
# with every capability dropped but NET_ADMIN, never privileged, on a read-only root file system.
USER root
# The V8 flags of bin/ipvs-operator's NODE_FLAGS line (decision 0007); e2e/image/build.sh fails when
# they differ.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--heap-growing-percent=10", "--expose-gc", "/opt/ipvs-operator/dist/ipvs-operator.mjs"]
CMD ["agent"]
