#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the browser tests (tests/browser, marker `browser`), through apt-get
# as root. Quick when done; what cannot be had is said here and never fails the run: the browser tests skip with
# the reason.
set -uo pipefail

say() { echo "browser-tools: $*"; }

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    say "chromium/chromedriver missing and not installable here (needs root and apt-get): the browser tests will skip"
    exit 0
fi
apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver \
    >/dev/null 2>&1; then
    say "apt-get install chromium chromium-driver failed: the browser tests will skip"
fi
exit 0
