#!/usr/bin/env bash
# Installs what the headless report checks need, if it is not there yet: Debian's chromium, and fonts
# for Latin (fonts-liberation) and Chinese/Japanese/Korean text (fonts-wqy-zenhei; without a CJK font
# chromium draws such text as empty boxes). Runs as root in CI (apt-get works as is); otherwise uses sudo.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# fonts-liberation: a Recommends of chromium that --no-install-recommends would drop (pages need fonts).
fc-list 2>/dev/null | grep -qi "liberation" || need+=(fonts-liberation)
fc-list :lang=zh 2>/dev/null | grep -q . && fc-list :lang=ko 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: missing ${need[*]} and this is not a Debian/Ubuntu system; install chromium and" \
       "a CJK font so that 'chromium' is on PATH (tests/test_browser.py drives it headless)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser.sh: missing ${need[*]} and I am not root; install these Debian packages." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
command -v chromium >/dev/null
chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 || chromium --version >/dev/null
