#!/usr/bin/env bash
# Installs what the headless report checks need, if it is not there yet: Debian's chromium, and fonts
# for Latin (fonts-liberation) and Chinese/Japanese/Korean text (fonts-wqy-zenhei; without a CJK font
# chromium draws such text as empty boxes). Runs as root in CI (apt-get works as is); otherwise uses sudo.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# fonts-liberation: a Recommends of chromium that --no-install-recommends would drop (pages need fonts).
fc-list 2>/dev/null | grep -qi "liberation" || need+=(fonts-liberation)
fc-list :lang=zh 2>/dev/null | grep -q . && fc-list :lang=ko 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
otherwise="install chromium and a CJK font so that 'chromium' is on PATH (tests/test_browser.py drives it headless)."
apt_install install_browser.sh "$otherwise" "${need[@]}" fontconfig
command -v chromium >/dev/null
chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 || chromium --version >/dev/null
