#!/usr/bin/env bash
# Installs Debian's chromium for the browser test when it is missing.
# Playwright drives this browser; we never download one with `playwright install`.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "The browser test needs Chromium at /usr/bin/chromium; install it with your package manager." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
echo "Installing Debian's chromium for the browser test..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
