#!/usr/bin/env bash
# Installs the Debian packages Workhorse uses when they are missing.
# bubblewrap: the per-task sandbox. Without root or apt, says what to install.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "note: install ${need[*]} (e.g. sudo apt-get install ${need[*]}) for sandboxed code packages" >&2
fi
