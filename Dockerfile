# syntax=docker/dockerfile:1
#
# Ferry's images, two targets from one build stage:
#
#   docker build --target manager --build-arg VERSION=$(git describe --tags --always --dirty) -t ferry-manager .
#   docker build --target agent   --build-arg VERSION=$(git describe --tags --always --dirty) -t ferry-agent .
#
# The binaries are built exactly as `make build` builds them (the Makefile's
# GO_BUILD: CGO_ENABLED=0, -trimpath, -s -w, the version stamped into
# internal/version); test/packaging runs this file's build commands and
# compares the result with `make build`'s.

# The Go toolchain of go.mod's go directive.
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
# The version stamped into the binaries, as `git describe` gives it.
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    for cmd in manager agent; do \
      CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
        -ldflags "-s -w -X github.com/ferry-dev/ferry/internal/version.Version=$VERSION" \
        -o out/ferry-$cmd ./cmd/$cmd || exit 1; \
    done

# The manager: a static binary on a distroless base, as the non-root user
# 65532 (distroless "nonroot"); its pod meets Pod Security "restricted".
FROM gcr.io/distroless/static-debian12:nonroot AS manager
LABEL org.opencontainers.image.title="ferry-manager" \
      org.opencontainers.image.description="Ferry's manager: AppGroups to ProcessPools, rollout waves, status roll-up" \
      org.opencontainers.image.source="https://github.com/ferry-dev/ferry"
COPY --from=build /src/out/ferry-manager /ferry-manager
USER 65532:65532
ENTRYPOINT ["/ferry-manager"]

# The node agent: Python 3 for the WSGI apps it runs (the embedded loader
# runs under python3 from PATH, or an AppGroup's spec.app.python), on a slim
# Debian. Build your own image FROM this one to add your apps' Python
# dependencies (docs/install.md).
FROM python:3.12-slim-bookworm AS agent
LABEL org.opencontainers.image.title="ferry-agent" \
      org.opencontainers.image.description="Ferry's node agent: Passenger-style worker pools behind a proxy" \
      org.opencontainers.image.source="https://github.com/ferry-dev/ferry"
COPY --from=build /src/out/ferry-agent /usr/local/bin/ferry-agent
# The agent runs as root on purpose: it starts each AppGroup's workers as
# the user the AppGroup names (setuid/setgid), chowns their socket
# directories and signals them, none of which a non-root user can do for
# other users. The workers themselves never run as root (the API forbids
# it and the agent refuses it). The chart and config/agent drop every
# capability but the few this takes. User names resolve in this image's
# /etc/passwd (www-data, nobody), or give a numeric uid.
USER 0:0
# No init before it: as pid 1 the agent runs itself as its child and
# collects the orphans' exits itself (agent/pid1).
ENTRYPOINT ["/usr/local/bin/ferry-agent"]
