#!/usr/bin/env bash
# Builds the mdbridge and NATS images from locally compiled static binaries.
#   deploy/docker/build.sh            # tags mdbridge:dev and mdbridge-nats:dev, BASE=scratch
#   BASE=gcr.io/distroless/static-debian12:nonroot deploy/docker/build.sh
# Env: MDBRIDGE_IMAGE, NATS_IMAGE (tags), BASE (base image for both).
set -euo pipefail
cd "$(dirname "$0")/../.."
MDBRIDGE_IMAGE=${MDBRIDGE_IMAGE:-mdbridge:dev}
NATS_IMAGE=${NATS_IMAGE:-mdbridge-nats:dev}
BASE=${BASE:-scratch}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/mdbridge/data" "$ctx/nats/data"  # data: empty, writable store (and /tmp) dirs

echo "building static binaries..."
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/mdbridge/mdbridge" ./cmd/mdbridge
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/nats/nats-server" github.com/nats-io/nats-server/v2
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then cp "$ca" "$ctx/mdbridge/"; else : > "$ctx/mdbridge/ca-certificates.crt"; echo "warning: no CA bundle at $ca; TLS to exchanges will fail in this image" >&2; fi

echo "building $MDBRIDGE_IMAGE (base $BASE)..."
docker build -q -f Dockerfile --build-arg "BASE=$BASE" -t "$MDBRIDGE_IMAGE" "$ctx/mdbridge"
echo "building $NATS_IMAGE (base $BASE)..."
docker build -q -f deploy/docker/nats.Dockerfile --build-arg "BASE=$BASE" -t "$NATS_IMAGE" "$ctx/nats"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(${MDBRIDGE_IMAGE}|${NATS_IMAGE}) " || true
