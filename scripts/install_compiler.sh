#!/usr/bin/env bash
# Installs what `toolqual compile` needs besides mypy, if it is not there yet: a C compiler (gcc) and the C
# headers of the Python that runs toolqual ($PY, default python3). Runs as root in CI (apt-get works as is);
# otherwise uses sudo.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
PY="${PY:-python3}"
need=()
command -v "${CC:-cc}" >/dev/null 2>&1 || need+=(gcc libc6-dev)
include="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[ -f "$include/Python.h" ] || need+=(python3-dev)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
otherwise="install a C compiler (${CC:-cc}) and the development headers of $PY ($include/Python.h)."
apt_install install_compiler.sh "$otherwise" "${need[@]}"
if [ ! -f "$include/Python.h" ]; then
  echo "install_compiler.sh: $include/Python.h is still missing: $PY is not Debian's python3; install the" \
       "development headers of that Python." >&2
  exit 1
fi
