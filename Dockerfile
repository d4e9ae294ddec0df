# syntax=docker/dockerfile:1
# Ticket service image: ticket-gateway (default) and ticket-worker.
#   docker build -t ticket-service .
#   docker run --rm -e JWT_SECRET=... -p 8000:8000 ticket-service            # gateway
#   docker run --rm -e MONGODB_URI=... ticket-service ticket-worker          # worker
# docker-compose.yml builds it for both services.

############################ build ############################
FROM debian:bookworm AS build

# Debian's bookworm packages are not pinned to exact versions: point releases
# replace them (security fixes) and old versions leave the archive.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        ca-certificates cmake make gcc libc6-dev pkg-config \
        librdkafka-dev libmicrohttpd-dev libjansson-dev libjwt-dev \
        libmongoc-dev libbson-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# BUILD_TESTING=OFF: no tests in the image (CMakeLists honours it, so no cmocka).
# TICKET_WERROR=OFF: CI enforces -Werror; an image build should not fail on an
# optimizer-only warning.
RUN cmake -B build -DCMAKE_BUILD_TYPE=Release -DTICKET_WERROR=OFF -DBUILD_TESTING=OFF \
 && cmake --build build --parallel "$(nproc)" \
 && install -D -m 0755 build/gateway/ticket-gateway /out/bin/ticket-gateway \
 && install -D -m 0755 build/worker/ticket-worker /out/bin/ticket-worker

########################### runtime ###########################
FROM debian:bookworm-slim AS runtime

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        librdkafka1 libmicrohttpd12 libjansson4 libjwt0 libssl3 \
        libmongoc-1.0-0 libbson-1.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ticket \
 && useradd --system --uid 10001 --gid ticket --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ticket

COPY --from=build /out/bin/ /usr/local/bin/
# The public contracts, for whoever wants them next to the binaries.
COPY schemas/ /usr/local/share/ticket-service/schemas/

# Probe for container healthchecks. The image has no curl: bash's /dev/tcp is
# enough to send one GET and read the status line.
# Usage: ticket-healthcheck [path (/readyz)] [port ($PORT or 8000)]
COPY --chmod=0755 <<'SH' /usr/local/bin/ticket-healthcheck
#!/bin/bash
set -u
path="${1:-/readyz}"
port="${2:-${PORT:-8000}}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 3 status_line <&3 || exit 1
case "$status_line" in
    "HTTP/1."[01]" 200 "*) exit 0 ;;
    *) exit 1 ;;
esac
SH

# Fail the build, not the first start, when a runtime library is missing.
RUN for bin in /usr/local/bin/ticket-gateway /usr/local/bin/ticket-worker; do \
        ldd "$bin" > /tmp/ldd.txt; \
        if grep 'not found' /tmp/ldd.txt; then echo "$bin: missing runtime libraries"; exit 1; fi; \
    done; \
    rm -f /tmp/ldd.txt

USER 10001:10001
ENV PORT=8000 \
    BIND_ADDRESS=0.0.0.0 \
    LOG_LEVEL=info
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["ticket-gateway"]
