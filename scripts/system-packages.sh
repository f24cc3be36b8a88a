#!/usr/bin/env bash
# Makes sure the Debian packages Porthole's demo and tests run on are installed:
#   scripts/system-packages.sh <package>...
# Installs the missing ones with apt-get when run as root (as CI does on a fresh machine);
# otherwise prints exactly what to run and exits 1. A package counts as present when the program
# it provides is on PATH, so machines with these programs from elsewhere pass too.
set -euo pipefail

program_of() {
  case "$1" in
    tigervnc-standalone-server) echo Xvnc ;;
    x11-apps) echo xlogo ;;
    chromium) echo chromium ;;
    openssl) echo openssl ;;
    websockify) echo websockify ;;
    xvfb) echo Xvfb ;;
    tigervnc-viewer) echo xtigervncviewer ;;
    xdotool) echo xdotool ;;
    xterm) echo xterm ;;
    systemd) echo systemd-analyze ;;
    *) echo "scripts/system-packages.sh: no program known for package $1" >&2; exit 2 ;;
  esac
}

missing=()
for p in "$@"; do
  command -v "$(program_of "$p")" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi

echo "Porthole needs these Debian packages: ${missing[*]}" >&2
echo "Install them (as root), then run this again:" >&2
echo "  apt-get install -y ${missing[*]}" >&2
exit 1
