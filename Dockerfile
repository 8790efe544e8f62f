# syntax=docker/dockerfile:1
#
# pushbridge container image.
#
#   docker build -t pushbridge .
#   docker run -p 8080:8080 -v pushbridge-data:/data pushbridge
#
# Scalar settings come from the environment (PUSHBRIDGE_EMARSYS_SANDBOX=false,
# PUSHBRIDGE_EMARSYS_CLIENTSERVICEURL=..., see README "Configuration"); the apps list comes from a YAML
# file mounted at /app/config/pushbridge.yaml (or named with `serve --config`), since the environment
# does not reach into it. With no file the built-in defaults apply: the demo app and the embedded ME
# sandbox.
#
# Builder and runtime are the same distribution (Debian 12 "bookworm"): the runtime stage installs
# exactly the Debian packages whose shared libraries the binary links. scripts/check-dockerfile.sh
# (run by .ci/run) builds with SWIFT_BUILD_FLAGS below, runs ldd and fails if the two drift apart.

FROM swift:6.3-bookworm AS build

# C headers the build needs (the full swift image has them already; named to make the need explicit):
# GRDB compiles against the system SQLite, swift-nio-extras against zlib.
# scripts/check-dockerfile.sh installs the same packages on the machine that runs it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build

# The manifest names every target, tests included, so their folders must exist for it to load.
# Package.resolved is not committed; `Package.*` copies it when a build context has one.
COPY Package.* ./
COPY Sources ./Sources
COPY Tests ./Tests

# The one place the release build flags are written; scripts/check-dockerfile.sh reads this line.
# --static-swift-stdlib links the Swift runtime, Foundation and Dispatch into the binary.
ARG SWIFT_BUILD_FLAGS="-c release --product pushbridge --static-swift-stdlib"

# Word splitting of SWIFT_BUILD_FLAGS is intended.
RUN --mount=type=cache,target=/build/.build \
    swift build ${SWIFT_BUILD_FLAGS} \
    && mkdir -p /staging \
    && cp "$(swift build ${SWIFT_BUILD_FLAGS} --show-bin-path)/pushbridge" /staging/pushbridge \
    && strip /staging/pushbridge


FROM debian:bookworm-slim

# Only what the binary links, per ldd (checked by scripts/check-dockerfile.sh):
#   libsqlite3-0  libsqlite3.so.0 (GRDB)
#   libstdc++6    libstdc++.so.6 (the statically linked Swift runtime)
#   zlib1g        libz.so.1 (swift-nio-extras' HTTP decompression, via AsyncHTTPClient)
#   libc6 and libgcc-s1 (libc, libm, ld-linux, libgcc_s) are part of every Debian base image.
# No libssl (swift-crypto and NIOSSL carry BoringSSL) and no libcurl or libxml2 (FoundationNetworking
# and FoundationXML are not linked).
# And one package that is not a library: ca-certificates, the trust roots that NIOSSL reads from
# /etc/ssl/certs for HTTPS to Mobile Engage.
# The package list is on one line on purpose: scripts/check-dockerfile.sh compares it with ldd.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libsqlite3-0 libstdc++6 zlib1g \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 pushbridge \
    && useradd --system --no-log-init --uid 10001 --gid pushbridge \
        --home-dir /app --shell /usr/sbin/nologin pushbridge \
    && mkdir -p /app /data \
    && chown pushbridge:pushbridge /app /data

COPY --from=build /staging/pushbridge /usr/local/bin/pushbridge

ENV PUSHBRIDGE_HTTP_HOST=0.0.0.0 \
    PUSHBRIDGE_HTTP_PORT=8080 \
    PUSHBRIDGE_STORAGE_URL=sqlite:///data/pushbridge.sqlite

# The SQLite database, its WAL and shm files.
VOLUME ["/data"]

# Relative paths (config/pushbridge.yaml, providers/) resolve here; both are optional.
WORKDIR /app
# Numeric, so that a runtime (Kubernetes runAsNonRoot) can tell it is not root without /etc/passwd.
USER 10001:10001

EXPOSE 8080

# `pushbridge healthcheck` GETs http://127.0.0.1:$PUSHBRIDGE_HTTP_PORT/health: exit 0 when healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["pushbridge", "healthcheck"]

# pushbridge runs as PID 1 and drains on SIGTERM (swift-service-lifecycle).
ENTRYPOINT ["pushbridge"]
CMD ["serve"]
