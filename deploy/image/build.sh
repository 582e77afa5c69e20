#!/usr/bin/env bash
# Build an image of the Dockerfile with buildah, on a machine without a Docker engine or registry.
#
#   deploy/image/build.sh cpu|gpu [buildah bud options...]     (as root)
#
# Makes the local Debian base first (deploy/image/debian-base.sh) and builds with --pull=never,
# so the real Dockerfile is what gets built. Where this machine's pip trusts a CA bundle of its
# own (PIP_CERT, REQUESTS_CA_BUNDLE or SSL_CERT_FILE, e.g. behind a TLS-inspecting proxy), the
# bundle goes to pip as a build secret: it never reaches a layer. Tags localhost/rtmpose-service:TARGET.
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=${1:?usage: deploy/image/build.sh cpu|gpu [buildah bud options...]}
shift
IMAGE=${IMAGE:-localhost/rtmpose-service:$TARGET}

deploy/image/debian-base.sh bookworm

secrets=()
ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}
if [[ -n "$ca" && -f "$ca" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    printf '[global]\ncert = /run/secrets/ca.crt\n' >"$work/pip.conf"
    secrets=(--secret "id=pip.conf,src=$work/pip.conf" --secret "id=ca.crt,src=$ca")
fi

start=$(date +%s)
buildah bud --isolation chroot --pull=never --format docker --layers \
    --target "$TARGET" -t "$IMAGE" "${secrets[@]}" "$@" -f Dockerfile .
echo "$IMAGE: $(buildah images --format '{{.Size}}' "$IMAGE"), built in $(($(date +%s) - start)) s"
