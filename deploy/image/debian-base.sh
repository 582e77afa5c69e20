#!/usr/bin/env bash
# Make a local Debian base image with debootstrap, for machines without a registry.
#
#   deploy/image/debian-base.sh [SUITE]       (default: bookworm; run as root)
#
# Tags it docker.io/library/debian:SUITE-slim, the name the Dockerfile's FROM resolves to,
# so `buildah bud --pull=never` builds the real Dockerfile on top of it. The mirror is
# read from this machine's apt sources at run time. Like the official -slim images, docs,
# man pages and locales are left out (and kept out by a dpkg exclude file).
set -euo pipefail

SUITE=${1:-bookworm}
TAG=docker.io/library/debian:${SUITE}-slim

if buildah inspect --type image "$TAG" >/dev/null 2>&1; then
    echo "$TAG: already present"
    exit 0
fi

# the first Debian archive URI of the apt sources (deb822 .sources or one-line .list files)
mirror=$(
    {
        grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources || true
        grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list || true
    } | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) {print $i; exit}}'
)
if [[ -z "$mirror" ]]; then
    echo "no Debian archive found in /etc/apt/sources.list*" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "debootstrap $SUITE (minbase) from the configured mirror into $rootfs"
debootstrap --variant=minbase --merged-usr "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}

# what the official -slim images do: no docs, man pages or locales, now or later
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
SLIM
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
# the same suites as this machine (updates, security), from the same mirrors
: >"$rootfs/etc/apt/sources.list"
{
    grep -hs -v '^#' /etc/apt/sources.list.d/*.sources | awk -v RS= '/URIs:[^\n]*\/debian(-security)?\/?(\n|$)/ {print $0 "\n"}'
    true
} >"$rootfs/etc/apt/sources.list.d/debian.sources"
if [[ ! -s "$rootfs/etc/apt/sources.list.d/debian.sources" ]]; then
    rm "$rootfs/etc/apt/sources.list.d/debian.sources"
    echo "deb $mirror $SUITE main" >"$rootfs/etc/apt/sources.list"
fi

tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
container=$(buildah from scratch)
buildah add "$container" "$work/rootfs.tar" / >/dev/null
buildah config --cmd bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
buildah commit --rm "$container" "$TAG" >/dev/null
echo "$TAG: $(buildah images --format '{{.Size}}' "$TAG")"
