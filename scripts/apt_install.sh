# Sourced by the install_*.sh scripts: apt_install SCRIPT "WHAT TO INSTALL OTHERWISE" PACKAGE...
# installs Debian packages with apt-get, as root (CI) or through sudo; elsewhere it says what to install and fails.
apt_install() {
  local script="$1" otherwise="$2"
  shift 2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$script: missing $* and this is not a Debian/Ubuntu system; $otherwise" >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "$script: missing $* and I am not root; install these Debian packages." >&2
      return 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
