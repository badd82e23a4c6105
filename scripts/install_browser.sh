#!/usr/bin/env bash
# Installs Debian's chromium for the headless report checks, if it is not there yet.
# Runs as root in CI (apt-get works as is); otherwise uses sudo when available.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: chromium is missing and this is not a Debian/Ubuntu system; install chromium" \
       "so that 'chromium' is on PATH (tests/test_browser.py drives it headless)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser.sh: chromium is missing and I am not root; install Debian's 'chromium' package." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-liberation: a Recommends of chromium that --no-install-recommends would drop (pages need fonts).
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
command -v chromium >/dev/null
chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 || chromium --version >/dev/null
